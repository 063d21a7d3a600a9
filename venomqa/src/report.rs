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
//! (one line in the file; wrapped here): a [`Record`], which `venomqa report` reads back.
//! The fields:
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
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::ser::CharEscape;
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
    let line = Record::new(&record, test_time, std::process::id(), at).to_line();
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

/// One test's line of the cost report: what the runtime appends to `VENOMQA_REPORT` and
/// what `venomqa report` (the `venomqa-cli` crate, where it is also `venomqa_cli::Line`)
/// reads back. The fields are serialized in this order, `connect_us` as `null` when no
/// connection was opened, as one JSON object on one line ([`to_line`](Self::to_line)).
///
/// ```
/// let text = r#"{"test":"a::t","backend":"mysql","entry":"mysql","isolation":"transaction","outcome":"ok","rolled_back":true,"test_us":9000,"lease_us":6000,"lease_wait_us":500,"connect_us":5500,"checkpoints":1,"checkpoint_us":200,"rollbacks":1,"rollback_us":300,"session_us":2900,"pid":1,"at_ms":0}"#;
/// let record: venomqa::report::Record = serde_json::from_str(text)?;
/// assert_eq!(record.body_us(), 2400);
/// assert_eq!(record.dominated_by(), ("connect", 5500));
/// assert_eq!(record.to_line(), format!("{text}\n"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Record {
    /// `module::path::test_name`.
    pub test: String,
    /// The registered backend.
    pub backend: String,
    /// The `venomqa.yaml` entry the test ran on (empty when a line lacks it).
    #[serde(default)]
    pub entry: String,
    /// `transaction` (the test's own connection), or `capture` (every connection's
    /// writes).
    pub isolation: String,
    /// `ok`, `err` (returned `Err`) or `panic` (`finished` for a session ended by hand).
    pub outcome: String,
    /// Whether the final rollback succeeded.
    pub rolled_back: bool,
    /// The whole test, from the attribute's first step to the end of the rollback.
    pub test_us: u64,
    /// Taking a connection from the pool: `lease_wait_us` plus `connect_us`.
    pub lease_us: u64,
    /// Waiting for a free connection, and its health check.
    pub lease_wait_us: u64,
    /// Opening a new connection and running its setup; `None` (`null`) when a pooled one
    /// was reused.
    pub connect_us: Option<u64>,
    /// Checkpoints created, the root one included.
    pub checkpoints: u64,
    /// Their time.
    pub checkpoint_us: u64,
    /// Rollbacks (checkpoint blocks, explicit ones, the final one).
    pub rollbacks: u64,
    /// Their time.
    pub rollback_us: u64,
    /// From the root checkpoint to the end of the final rollback: the test body plus
    /// checkpoints and rollbacks.
    pub session_us: u64,
    /// The process that ran the test.
    pub pid: u64,
    /// When the line was written, in milliseconds since the Unix epoch (0 when a line
    /// lacks it).
    #[serde(default)]
    pub at_ms: u64,
}

