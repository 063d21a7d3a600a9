//! The cost report: what isolation costs each test, one JSON line per test.
//!
//! Set `VENOMQA_REPORT` to a file (an absolute path: cargo runs each test binary in its
//! own package's directory) and every `#[venom_test]` appends one line to it when it ends,
//! whether it passed, returned `Err` or panicked. Many processes may append at once (as
//! under `cargo nextest run`, a process per test): each line is written with one `write`
//! under an advisory lock on the file, so lines never interleave. Delete the file between
//! runs; it is only ever appended to. `venomqa report [path]` (the `venomqa-cli` crate)
//! sums it up.
//!
//! ```json
//! {"test":"orders::checkout_places_an_order","backend":"mysql","entry":"mysql",
//!  "isolation":"transaction","outcome":"ok","rolled_back":true,"test_us":5120,
//!  "lease_us":2875,"lease_wait_us":120,"connect_us":2755,"checkpoints":2,
//!  "checkpoint_us":310,"rollbacks":2,"rollback_us":402,"session_us":2180,
//!  "pid":48113,"at_ms":1767225600000}
//! ```
//!
//! (one line in the file; wrapped here). The fields:
//!
//! | field | meaning |
//! |---|---|
//! | `test` | `module::path::test_name` |
//! | `backend`, `entry` | the registered backend and the `venomqa.yaml` entry it ran on |
//! | `isolation` | `transaction` (the test's own connection), or `capture` (every connection's writes) |
//! | `outcome` | `ok`, `err` (returned `Err`) or `panic` |
//! | `rolled_back` | whether the final rollback succeeded |
//! | `test_us` | the whole test, from the attribute's first step to the end of the rollback |
//! | `lease_us` | taking a connection from the pool: `lease_wait_us` (waiting for a free one, and its health check) plus `connect_us` |
//! | `connect_us` | opening a new connection and running its setup; `null` when a pooled one was reused |
//! | `checkpoints`, `checkpoint_us` | checkpoints created (the root one included) and their time |
//! | `rollbacks`, `rollback_us` | rollbacks (checkpoint blocks, explicit ones, the final one) and their time |
//! | `session_us` | from the root checkpoint to the end of the final rollback: the test body plus checkpoints and rollbacks |
//! | `pid`, `at_ms` | the process, and when the line was written (ms since the Unix epoch) |
//!
//! The test body took `session_us - checkpoint_us - rollback_us`; venomqa's set-up before
//! the lease (reading the configuration, building the pool) `test_us - lease_us -
//! session_us`; everything but the body is what isolation cost. Rows or keys captured are
//! not recorded:
//! no backend counts them as it goes, and counting them at the end (a [`diff`]) would cost
//! more than the checkpoint it reports on.
//!
//! The line comes from the `session finished` event every session emits (target
//! `venomqa::test`, level debug), read by a subscriber venomqa installs for the test's
//! thread while the test runs (see `RUST_LOG` in the crate's README). A test that could
//! not open its session (an unknown backend, a server that is down) writes no line.
//!
//! [`diff`]: crate::Session::diff

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::Event;

/// The target of the event the report reads.
pub(crate) const TARGET: &str = "venomqa::test";

/// The variable naming the report's file.
pub const ENV: &str = "VENOMQA_REPORT";

/// The fields of one `session finished` event.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SessionRecord {
    pub test: String,
    pub backend: String,
    pub entry: String,
    pub isolation: String,
    pub outcome: String,
    pub rolled_back: bool,
    pub lease_us: u64,
    pub connect_us: Option<u64>,
    pub checkpoints: u64,
    pub checkpoint_us: u64,
    pub rollbacks: u64,
    pub rollback_us: u64,
    pub session_us: u64,
    message: String,
}

impl Visit for SessionRecord {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "lease_us" => self.lease_us = value,
            "connect_us" => self.connect_us = Some(value),
            "checkpoints" => self.checkpoints = value,
            "checkpoint_us" => self.checkpoint_us = value,
            "rollbacks" => self.rollbacks = value,
            "rollback_us" => self.rollback_us = value,
            "session_us" => self.session_us = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "rolled_back" {
            self.rolled_back = value;
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "test" => &mut self.test,
            "backend" => &mut self.backend,
            "entry" => &mut self.entry,
            "isolation" => &mut self.isolation,
            "outcome" => &mut self.outcome,
            "message" => &mut self.message,
            _ => return,
        };
        value.clone_into(slot);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here, their Debug being their Display.
        self.record_str(field, &format!("{value:?}"));
    }
}

/// The test running on this thread, and its session's record once it ends.
struct Current {
    test: &'static str,
    record: Option<SessionRecord>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// A test begins on this thread.
pub(crate) fn begin(test: &'static str) {
    CURRENT.with_borrow_mut(|current| *current = Some(Current { test, record: None }));
}

/// A `venomqa::test` event on this thread: the test's own session is recorded (sessions
/// it opens by hand have names of their own and are not).
pub(crate) fn observe(event: &Event<'_>) {
    let mut record = SessionRecord::default();
    event.record(&mut record);
    if record.message != "session finished" {
        return;
    }
    CURRENT.with_borrow_mut(|current| {
        if let Some(current) = current {
            if current.test == record.test && current.record.is_none() {
                current.record = Some(record);
            }
        }
    });
}

/// The record of the test on this thread so far (for tests).
#[cfg(test)]
pub(crate) fn take() -> Option<SessionRecord> {
    CURRENT
        .with_borrow_mut(Option::take)
        .and_then(|current| current.record)
}

/// The test on this thread ended after `test_time`: append its line to `path`.
pub(crate) fn end(path: &Path, test_time: Duration) {
    let Some(Current {
        record: Some(record),
        ..
    }) = CURRENT.with_borrow_mut(Option::take)
    else {
        return;
    };
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = line(&record, test_time, std::process::id(), at);
    if let Err(e) = append(path, &line) {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            // Straight to the process's stderr, past the harness's capture: every test's
            // line is missing, not only a failing one's.
            let _ = writeln!(
                std::io::stderr().lock(),
                "venomqa: could not append to the cost report {}: {e}; set {ENV} to a writable file (an absolute path)",
                path.display()
            );
        }
    }
}

