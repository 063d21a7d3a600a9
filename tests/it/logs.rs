//! venomqa's events in a failing test's output: the test `fixture::logged` (tests/it/fixture.rs),
//! made to fail, is run in a child `cargo test` and a child `cargo nextest run`, with and
//! without `RUST_LOG`; its captured output must hold venomqa's debug events exactly when
//! the variable is set. (`tests/subscriber.rs`: a subscriber of the user's own is left
//! in charge.)

use std::process::{Command, Output};

/// `cargo <args> [--features ..] [-- <test_args>]` in the workspace, in a clean
/// environment plus `env`.
fn cargo(args: &[&str], test_args: &[&str], env: &[(&str, &str)]) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(&cargo);
    command
        .current_dir(&workspace)
        .args(args)
        .args(crate::support::cargo_selection());
    if !test_args.is_empty() {
        command.arg("--").args(test_args);
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("VENOMQA_") || key.starts_with("NEXTEST") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env("VENOMQA_FIXTURE_FAIL", "1")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied());
    command
        .output()
        .unwrap_or_else(|e| panic!("could not run {cargo} {args:?}: {e}"))
}

/// The part of libtest's output that holds `test`'s captured output.
fn captured<'a>(stdout: &'a str, test: &str) -> &'a str {
    let header = format!("---- {test} stdout ----");
    let start = stdout
        .find(&header)
        .unwrap_or_else(|| panic!("no captured output of {test} in:\n{stdout}"));
    let rest = &stdout[start + header.len()..];
    &rest[..rest.find("\nfailures:\n").unwrap_or(rest.len())]
}

/// No `fmt` event line (`<time> <LEVEL> <target>: ...`) in `output`.
fn assert_no_events(output: &str) {
    let event = |line: &str| {
        ["TRACE", "DEBUG", " INFO", " WARN", "ERROR"]
            .iter()
            .any(|level| line.contains(&format!("Z {level} ")))
    };
    assert!(
        !output.lines().any(event) && !output.contains("venomqa:"),
        "no events without RUST_LOG:\n{output}"
    );
}

fn cargo_test(env: &[(&str, &str)]) -> String {
    // Only `logged`, which fails.
    let out = cargo(
        &["test", "--test", "it"],
        &["--exact", "fixture::logged"],
        env,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the fixture run was asked to fail:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test fixture::logged ... FAILED"),
        "{stdout}\n{stderr}"
    );
    captured(&stdout, "fixture::logged").to_owned()
}

#[test]
fn cargo_test_shows_venomqa_events_in_a_failing_tests_output_when_rust_log_is_set() {
    let shown = cargo_test(&[("RUST_LOG", "venomqa=debug")]);
    for event in [
        "DEBUG venomqa: connection opened backend=sqlite entry=sqlite",
        "DEBUG venomqa: checkpoint created backend=sqlite checkpoint=venomqa_root",
        "DEBUG venomqa::test: session finished test=it::fixture::logged backend=sqlite entry=sqlite isolation=\"transaction\" outcome=\"panic\" rolled_back=true",
    ] {
        assert!(shown.contains(event), "{event:?} missing from:\n{shown}");
    }
    assert!(
        shown.contains("failing on purpose"),
        "the panic is in the same output:\n{shown}"
    );

    let quiet = cargo_test(&[]);
    assert!(quiet.contains("failing on purpose"), "{quiet}");
    assert_no_events(&quiet);
}

#[test]
fn venomqa_log_is_read_before_rust_log() {
    let shown = cargo_test(&[("RUST_LOG", "off"), ("VENOMQA_LOG", "venomqa::test=debug")]);
    assert!(
        shown.contains("DEBUG venomqa::test: session finished test=it::fixture::logged"),
        "{shown}"
    );
    assert!(
        !shown.contains("checkpoint created"),
        "VENOMQA_LOG's filter, not RUST_LOG's, and only its target:\n{shown}"
    );
}

fn nextest(env: &[(&str, &str)]) -> String {
    let version = Command::new(std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned()))
        .args(["nextest", "--version"])
        .output()
        .expect("cargo runs");
    assert!(
        version.status.success(),
        "cargo-nextest is not installed: `cargo install --locked cargo-nextest` (scripts/test-all.sh does)"
    );
    let out = cargo(
        &[
            "nextest",
            "run",
            "--test",
            "it",
            "--no-fail-fast",
            "-E",
            "test(=fixture::logged)",
        ],
        &[],
        env,
    );
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "asked to fail:\n{all}");
    assert!(
        all.contains("FAIL") && all.contains("fixture::logged"),
        "nextest ran the fixture's `logged`:\n{all}"
    );
    assert!(all.contains("failing on purpose"), "{all}");
    all
}

#[test]
fn nextest_shows_venomqa_events_in_a_failing_tests_output_when_rust_log_is_set() {
    let shown = nextest(&[("RUST_LOG", "venomqa=debug")]);
    assert!(
        shown.contains("DEBUG venomqa::test: session finished test=it::fixture::logged"),
        "{shown}"
    );
    assert!(
        shown.contains("DEBUG venomqa: checkpoint created"),
        "{shown}"
    );

    let quiet = nextest(&[]);
    assert_no_events(&quiet);
}
