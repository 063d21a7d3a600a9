//! The runner's rules, against an in-process app that writes to a SQLite file on its own
//! connection, with a capture state manager on that file (the real rollback path; the
//! real server is tested in `examples/tests/it/journeys.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use super::*;
use crate::sqlite::SqliteStateManager;
use crate::{BackendConfig, StateManager};

struct Db {
    manager: SqliteStateManager,
    file: PathBuf,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.manager.disconnect();
        for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.file.display()));
        }
    }
}

fn db(tag: &str, isolation: &str) -> Db {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "venomqa-journey-{tag}-{}-{}.sqlite",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut manager = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(file.to_str().unwrap())
            .with_option("isolation", isolation),
    )
    .unwrap();
    manager.connect().unwrap();
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
        .unwrap();
    Db { manager, file }
}

fn count(file: &PathBuf) -> i64 {
    rusqlite::Connection::open(file)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
        .unwrap()
}

/// Another capture manager on the same file.
fn manager_on(file: &std::path::Path) -> SqliteStateManager {
    let mut m = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(file.to_str().unwrap())
            .with_option("isolation", "capture"),
    )
    .unwrap();
    m.connect().unwrap();
    m
}

/// The app: `POST /items {"name"}` (201, or 409 when the name is taken), `GET /items`
/// (the count), on a connection of its own per request.
fn app(file: &std::path::Path) -> Client {
    app_at(file, "http://app.test")
}

/// The app on `file`, answering at `base`.
fn app_at(file: &std::path::Path, base: &str) -> Client {
    let file = file.to_owned();
    Client::with_transport(base, move |req: &Request| {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        Ok(match (req.method, req.path()) {
            (Method::Post, "/items") => {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                match conn.execute(
                    "INSERT INTO items (name) VALUES (?1)",
                    [body["name"].as_str().unwrap()],
                ) {
                    Ok(_) => Response::new(201).with_json(&json!({"id": conn.last_insert_rowid()})),
                    Err(_) => Response::new(409).with_json(&json!({"error": "name taken"})),
                }
            }
            (Method::Get, "/items") => {
                let n: i64 = conn
                    .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
                    .unwrap();
                Response::new(200).with_json(&json!({"count": n}))
            }
            _ => Response::new(404),
        })
    })
}

fn add(step: &str, name: &'static str) -> Step {
    Step::new(step, move |c, ctx| {
        let r = c
            .post("/items")
            .json(&json!({ "name": name }))
            .send()?
            .expect_status(201)?;
        ctx.set(name, r.value("/id")?);
        Ok(())
    })
}

fn expect_count(step: &str, n: i64) -> Step {
    Step::new(step, move |c, _| {
        c.get("/items").send()?.expect_json("/count", n)?;
        Ok(())
    })
}

