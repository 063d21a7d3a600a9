//! A `tracing` subscriber of the user's own, installed as the global default before the
//! tests run, stays in charge: it receives venomqa's events (venomqa adds no subscriber of
//! its own in front of it), and the cost report still gets each test's line.
//!
//! A `harness = false` test: one process, in which the environment is set before venomqa
//! first reads it and the global subscriber is installed before any test runs. It answers
//! `--list` as libtest does, so `cargo nextest run` runs it too. Its tests call what
//! `#[venom_test]` expands to, `venomqa::__private::run_test`.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use venomqa::sqlite::SqliteSession;

const NAME: &str = "a_subscriber_of_your_own_stays_in_charge_and_the_report_still_records";

/// Keeps `target: message fields` of every event.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(format!("{}:", event.metadata().target()));
        event.record(&mut line);
        self.0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `body` as `#[venom_test] fn <test>(db: &mut SqliteSession)` does (its expansion
/// is a `#[test]`, which a `harness = false` target drops).
fn venom_test<R: venomqa::TestOutcome>(
    test: &'static str,
    body: impl FnOnce(&mut SqliteSession) -> R,
) -> R {
    let spec = venomqa::__private::TestSpec {
        test,
        backend: None,
        url: None,
        config: None,
        manifest_dir: env!("CARGO_MANIFEST_DIR"),
    };
    venomqa::__private::run_test(&spec, body)
}

fn recorded() {
    venom_test("subscriber::recorded", |db| {
        db.conn()
            .execute("INSERT INTO items (marker) VALUES ('recorded')", [])
            .unwrap();
    })
}

fn panicking() {
    venom_test("subscriber::panicking", |_| panic!("panicking on purpose"))
}

fn check() {
    let report = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("venomqa-subscriber-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&report);
    // SAFETY (edition 2021: a safe call): one thread, before anything reads the
    // environment.
    std::env::set_var("VENOMQA_REPORT", &report);
    std::env::set_var("RUST_LOG", "venomqa=debug");
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(recorder.clone()).unwrap();

    recorded();
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // the panic is expected: keep the output clean
    let panicked = std::panic::catch_unwind(panicking);
    std::panic::set_hook(hook);
    assert!(panicked.is_err());

    let events = recorder.0.lock().unwrap().clone();
    let finished: Vec<&String> = events
        .iter()
        .filter(|e| e.starts_with("venomqa::test:"))
        .collect();
    assert_eq!(finished.len(), 2, "{events:#?}");
    assert!(
        finished[0].contains("test=subscriber::recorded") && finished[0].contains("outcome=\"ok\""),
        "{finished:?}"
    );
    assert!(
        finished[1].contains("test=subscriber::panicking")
            && finished[1].contains("outcome=\"panic\""),
        "{finished:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("venomqa:") && e.contains("checkpoint created")),
        "the user's subscriber gets venomqa's other events too: {events:#?}"
    );

    let text = std::fs::read_to_string(&report).unwrap();
    let _ = std::fs::remove_file(&report);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("{\"test\":\"subscriber::recorded\",\"backend\":\"sqlite\",")
            && lines[0].contains("\"outcome\":\"ok\",\"rolled_back\":true,"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("{\"test\":\"subscriber::panicking\",")
            && lines[1].contains("\"outcome\":\"panic\",\"rolled_back\":true,"),
        "{text}"
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{NAME}: test");
        }
        return ExitCode::SUCCESS;
    }
    let exact = args.iter().any(|a| a == "--exact");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected = filters.is_empty()
        || filters.iter().any(|f| {
            if exact {
                *f == NAME
            } else {
                NAME.contains(f.as_str())
            }
        });
    if !selected {
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n");
        return ExitCode::SUCCESS;
    }
    println!("\nrunning 1 test");
    let result = std::panic::catch_unwind(check);
    let (status, passed, failed) = match result {
        Ok(()) => ("ok", 1, 0),
        Err(_) => ("FAILED", 0, 1),
    };
    println!("test {NAME} ... {status}\n\ntest result: {status}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out\n");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