impl Record {
    /// The line of a session's record, for a test that took `test_time` in process `pid`,
    /// written `at` (since the Unix epoch).
    pub(crate) fn new(record: &SessionRecord, test_time: Duration, pid: u32, at: Duration) -> Self {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Record {
            test: record.test.clone(),
            backend: record.backend.clone(),
            entry: record.entry.clone(),
            isolation: record.isolation.clone(),
            outcome: record.outcome.clone(),
            rolled_back: record.rolled_back,
            test_us: micros(test_time),
            lease_us: record.lease_us,
            lease_wait_us: record
                .lease_us
                .saturating_sub(record.connect_us.unwrap_or(0)),
            connect_us: record.connect_us,
            checkpoints: record.checkpoints,
            checkpoint_us: record.checkpoint_us,
            rollbacks: record.rollbacks,
            rollback_us: record.rollback_us,
            session_us: record.session_us,
            pid: u64::from(pid),
            at_ms: u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The record as its line of the report: one JSON object, newline included. Control
    /// characters in strings are escaped as `\n`, `\r`, `\t` or `\u00xx`.
    pub fn to_line(&self) -> String {
        let mut out = Vec::with_capacity(400);
        let mut json = serde_json::Serializer::with_formatter(&mut out, LineFormatter);
        self.serialize(&mut json)
            .expect("a record serializes into memory");
        out.push(b'\n');
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// The test body: the session less its checkpoints and rollbacks.
    pub fn body_us(&self) -> u64 {
        self.session_us
            .saturating_sub(self.checkpoint_us + self.rollback_us)
    }

    /// venomqa's set-up before the lease: reading the configuration, building the pool.
    pub fn setup_us(&self) -> u64 {
        self.test_us.saturating_sub(self.lease_us + self.session_us)
    }

    /// What isolation cost this test: everything but its body (set-up, lease,
    /// checkpoints, rollbacks).
    pub fn isolation_us(&self) -> u64 {
        self.test_us.saturating_sub(self.body_us())
    }

    /// The largest part of the test's time, and how long it took: `lease wait`,
    /// `connect`, `set-up`, `checkpoints`, `rollbacks` or `the test body`.
    pub fn dominated_by(&self) -> (&'static str, u64) {
        [
            ("lease wait", self.lease_wait_us),
            ("connect", self.connect_us.unwrap_or(0)),
            ("set-up", self.setup_us()),
            ("checkpoints", self.checkpoint_us),
            ("rollbacks", self.rollback_us),
            ("the test body", self.body_us()),
        ]
        .into_iter()
        .max_by_key(|(_, us)| *us)
        .expect("six parts")
    }
}

/// The cost report as one self-contained HTML page (no network: its stylesheet, script and
/// data are inline): totals, where the time went (set-up, lease wait, connect, checkpoints,
/// rollbacks, test bodies) and every test, slowest first, with a bar of its parts and the
/// part that dominated it. `source` names the file the records came from. `venomqa report
/// --html` writes it.
///
/// ```
/// let line = r#"{"test":"a::t","backend":"mysql","entry":"mysql","isolation":"transaction","outcome":"ok","rolled_back":true,"test_us":9000,"lease_us":6000,"lease_wait_us":500,"connect_us":5500,"checkpoints":1,"checkpoint_us":200,"rollbacks":1,"rollback_us":300,"session_us":2900,"pid":1,"at_ms":0}"#;
/// let record: venomqa::report::Record = serde_json::from_str(line)?;
/// let html = venomqa::report::to_html(&[record], "report.jsonl");
/// assert!(html.contains("a::t") && html.contains("data-kind=\"cost\""));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn to_html(records: &[Record], source: &str) -> String {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(flatten)]
        record: &'a Record,
        /// set-up, lease wait, connect, checkpoints, rollbacks, the test body (µs).
        parts: [u64; 6],
        dominated_by: (&'static str, u64),
    }
    let lines: Vec<Line<'_>> = records
        .iter()
        .map(|r| Line {
            record: r,
            parts: [
                r.setup_us(),
                r.lease_wait_us,
                r.connect_us.unwrap_or(0),
                r.checkpoint_us,
                r.rollback_us,
                r.body_us(),
            ],
            dominated_by: r.dominated_by(),
        })
        .collect();
    let data = serde_json::json!({ "source": source, "lines": lines });
    crate::html::page(crate::html::Kind::Cost, "venomqa cost report", &data)
}

/// serde_json's compact format, with backspace and form feed escaped as `\u0008` and
/// `\u000c` (as the lines written before the record was serde's were) rather than `\b`
/// and `\f`.
struct LineFormatter;

impl serde_json::ser::Formatter for LineFormatter {
    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> std::io::Result<()> {
        let escape = match escape {
            CharEscape::Backspace => CharEscape::AsciiControl(0x08),
            CharEscape::FormFeed => CharEscape::AsciiControl(0x0c),
            other => other,
        };
        serde_json::ser::CompactFormatter.write_char_escape(writer, escape)
    }
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
        let line = |record: &SessionRecord, test_time, pid, at| {
            Record::new(record, test_time, pid, at).to_line()
        };
        let l = line(
            &record(),
            Duration::from_micros(1500),
            7,
            Duration::from_millis(9),
        );
        let expected = "{\"test\":\"a::b\",\"backend\":\"my\\\"sql\\\\\\n\",\"entry\":\"mysql\",\"isolation\":\"transaction\",\"outcome\":\"ok\",\"rolled_back\":true,\"test_us\":1500,\"lease_us\":300,\"lease_wait_us\":100,\"connect_us\":200,\"checkpoints\":2,\"checkpoint_us\":40,\"rollbacks\":2,\"rollback_us\":50,\"session_us\":900,\"pid\":7,\"at_ms\":9}\n";
        assert_eq!(l, expected);
        // What `venomqa report` reads back is the record written.
        let read: Record = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(
            read,
            Record::new(
                &record(),
                Duration::from_micros(1500),
                7,
                Duration::from_millis(9)
            )
        );
        assert_eq!(read.to_line(), l);
        let reused = SessionRecord {
            connect_us: None,
            ..record()
        };
        let l = line(&reused, Duration::ZERO, 7, Duration::ZERO);
        assert!(
            l.contains("\"lease_wait_us\":300,\"connect_us\":null,"),
            "{l}"
        );
        // Control characters as the hand-written lines had them: `\u00xx`, not `\b`/`\f`.
        let control = SessionRecord {
            test: "\u{1}\u{8}\u{c}\t\ré/".into(),
            ..record()
        };
        let l = line(&control, Duration::ZERO, 7, Duration::ZERO);
        assert!(
            l.starts_with("{\"test\":\"\\u0001\\u0008\\u000c\\t\\ré/\","),
            "{l}"
        );
        assert_eq!(
            serde_json::from_str::<Record>(&l).unwrap().test,
            control.test
        );
    }

    #[test]
    fn older_lines_without_entry_or_at_ms_still_parse() {
        let l = "{\"test\":\"a\",\"backend\":\"sqlite\",\"isolation\":\"transaction\",\"outcome\":\"ok\",\"rolled_back\":true,\"test_us\":9,\"lease_us\":1,\"lease_wait_us\":1,\"connect_us\":null,\"checkpoints\":1,\"checkpoint_us\":1,\"rollbacks\":1,\"rollback_us\":1,\"session_us\":5,\"pid\":3,\"extra\":[]}";
        let r: Record = serde_json::from_str(l).unwrap();
        assert_eq!((r.entry.as_str(), r.at_ms, r.connect_us), ("", 0, None));
        assert_eq!((r.body_us(), r.setup_us(), r.isolation_us()), (3, 3, 6));
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