#[test]
fn validation_names_every_problem() {
    let s = || Step::new("s", |_, _| Ok(()));
    let cases: Vec<(Journey, &str)> = vec![
        (Journey::new("j"), "it has no steps"),
        (
            Journey::new("j").step(s()).branch(Branch::new("nope").path(Path::new("p").step(s()))),
            "branch 1 is on checkpoint \"nope\", which is not made before it (checkpoints available there: none)",
        ),
        (
            Journey::new("j").checkpoint("a").checkpoint("a"),
            "checkpoint \"a\" is made twice",
        ),
        (Journey::new("j").step(s()).step(s()), "step \"s\" appears twice in the journey's steps"),
        (
            Journey::new("j")
                .checkpoint("a")
                .branch(Branch::new("a").path(Path::new("p").step(s())).path(Path::new("p").step(s()))),
            "path \"p\" appears twice (in the branches from \"a\" and \"a\")",
        ),
        (
            Journey::new("j").checkpoint("a").branch(Branch::new("a").path(Path::new("p"))),
            "path \"p\" of the branch from \"a\" has no steps",
        ),
        (Journey::new("j").checkpoint("a").branch(Branch::new("a")), "the branch from \"a\" has no paths"),
        (
            Journey::new("j").checkpoint("venomqa_journey"),
            "checkpoint \"venomqa_journey\": names starting with venomqa_ are reserved",
        ),
        (Journey::new("j").checkpoint("a-b"), "checkpoint \"a-b\": invalid checkpoint name"),
        (
            Journey::new("j")
                .checkpoint("a")
                .checkpoint("b")
                .branch(Branch::new("a").path(Path::new("p").step(s())))
                .branch(Branch::new("b").path(Path::new("q").step(s()))),
            "branch 2 is on checkpoint \"b\", which an earlier branch's rollbacks discarded",
        ),
        (
            Journey::new("j").step(s().expect_failure().expect_status(201)),
            "step \"s\" of the journey's steps expects failure and status 201, which is a success",
        ),
        (
            Journey::new("j").checkpoint("a").branch(Branch::new("a").path(Path::new("p").step(s()).step(s()))),
            "step \"s\" appears twice in path \"p\"",
        ),
    ];
    for (journey, expected) in cases {
        let e = journey.validate().unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("journey \"j\" is invalid: "), "{text}");
        assert!(
            text.contains(expected),
            "{text}\n  should contain: {expected}"
        );
        assert!(!text.contains('\n'), "{text}");
        // The runner refuses it before touching anything.
        let d = db("invalid", "capture");
        let e = JourneyRunner::new(app(&d.file))
            .state_manager(Manager::new(d.manager.backend().clone()))
            .run(&journey);
        assert!(matches!(e, Err(JourneyError::Invalid { .. })), "{e:?}");
    }
    // Valid: two branches on one checkpoint, a later checkpoint made again after a branch.
    Journey::new("j")
        .checkpoint("a")
        .branch(Branch::new("a").path(Path::new("p").step(s())))
        .branch(Branch::new("a").path(Path::new("q").step(s())))
        .checkpoint("b")
        .branch(Branch::new("b").path(Path::new("r").step(s())))
        .validate()
        .unwrap();
}

use crate::Manager;

#[test]
fn each_path_starts_from_the_checkpoint_database_and_context() {
    let mut d = db("paths", "capture");
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let peek = |label: &'static str| {
        let seen = seen.clone();
        Step::new(format!("peek_{label}"), move |_, ctx| {
            seen.lock()
                .push(format!("{label}: {:?}", ctx.keys().collect::<Vec<_>>()));
            Ok(())
        })
    };
    let journey = Journey::new("paths")
        .step(add("first", "ann"))
        .checkpoint("one_item")
        .step(add("between", "between")) // undone before the first path
        .branch(
            Branch::new("one_item")
                .path(
                    Path::new("p1")
                        .step(peek("p1"))
                        .step(expect_count("count_1", 1))
                        .step(add("bob", "bob"))
                        .step(expect_count("count_2", 2)),
                )
                .path(
                    Path::new("p2")
                        .step(peek("p2"))
                        .step(expect_count("count_1", 1))
                        .step(add("bob", "bob")),
                )
                .path(
                    Path::new("p3")
                        .step(add("bob", "bob"))
                        .step(add("cy", "cy"))
                        .step(expect_count("count_3", 3)),
                ),
        )
        .step(peek("after"))
        .step(expect_count("count_after", 1))
        .step(add("bob_at_last", "bob"));
    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .run(&journey)
        .unwrap();
    result.assert_passed();
    assert_eq!(
        *seen.lock(),
        ["p1: [\"ann\"]", "p2: [\"ann\"]", "after: [\"ann\"]"],
        "each path and the rest of the journey see the context of the checkpoint"
    );
    assert_eq!(
        result.rollbacks(),
        4,
        "one before the first path (a step ran since the checkpoint), one after each path"
    );
    assert_eq!(result.path_counts(), (3, 0, 0));
    assert_eq!(
        count(&d.file),
        0,
        "the journey's own checkpoint is discarded at the end"
    );
    assert!(d.manager.checkpoints().is_empty());
}

