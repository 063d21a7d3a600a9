//! venomqa's events in test output, and the subscriber the cost report listens with.
//!
//! With `VENOMQA_LOG` (or else `RUST_LOG`) set to a filter such as `venomqa=debug`, each
//! `#[venom_test]` runs under a `tracing` subscriber that writes the events of its thread
//! through the test harness's capture (`tracing_subscriber::fmt` with its test writer, as
//! the `test-log` crate does): a failing test shows venomqa's events in its output, a
//! passing one shows nothing, and `--nocapture` shows all. Nothing is installed when
//! neither variable (nor `VENOMQA_REPORT`) is set. The logs need the `logs` feature (on
//! by default); the report does not.
//!
//! The subscriber is the test thread's default for the test's duration only, so it never
//! replaces a subscriber you install. If one is already the default when a test starts (a
//! global one, say), your subscriber gets every event and no venomqa log output is added;
//! the cost report (`VENOMQA_REPORT`) still records the test, through a thin subscriber
//! that hands every call to yours and reads only the `session finished` event.
//!
//! ```text
//! RUST_LOG=venomqa=debug cargo test            # events of failing tests
//! VENOMQA_LOG=venomqa=trace cargo nextest run  # venomqa's own filter, RUST_LOG untouched
//! ```

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use tracing::dispatcher::{self, DefaultGuard, Dispatch};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::{Interest, NoSubscriber, Subscriber};
use tracing::{Event, Metadata};
use tracing_core::span::Current;
use tracing_core::LevelFilter;

use crate::report;

/// The variables read, once per process.
struct Settings {
    /// `VENOMQA_LOG`, else `RUST_LOG`.
    filter: Option<String>,
    /// `VENOMQA_REPORT`.
    report: Option<PathBuf>,
}

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.trim().is_empty());
        Settings {
            filter: var("VENOMQA_LOG").or_else(|| var("RUST_LOG")),
            report: var("VENOMQA_REPORT").map(PathBuf::from),
        }
    })
}

thread_local! {
    /// Whether a test scope is open on this thread (a test function calling another).
    static IN_TEST: Cell<bool> = const { Cell::new(false) };
}

/// What one test holds while it runs: the thread's default subscriber, and the report's
/// record of the test, appended when the scope ends.
pub(crate) struct TestScope {
    report: Option<(&'static PathBuf, Instant)>,
    _guard: Option<DefaultGuard>,
}

/// Opens the scope of test `test`, or `None` when neither logs nor the report are asked
/// for (or a scope is already open on this thread).
pub(crate) fn test_scope(test: &'static str) -> Option<TestScope> {
    let settings = settings();
    if (settings.filter.is_none() && settings.report.is_none()) || IN_TEST.get() {
        return None;
    }
    let started = Instant::now();
    let theirs =
        dispatcher::get_default(|current| (!current.is::<NoSubscriber>()).then(|| current.clone()));
    let dispatch = match (theirs, settings.report.is_some()) {
        // Theirs stays in charge; the report reads its event on the way through.
        (Some(theirs), true) => Some(Dispatch::new(Forward { theirs })),
        (Some(_), false) => None,
        (None, report) => built(settings, report),
    };
    IN_TEST.set(true);
    if settings.report.is_some() {
        report::begin(test);
    }
    Some(TestScope {
        report: settings.report.as_ref().map(|path| (path, started)),
        _guard: dispatch.map(|d| dispatcher::set_default(&d)),
    })
}

impl Drop for TestScope {
    fn drop(&mut self) {
        if let Some((path, started)) = self.report {
            report::end(path, started.elapsed());
        }
        IN_TEST.set(false);
    }
}

/// Whether `metadata` is the core's one event per session, which the report reads.
fn is_report_event(metadata: &Metadata<'_>) -> bool {
    metadata.is_event() && metadata.target() == report::TARGET
}

/// venomqa's own subscriber, built once per process: the logs (feature `logs`), under
/// the report's reader when the report is on.
fn built(settings: &Settings, report: bool) -> Option<Dispatch> {
    static BUILT: OnceLock<Option<Dispatch>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let logs = logs(settings);
            match (logs, report) {
                (logs, true) => Some(Dispatch::new(Forward {
                    theirs: logs.unwrap_or_else(Dispatch::none),
                })),
                (logs, false) => logs,
            }
        })
        .clone()
}