/// Appends `line` in one `write`, under an exclusive advisory lock (other processes
/// append to the same file).
fn append(path: &Path, line: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.lock()?;
    let written = file.write_all(line.as_bytes());
    let unlocked = file.unlock();
    written.and(unlocked)
}

/// One JSON line, newline included.
pub(crate) fn line(record: &SessionRecord, test_time: Duration, pid: u32, at: Duration) -> String {
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut out = String::with_capacity(400);
    let mut string = |key: &str, value: &str| {
        let _ = write!(out, "\"{key}\":");
        json_string(&mut out, value);
        out.push(',');
    };
    string("test", &record.test);
    string("backend", &record.backend);
    string("entry", &record.entry);
    string("isolation", &record.isolation);
    string("outcome", &record.outcome);
    let connect = record
        .connect_us
        .map_or_else(|| "null".to_owned(), |c| c.to_string());
    let _ = write!(
        out,
        "\"rolled_back\":{},\"test_us\":{},\"lease_us\":{},\"lease_wait_us\":{},\"connect_us\":{connect},\"checkpoints\":{},\"checkpoint_us\":{},\"rollbacks\":{},\"rollback_us\":{},\"session_us\":{},\"pid\":{pid},\"at_ms\":{}",
        record.rolled_back,
        micros(test_time),
        record.lease_us,
        record.lease_us.saturating_sub(record.connect_us.unwrap_or(0)),
        record.checkpoints,
        record.checkpoint_us,
        record.rollbacks,
        record.rollback_us,
        record.session_us,
        at.as_millis(),
    );
    format!("{{{out}}}\n")
}

/// `value` as a JSON string.
fn json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SessionRecord {
        SessionRecord {
            test: "a::b".into(),
            backend: "my\"sql\\\n".into(),
            entry: "mysql".into(),
            isolation: "transaction".into(),
            outcome: "ok".into(),
            rolled_back: true,
            lease_us: 300,
            connect_us: Some(200),
            checkpoints: 2,
            checkpoint_us: 40,
            rollbacks: 2,
            rollback_us: 50,
            session_us: 900,
            message: String::new(),
        }
    }

    #[test]
    fn a_line_is_one_json_object() {
        let l = line(
            &record(),
            Duration::from_micros(1500),
            7,
            Duration::from_millis(9),
        );
        assert_eq!(
            l,
            "{\"test\":\"a::b\",\"backend\":\"my\\\"sql\\\\\\n\",\"entry\":\"mysql\",\"isolation\":\"transaction\",\"outcome\":\"ok\",\"rolled_back\":true,\"test_us\":1500,\"lease_us\":300,\"lease_wait_us\":100,\"connect_us\":200,\"checkpoints\":2,\"checkpoint_us\":40,\"rollbacks\":2,\"rollback_us\":50,\"session_us\":900,\"pid\":7,\"at_ms\":9}\n"
        );
        let reused = SessionRecord {
            connect_us: None,
            ..record()
        };
        let l = line(&reused, Duration::ZERO, 7, Duration::ZERO);
        assert!(
            l.contains("\"lease_wait_us\":300,\"connect_us\":null,"),
            "{l}"
        );
        let mut control = String::new();
        json_string(&mut control, "\u{1}é");
        assert_eq!(control, "\"\\u0001é\"");
    }

    #[test]
    fn the_event_is_read_field_by_field() {
        use tracing_subscriber::layer::SubscriberExt;

        struct Grab;
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Grab {
            fn on_event(&self, e: &Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
                observe(e);
            }
        }
        let subscriber = tracing_subscriber::registry().with(Grab);
        begin("t::one");
        tracing::subscriber::with_default(subscriber, || {
            let name = String::from("t::one");
            tracing::debug!(target: "venomqa::test", test = %name, backend = %"sqlite", entry = %"sqlite",
                isolation = "capture", outcome = "panic", rolled_back = false, lease_us = 5u64,
                connect_us = None::<u64>, checkpoints = 3u32, checkpoint_us = 6u64, rollbacks = 4u32,
                rollback_us = 7u64, session_us = 8u64, "session finished");
            // Another session's event, on the same thread, is not the test's.
            tracing::debug!(target: "venomqa::test", test = "by_hand", "session finished");
        });
        let recorded = CURRENT
            .with_borrow_mut(Option::take)
            .unwrap()
            .record
            .unwrap();
        assert_eq!(
            recorded,
            SessionRecord {
                test: "t::one".into(),
                backend: "sqlite".into(),
                entry: "sqlite".into(),
                isolation: "capture".into(),
                outcome: "panic".into(),
                rolled_back: false,
                lease_us: 5,
                connect_us: None,
                checkpoints: 3,
                checkpoint_us: 6,
                rollbacks: 4,
                rollback_us: 7,
                session_us: 8,
                message: "session finished".into(),
            }
        );
    }
}