#[test]
fn a_failure_stops_its_path_and_fail_fast_stops_the_journey() {
    let mut d = db("failfast", "capture");
    let journey = |_: ()| {
        Journey::new("ff")
            .checkpoint("start")
            .branch(
                Branch::new("start")
                    .path(
                        Path::new("bad")
                            .step(add("ann", "ann"))
                            .step(expect_count("wrong", 5))
                            .step(add("never", "never")),
                    )
                    .path(
                        Path::new("good")
                            .step(add("ann", "ann"))
                            .step(expect_count("one", 1)),
                    ),
            )
            .step(expect_count("after", 0))
    };
    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .run(&journey(()))
        .unwrap();
    assert!(!result.passed());
    let bad = result.path("bad").unwrap();
    assert_eq!(
        bad.step_results
            .iter()
            .map(|s| s.status)
            .collect::<Vec<_>>(),
        [Status::Passed, Status::Failed, Status::Skipped]
    );
    assert_eq!(
        bad.step_results[2].failure.as_ref().unwrap().message,
        "skipped: step \"wrong\" failed"
    );
    assert_eq!(
        result.path("good").unwrap().status,
        Status::Passed,
        "the next path ran, from a clean state"
    );
    assert!(
        result.step_results().all(|s| s.passed()),
        "the journey went on after the branch"
    );
    let diff = bad.diff.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(diff.to_string(), "items +1 (id=1)");
    assert_eq!(result.issues.len(), 1);
    assert_eq!(
        result.issues[0].location(),
        "ff > branch from start > path bad > step wrong"
    );
    assert_eq!(
        result.issues[0].error,
        "GET http://app.test/items: response body at /count: expected 5, got 1"
    );

    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .fail_fast(true)
        .run(&journey(()))
        .unwrap();
    assert_eq!(result.path_counts(), (0, 1, 1));
    let good = result.path("good").unwrap();
    assert_eq!(
        good.skip_reason.as_deref(),
        Some("fail_fast: path \"bad\" failed")
    );
    assert!(result.step_results().all(|s| s.status == Status::Skipped));
    assert_eq!(count(&d.file), 0);
}

#[test]
fn a_panicking_step_fails_its_path_and_the_rollback_still_happens() {
    let mut d = db("panic", "capture");
    let journey = Journey::new("panics").checkpoint("start").branch(
        Branch::new("start")
            .path(
                Path::new("boom")
                    .step(add("ann", "ann"))
                    .step(Step::new("explode", |_, _| -> Result<(), StepError> {
                        panic!("the step blew up")
                    })),
            )
            .path(
                Path::new("after_boom")
                    .step(add("ann", "ann"))
                    .step(expect_count("one", 1)),
            ),
    );
    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .run(&journey)
        .unwrap();
    let boom = result.path("boom").unwrap();
    assert_eq!(boom.status, Status::Failed);
    let f = boom.step_results[1].failure.as_ref().unwrap();
    assert_eq!(
        (f.kind, f.message.as_str()),
        (FailureKind::Panic, "the step panicked: the step blew up")
    );
    assert_eq!(
        boom.diff.as_ref().unwrap().as_ref().unwrap().to_string(),
        "items +1 (id=1)"
    );
    assert!(result.path("after_boom").unwrap().success(), "{result}");
    assert_eq!(count(&d.file), 0);
}

#[test]
fn invariants_run_after_each_step_and_name_it() {
    let mut d = db("invariant", "capture");
    let checked = std::sync::Arc::new(AtomicUsize::new(0));
    let c2 = checked.clone();
    let at_most_two = Invariant::new("at most two items", move |check| {
        c2.fetch_add(1, Ordering::Relaxed);
        let n: i64 = check.connection::<crate::sqlite::Sqlite>()?.query_row(
            "SELECT COUNT(*) FROM items",
            [],
            |r| r.get(0),
        )?;
        if n > 2 {
            return Err(StepError::msg(format!("{n} items")));
        }
        Ok(())
    });
    let via_api = Invariant::new("the API answers", |check| {
        check.client().get("/items").send()?.expect_status(200)?;
        Ok(())
    });
    let journey = Journey::new("inv").checkpoint("start").branch(
        Branch::new("start").path(
            Path::new("three")
                .step(add("a", "a"))
                .step(add("b", "b"))
                .step(add("c", "c"))
                .step(add("d", "d")),
        ),
    );
    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .invariant(via_api)
        .invariant(at_most_two)
        .run(&journey)
        .unwrap();
    let path = result.path("three").unwrap();
    let f = path.step_results[2].failure.as_ref().unwrap();
    assert_eq!(f.kind, FailureKind::Invariant);
    assert_eq!(
        f.message,
        "invariant \"at most two items\" violated after step \"c\" of path \"three\": 3 items"
    );
    assert_eq!(
        checked.load(Ordering::Relaxed),
        3,
        "after a, b and c; d never ran"
    );
    assert_eq!(path.step_results[3].status, Status::Skipped);
    assert_eq!(result.issues[0].severity, Severity::Critical);
    assert_eq!(count(&d.file), 0);
}

