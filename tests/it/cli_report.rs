//! The cost report end to end: the tests of `tests/it/fixture.rs` (23 `#[venom_test]`s: 20
//! with a checkpoint block, one asked to fail, one to return `Err`, one `#[should_panic]`)
//! run in a child `cargo nextest run` (a process per test, 4 at a time, all appending to
//! one file) and a child `cargo test` (threads of one process); every line must parse and
//! say what the test did, and `venomqa report` must sum the file up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn expected_tests() -> BTreeSet<String> {
    let mut tests: BTreeSet<String> = (1..=20)
        .map(|i| format!("it::fixture::block_{i:02}"))
        .collect();
    for t in ["logged", "returns_err", "panics"] {
        tests.insert(format!("it::fixture::{t}"));
    }
    tests
}

fn report_path(run: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("venomqa-report-{run}-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// `cargo <args>` in the workspace with a clean environment, writing the report to `report`.
fn cargo(args: &[&str], report: &Path) -> Output {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
    let mut command = Command::new(&cargo);
    command
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args.iter().take_while(|a| **a != "--"));
    command.args(crate::support::cargo_selection());
    command.args(args.iter().skip_while(|a| **a != "--"));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("VENOMQA_") || key.starts_with("NEXTEST") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env("VENOMQA_REPORT", report)
        .env("VENOMQA_FIXTURE_FAIL", "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap_or_else(|e| panic!("could not run {cargo} {args:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parses every line, and checks what each says against what its test did.
fn check_lines(report: &Path) -> Vec<Value> {
    let file = std::fs::read_to_string(report).expect("the run wrote the report");
    assert!(file.ends_with('\n'), "whole lines only");
    let lines: Vec<Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 23, "one line per test:\n{file}");
    let names: BTreeSet<String> = lines
        .iter()
        .map(|l| l["test"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, expected_tests(), "each test once");
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for l in &lines {
        let test = l["test"].as_str().unwrap();
        *outcomes.entry(l["outcome"].as_str().unwrap()).or_default() += 1;
        assert_eq!(l["backend"], "sqlite", "{l}");
        assert_eq!(l["entry"], "sqlite", "{l}");
        assert_eq!(l["isolation"], "transaction", "{l}");
        assert_eq!(l["rolled_back"], true, "{l}");
        let n = |k: &str| l[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
        let with_block = test.contains("block_");
        assert_eq!(n("checkpoints"), if with_block { 2 } else { 1 }, "{l}");
        assert_eq!(n("rollbacks"), if with_block { 2 } else { 1 }, "{l}");
        assert_eq!(
            n("lease_wait_us") + l["connect_us"].as_u64().unwrap_or(0),
            n("lease_us"),
            "{l}"
        );
        assert!(
            n("session_us") >= n("checkpoint_us") + n("rollback_us"),
            "{l}"
        );
        assert!(n("test_us") >= n("lease_us") + n("session_us"), "{l}");
        assert!(n("pid") > 0 && n("at_ms") > 0, "{l}");
        let expected = match test {
            "it::fixture::returns_err" => "err",
            "it::fixture::logged" | "it::fixture::panics" => "panic",
            _ => "ok",
        };
        assert_eq!(l["outcome"], expected, "{l}");
    }
    assert_eq!(
        outcomes,
        BTreeMap::from([("err", 1), ("ok", 20), ("panic", 2)])
    );
    lines
}

fn pids(lines: &[Value]) -> BTreeSet<u64> {
    lines.iter().map(|l| l["pid"].as_u64().unwrap()).collect()
}

fn venomqa(args: &[&str], env: &[(&str, &Path)]) -> Output {
    crate::support::cli::command()
        .args(args)
        .env_remove("VENOMQA_REPORT")
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .output()
        .expect("the venomqa command runs")
}

#[test]
fn a_nextest_run_of_many_processes_writes_one_file_and_the_command_sums_it_up() {
    let version = Command::new(std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned()))
        .args(["nextest", "--version"])
        .output()
        .expect("cargo runs");
    assert!(
        version.status.success(),
        "cargo-nextest is not installed: `cargo install --locked cargo-nextest` (scripts/test-all.sh does)"
    );
    let report = report_path("nextest");
    let out = cargo(
        &[
            "nextest",
            "run",
            "--test",
            "it",
            "--no-fail-fast",
            "--test-threads",
            "4",
            "-E",
            "test(/^fixture::/)",
        ],
        &report,
    );
    let all = text(&out);
    assert!(
        !out.status.success(),
        "two tests were asked to fail:\n{all}"
    );
    assert!(
        all.contains("23 tests run: 21 passed, 2 failed"),
        "nextest ran the fixture:\n{all}"
    );
    let lines = check_lines(&report);
    assert_eq!(pids(&lines).len(), 23, "a process per test");
    assert!(
        lines.iter().all(|l| l["connect_us"].as_u64().is_some()),
        "each process opened its own connection"
    );

    let printed = venomqa(&["report", report.to_str().unwrap()], &[]);
    let shown = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(printed.status.success(), "{}", text(&printed));
    println!("{shown}");
    for expected in [
        "23 tests in 23 processes: 20 ok, 2 panic, 1 err",
        "backends: sqlite 23 (23 transaction)",
        "23 new connections",
        "43 created", // 20 tests with a block x 2, 3 without x 1
        "43 done",    // as many rollbacks
        "\n10 slowest tests\n",
    ] {
        assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
    }
    for row in [
        "tests ",
        "isolation ",
        "  lease wait ",
        "  connect ",
        "  checkpoints ",
        "  rollbacks ",
        "  set-up ",
        "test bodies ",
    ] {
        assert!(
            shown.lines().any(|l| l.starts_with(row)),
            "{row:?} in:\n{shown}"
        );
    }
    let slow_rows: Vec<&str> = shown
        .split("\n10 slowest tests\n")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .collect();
    assert_eq!(slow_rows.len(), 10, "{shown}");
    for row in slow_rows {
        assert!(
            [
                "lease wait ",
                "connect ",
                "checkpoints ",
                "rollbacks ",
                "set-up ",
                "the test body "
            ]
            .iter()
            .any(|why| row.contains(why))
                && row.contains("fixture::"),
            "{row}"
        );
    }

    // The path may come from VENOMQA_REPORT.
    let from_env = venomqa(&["report"], &[("VENOMQA_REPORT", &report)]);
    assert_eq!(String::from_utf8_lossy(&from_env.stdout), shown);
    let _ = std::fs::remove_file(&report);
}

#[test]
fn a_cargo_test_run_of_one_process_writes_the_same_lines() {
    let report = report_path("cargo-test");
    let out = cargo(&["test", "--test", "it", "--", "fixture::"], &report);
    let all = text(&out);
    assert!(
        all.contains("test result: FAILED. 21 passed; 2 failed"),
        "{all}"
    );
    let lines = check_lines(&report);
    assert_eq!(pids(&lines).len(), 1, "the threads of one process");
    let _ = std::fs::remove_file(&report);
}

#[test]
fn a_missing_or_foreign_file_is_one_clear_line() {
    let missing = report_path("missing");
    let out = venomqa(&["report", missing.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("venomqa report: cannot read ")
            && err.contains("run the tests with VENOMQA_REPORT="),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    std::fs::write(&missing, "{\"hello\": 1}\n").unwrap();
    let out = venomqa(&["report", missing.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(": line 1: not a venomqa report line"), "{err}");
    let _ = std::fs::remove_file(&missing);

    let out = venomqa(&["report"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("VENOMQA_REPORT is not set"));
}