/// The test-writer `fmt` subscriber under the filter.
#[cfg(feature = "logs")]
fn logs(settings: &Settings) -> Option<Dispatch> {
    use tracing_subscriber::filter::EnvFilter;
    use tracing_subscriber::layer::{Layer, SubscriberExt};

    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::OFF.into())
        .parse_lossy(settings.filter.as_deref()?);
    let layer = tracing_subscriber::fmt::layer()
        .with_test_writer()
        .with_ansi(false)
        .with_filter(filter);
    Some(Dispatch::new(tracing_subscriber::registry().with(layer)))
}

/// Without the `logs` feature, `RUST_LOG` and `VENOMQA_LOG` show nothing.
#[cfg(not(feature = "logs"))]
fn logs(_: &Settings) -> Option<Dispatch> {
    None
}

/// A subscriber (the user's, venomqa's logs, or none), with the report reading the
/// session event on the way: every call goes to theirs, unchanged.
struct Forward {
    theirs: Dispatch,
}

impl Subscriber for Forward {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if is_report_event(metadata) {
            // Theirs is asked again for each event, in `event`.
            let _ = self.theirs.register_callsite(metadata);
            Interest::always()
        } else {
            self.theirs.register_callsite(metadata)
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        None // theirs is not readable through a `Dispatch`: no hint is always right
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        is_report_event(metadata) || self.theirs.enabled(metadata)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.theirs.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.theirs.record(span, values)
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.theirs.record_follows_from(span, follows)
    }

    fn event(&self, event: &Event<'_>) {
        if is_report_event(event.metadata()) {
            report::observe(event);
            if !self.theirs.enabled(event.metadata()) {
                return;
            }
        }
        self.theirs.event(event)
    }

    fn enter(&self, span: &Id) {
        self.theirs.enter(span)
    }

    fn exit(&self, span: &Id) {
        self.theirs.exit(span)
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.theirs.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.theirs.try_close(id)
    }

    fn current_span(&self) -> Current {
        self.theirs.current_span()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Keeps the target and message of every event.
    #[derive(Clone, Default)]
    struct Theirs(Arc<Mutex<Vec<String>>>);

    impl Subscriber for Theirs {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(7)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let target = event.metadata().target().to_owned();
            self.0.lock().unwrap().push(target);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn session_event() {
        tracing::debug!(target: "venomqa::test", test = "t::a", backend = "memory",
            outcome = "ok", rolled_back = true, lease_us = 1u64, "session finished");
    }

    #[test]
    fn the_report_reads_the_session_event_and_theirs_gets_every_call() {
        let theirs = Theirs::default();
        let forward = Dispatch::new(Forward {
            theirs: Dispatch::new(theirs.clone()),
        });
        dispatcher::with_default(&forward, || {
            report::begin("t::a");
            let span = tracing::info_span!("theirs");
            let _entered = span.enter();
            tracing::debug!(target: "venomqa", "checkpoint created");
            session_event();
        });
        let record = report::take().expect("the report read the event");
        assert_eq!(
            (
                record.test.as_str(),
                record.backend.as_str(),
                record.lease_us
            ),
            ("t::a", "memory", 1)
        );
        assert_eq!(*theirs.0.lock().unwrap(), ["venomqa", "venomqa::test"]);
    }

    #[test]
    fn without_a_subscriber_below_the_report_still_reads_the_event() {
        let forward = Dispatch::new(Forward {
            theirs: Dispatch::none(),
        });
        dispatcher::with_default(&forward, || {
            report::begin("t::a");
            tracing::debug!(target: "venomqa", "checkpoint created");
            session_event();
        });
        assert_eq!(report::take().expect("read").outcome, "ok");
    }
}