#[test]
fn refuses_a_state_manager_without_capture() {
    let mut d = db("nocapture", "transaction");
    let journey = Journey::new("leaky")
        .checkpoint("start")
        .branch(Branch::new("start").path(Path::new("p").step(add("ann", "ann"))));
    let e = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .run(&journey)
        .unwrap_err();
    assert!(matches!(e, JourneyError::NoCapture { .. }));
    let text = e.to_string();
    assert!(
        text.starts_with("journey \"leaky\" refused: the state manager venomqa::manager::Manager<venomqa::backends::sqlite::Sqlite> does not capture what other connections write"),
        "{text}"
    );
    assert!(text.contains("`isolation: capture`"), "{text}");
    assert_eq!(count(&d.file), 0, "nothing ran");

    let mut memory = Manager::open(crate::memory::Memory).unwrap();
    let e = JourneyRunner::new(app(&d.file))
        .state_manager(&mut memory)
        .run(&journey)
        .unwrap_err();
    assert!(matches!(e, JourneyError::NoCapture { .. }), "{e}");

    let e = JourneyRunner::new(app(&d.file)).run(&journey).unwrap_err();
    assert_eq!(e.to_string(), "journey \"leaky\" has branches, but the runner has no state manager to roll the database back between paths; give it one with .state_manager(..)");
}

#[test]
fn parallel_paths_need_a_database_and_a_server_per_worker() {
    let mut d = db("parallel", "capture");
    let journey = Journey::new("par").checkpoint("start").branch(
        Branch::new("start")
            .path(Path::new("p").step(add("ann", "ann")))
            .path(Path::new("q").step(add("bob", "bob"))),
    );
    let e = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .parallel_paths(4)
        .run(&journey)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "journey \"par\": parallel_paths(4) refused: every path rolls back the database behind its worker's state manager, and this runner has 1 worker (the state manager venomqa::manager::Manager<venomqa::backends::sqlite::Sqlite>), so paths running at the same time would see and undo each other's writes; add 3 more with .worker(client, state_manager), each with its own server and database, or run paths one at a time (the default)"
    );

    // Two workers on one database file: refused.
    let mut same = manager_on(&d.file);
    let e = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .worker(app_at(&d.file, "http://second.test"), &mut same)
        .parallel_paths(2)
        .run(&journey)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "journey \"par\": parallel_paths(2) refused: workers 0 and 1 share the database /"
        ),
        "{e}"
    );
    drop(same);

    // Two workers sending to one server: refused.
    let mut other = db("parallel_other", "capture");
    let e = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .worker(app(&other.file), &mut other.manager)
        .parallel_paths(2)
        .run(&journey)
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("workers 0 and 1 send to the same server http://app.test, which writes to one database; give each worker a server on its own database"), "{e}");
    assert_eq!((count(&d.file), count(&other.file)), (0, 0));
}

#[test]
fn parallel_paths_run_on_their_own_workers_and_report_in_journey_order() {
    let mut one = db("lane0", "capture");
    let mut two = db("lane1", "capture");
    let threads = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = |name: &'static str| {
        let threads = threads.clone();
        Step::new("where", move |c, _| {
            threads.lock().push((
                name,
                std::thread::current().name().unwrap_or("").to_owned(),
                c.base_url().to_owned(),
            ));
            Ok(())
        })
    };
    let mut branch = Branch::new("start");
    for (i, name) in ["p0", "p1", "p2", "p3", "p4"].into_iter().enumerate() {
        let mut path = Path::new(name)
            .step(seen(name))
            .step(add("bob", "bob"))
            .step(expect_count("two", 2));
        if i == 3 {
            path = path.step(expect_count("fails_on_purpose", 7));
        }
        branch = branch.path(path);
    }
    let journey = Journey::new("lanes")
        .step(add("ann", "ann"))
        .checkpoint("start")
        .branch(branch)
        .step(expect_count("after", 1));
    let result = JourneyRunner::new(app(&one.file))
        .state_manager(&mut one.manager)
        .worker(app_at(&two.file, "http://second.test"), &mut two.manager)
        .parallel_paths(2)
        .run(&journey)
        .unwrap();
    let names: Vec<&str> = result
        .path_results()
        .map(|p| p.path_name.as_str())
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
    let statuses: Vec<Status> = result.path_results().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [
            Status::Passed,
            Status::Passed,
            Status::Passed,
            Status::Failed,
            Status::Passed
        ],
        "{result}"
    );
    assert_eq!(
        result
            .path("p3")
            .unwrap()
            .diff
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .to_string(),
        "items +1 (id=2)"
    );
    let mut ran = threads.lock().clone();
    ran.sort();
    assert_eq!(
        ran,
        [
            (
                "p0",
                "venomqa-journey-worker-0".to_owned(),
                "http://app.test".to_owned()
            ),
            (
                "p1",
                "venomqa-journey-worker-1".to_owned(),
                "http://second.test".to_owned()
            ),
            (
                "p2",
                "venomqa-journey-worker-0".to_owned(),
                "http://app.test".to_owned()
            ),
            (
                "p3",
                "venomqa-journey-worker-1".to_owned(),
                "http://second.test".to_owned()
            ),
            (
                "p4",
                "venomqa-journey-worker-0".to_owned(),
                "http://app.test".to_owned()
            ),
        ]
    );
    assert_eq!(result.workers(), 2);
    assert_eq!(result.rollbacks(), 5);
    assert!(
        result.summary().contains("; 2 workers)"),
        "{}",
        result.summary()
    );
    assert_eq!(result.issues.len(), 1, "{result}");
    assert_eq!(
        (count(&one.file), count(&two.file)),
        (0, 0),
        "both databases are back"
    );
}

#[test]
fn expectations_retries_and_expected_failures() {
    let mut d = db("expect", "capture");
    let tries = std::sync::Arc::new(AtomicUsize::new(0));
    let t2 = tries.clone();
    let journey = Journey::new("expect")
        .step(add("ann", "ann"))
        .step(
            Step::new("ann_again", |c, _| {
                c.post("/items")
                    .json(&json!({"name": "ann"}))
                    .send()
                    .map_err(Into::into)
            })
            .expect_status(409),
        )
        .step(
            Step::new("ann_refused", |c, _| {
                c.post("/items")
                    .json(&json!({"name": "ann"}))
                    .send()
                    .map_err(Into::into)
            })
            .expect_failure(),
        )
        .step(
            Step::new("flaky", move |_, _| {
                if t2.fetch_add(1, Ordering::Relaxed) < 2 {
                    return Err(StepError::msg("not yet"));
                }
                Ok(())
            })
            .retries(2),
        )
        .checkpoint("after")
        .branch(
            Branch::new("after")
                .path(
                    Path::new("wrong_status").step(
                        Step::new("bob", |c, _| {
                            c.post("/items")
                                .json(&json!({"name": "bob"}))
                                .send()
                                .map_err(Into::into)
                        })
                        .expect_status(409),
                    ),
                )
                .path(
                    Path::new("unexpected_success").step(
                        Step::new("bob", |c, _| {
                            c.post("/items")
                                .json(&json!({"name": "bob"}))
                                .send()
                                .map_err(Into::into)
                        })
                        .expect_failure(),
                    ),
                )
                .path(
                    Path::new("silent")
                        .step(Step::new("no_request", |_, _| Ok(())).expect_status(200)),
                ),
        );
    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .run(&journey)
        .unwrap();
    let main: Vec<_> = result.step_results().collect();
    assert!(main.iter().all(|s| s.passed()), "{result}");
    assert_eq!(main[3].attempts, 3);
    let msg = |p: &str| {
        result.path(p).unwrap().step_results[0]
            .failure
            .clone()
            .unwrap()
            .message
    };
    assert_eq!(
        msg("wrong_status"),
        "POST http://app.test/items: expected status 409, got 201; response body: {\"id\":2}"
    );
    assert_eq!(
        msg("unexpected_success"),
        "expected this step to fail, but it succeeded (POST http://app.test/items -> 201 Created)"
    );
    assert_eq!(
        msg("silent"),
        "expected status 200, but the step sent no request"
    );
    assert_eq!(count(&d.file), 0);
}

#[test]
fn the_report_shows_the_tree_the_failure_and_ci_formats() {
    let mut d = db("report", "capture");
    let journey = Journey::new("shop")
        .step(add("signup", "ann"))
        .checkpoint("signed_up")
        .branch(
            Branch::new("signed_up")
                .path(Path::new("dup").step(Step::new("signup_again", |c, _| {
                    c.post("/items")
                        .bearer("s3cret-token")
                        .json(&json!({"name": "ann", "password": "pw-123"}))
                        .send()?
                        .expect_status(201)?;
                    Ok(())
                })))
                .path(Path::new("second").step(add("bob", "bob"))),
        );
    let result = JourneyRunner::new(app(&d.file))
        .state_manager(&mut d.manager)
        .run(&journey)
        .unwrap();
    let text = result.to_string();
    for expected in [
        "✗ journey shop FAILED: 1 of 2 paths passed (1 failed) in 1 branch (",
        "├─ ✓ signup",
        "├─ ◆ checkpoint signed_up",
        "└─ ✗ branch from signed_up (1/2 paths passed)",
        "   ├─ ✗ path dup",
        "   │  └─ ✗ signup_again",
        "   │  └─ ✗ signup_again",
        "   │       POST http://app.test/items -> 409 Conflict",
        "   └─ ✓ path second",
        "Failures (1):",
        "1) shop > branch from signed_up > path dup > step signup_again",
        "   POST http://app.test/items: expected status 201, got 409; response body: {\"error\":\"name taken\"}",
        "   request:  POST http://app.test/items",
        "             Authorization: Bearer ***",
        "             {\"name\":\"ann\",\"password\":\"***\"}",
        "   response: 409 Conflict (",
        "   database changes in this path (since checkpoint signed_up): no changes",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(
        !text.contains("s3cret") && !text.contains("pw-123"),
        "{text}"
    );

    let xml = result.to_junit();
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &junit.test_suites[0];
    assert_eq!(
        (
            suite.name.as_str(),
            suite.tests,
            suite.failures,
            suite.errors,
            suite.skipped
        ),
        ("shop", 3, 1, 0, 0),
        "{xml}"
    );
    let dup = suite
        .test_cases
        .iter()
        .find(|c| c.name.as_str() == "dup")
        .unwrap_or_else(|| panic!("no case dup: {xml}"));
    assert_eq!(dup.classname.as_deref(), Some("shop.signed_up"), "{xml}");
    let quick_junit::TestCaseStatus::NonSuccess { message, .. } = &dup.status else {
        panic!("dup did not fail: {xml}")
    };
    assert_eq!(message.as_deref(), Some("step signup_again: POST http://app.test/items: expected status 201, got 409; response body: {\"error\":\"name taken\"}"), "{xml}");
    assert!(!xml.contains("s3cret"));

    let json = result.to_json();
    assert_eq!(json["success"], false);
    assert_eq!(
        json["paths"],
        json!({"passed": 1, "failed": 1, "skipped": 0})
    );
    let ex = &json["items"][2]["path_results"][0]["step_results"][0]["exchanges"][0];
    assert_eq!(ex["response"]["status"], 409);
    assert_eq!(
        ex["request_headers"][0],
        json!(["Authorization", "Bearer ***"])
    );
    assert!(!json.to_string().contains("s3cret"));

    let dir = std::env::temp_dir().join(format!("venomqa-journey-reports-{}", std::process::id()));
    result.write_reports(&dir).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("shop.json")).unwrap()).unwrap();
    assert_eq!(written, json);
    assert_eq!(std::fs::read_to_string(dir.join("shop.xml")).unwrap(), xml);
    let _ = std::fs::remove_dir_all(&dir);

    let failed = result.clone().into_result().unwrap_err();
    assert_eq!(failed.to_string(), text);
    let caught = std::panic::catch_unwind(|| result.assert_passed()).unwrap_err();
    assert_eq!(crate::journey::runner::panic_message(&*caught), text);
}

#[test]
fn a_journey_without_branches_runs_without_a_state_manager() {
    let d = db("plain", "capture");
    let journey = Journey::new("plain")
        .step(add("ann", "ann"))
        .step(expect_count("one", 1));
    let result = JourneyRunner::new(app(&d.file)).run(&journey).unwrap();
    result.assert_passed();
    assert_eq!(
        count(&d.file),
        1,
        "no state manager: nothing is rolled back"
    );
}
