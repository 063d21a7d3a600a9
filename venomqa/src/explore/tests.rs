//! The explorer's rules, against an in-process app that writes to a SQLite file on its
//! own connection, with a capture state manager on that file (the real rollback path;
//! the real shop server in its own process is explored in `examples/tests/it/explore.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::journey::{
    Client, JourneyRunner, Method, Request, Response, TransportError, TransportErrorKind,
};
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

fn db(isolation: &str) -> Db {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "venomqa-explore-{}-{}.sqlite",
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
        .execute_batch(
            "CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
             INSERT INTO account VALUES (1, 10);
             CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT NOT NULL);",
        )
        .unwrap();
    Db { manager, file }
}

/// Every row of both tables, and the AUTOINCREMENT counter, read by a connection of its
/// own.
fn dump(file: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT 'account ' || id || ' ' || balance FROM account ORDER BY id",
        "SELECT 'log ' || id || ' ' || what FROM log ORDER BY id",
        "SELECT 'seq ' || name || ' ' || seq FROM sqlite_sequence ORDER BY name",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(Result::unwrap));
    }
    out
}

/// The bank: `POST /deposit` (+5), `POST /withdraw` (-7, 422 below 7), `POST
/// /fast_withdraw` (-7, checked too unless `bug`), `POST /boom` (500), `GET /balance`.
/// Every write is logged. `down`: no answer at all (the server died).
fn bank(file: &Path, bug: bool, down: Arc<AtomicBool>) -> Client {
    let file = file.to_owned();
    Client::with_transport("http://bank.test", move |req: &Request| {
        if down.load(Ordering::SeqCst) {
            return Err(TransportError::new(
                TransportErrorKind::Unreachable,
                "connection refused",
            ));
        }
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        let balance: i64 = conn
            .query_row("SELECT balance FROM account WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        let change = |delta: i64, what: &str| {
            conn.execute(
                "UPDATE account SET balance = balance + ?1 WHERE id = 1",
                [delta],
            )
            .unwrap();
            conn.execute("INSERT INTO log (what) VALUES (?1)", [what])
                .unwrap();
            Response::new(200).with_json(&json!({"balance": balance + delta}))
        };
        Ok(match (req.method, req.path()) {
            (Method::Post, "/deposit") => change(5, "deposit"),
            (Method::Post, "/withdraw") if balance < 7 => Response::new(422),
            (Method::Post, "/withdraw") => change(-7, "withdraw"),
            (Method::Post, "/fast_withdraw") if balance < 7 && !bug => Response::new(422),
            (Method::Post, "/fast_withdraw") => change(-7, "fast"),
            (Method::Post, "/boom") => Response::new(500).with_body("kaboom"),
            (Method::Get, "/balance") => Response::new(200).with_json(&json!({"balance": balance})),
            _ => Response::new(404),
        })
    })
}

fn post(name: &'static str) -> Action {
    Action::new(name, move |client, _| {
        Ok(client.post(&format!("/{name}")).send()?)
    })
}

fn never_negative() -> Invariant {
    Invariant::new("balance never below 0", |check| {
        let balance = check.client().get("/balance").send()?.value("/balance")?;
        if balance.as_i64() < Some(0) {
            return Err(StepError::msg(format!("the balance is {balance}")));
        }
        Ok(())
    })
}

fn world() -> World {
    World::new("bank")
        .action(post("deposit"))
        .action(post("withdraw"))
        .action(post("fast_withdraw"))
        .invariant(never_negative())
}

fn up() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

#[test]
fn bfs_finds_the_shortest_sequence_and_the_database_comes_back() {
    let mut db = db("capture");
    let baseline = dump(&db.file);
    let result = Explorer::new(&world(), bank(&db.file, true, up()))
        .state_manager(&mut db.manager)
        .max_depth(4)
        .run()
        .unwrap();
    println!("{result}");
    assert!(!result.passed());
    assert_eq!(result.stop, StopReason::Exhausted);
    let v = result.violation("balance never below 0").expect("found");
    assert_eq!(v.sequence(), ["withdraw", "fast_withdraw"]);
    assert_eq!(v.found, v.sequence, "breadth first finds a shortest one");
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(v.message, "the balance is -4");
    assert_eq!(v.path.len(), 2);
    assert!(v.path[1]
        .outcome
        .contains("POST http://bank.test/fast_withdraw -> 200 OK"));
    let diff = v.path[1].diff.as_ref().unwrap().to_string();
    assert!(
        diff.contains("account ~1 (id=1 balance)") && diff.contains("log +2"),
        "{diff}"
    );
    assert_eq!(v.exchanges.len(), 1);
    assert_eq!(v.check_exchanges[0].url, "http://bank.test/balance");
    // withdraw and fast_withdraw from 10 reach one state: balance 3 and a log row id=1
    // (the diff lists an inserted row by its key), so it is expanded once.
    assert!(result.states > 5, "{}", result.states);
    assert!(result.replays > 0, "breadth first replays paths");
    assert_eq!(dump(&db.file), baseline, "back at the baseline");
    assert_eq!(db.manager.checkpoints().len(), 0);
    let text = result.to_string();
    assert!(text.contains("Violations (1):"), "{text}");
    assert!(text.contains("1. withdraw"), "{text}");
}

#[test]
fn every_strategy_finds_it_and_shrinks_it_to_two_actions() {
    for strategy in [
        Strategy::Dfs,
        Strategy::Random { seed: 7 },
        Strategy::CoverageGuided { seed: 7 },
    ] {
        let mut db = db("capture");
        let baseline = dump(&db.file);
        let result = Explorer::new(&world(), bank(&db.file, true, up()))
            .state_manager(&mut db.manager)
            .strategy(strategy)
            .max_depth(5)
            .run()
            .unwrap();
        let v = result.violation("balance never below 0").expect("found");
        assert_eq!(v.sequence.len(), 2, "{strategy}: {result}");
        assert!(v.shrunk);
        assert_eq!(v.sequence[1], "fast_withdraw", "{strategy}");
        assert_eq!(dump(&db.file), baseline, "{strategy}");
        if strategy == Strategy::Dfs {
            assert_eq!(result.replays, 0, "depth first never replays");
        }
    }
}

#[test]
fn the_same_seed_explores_the_same_way() {
    let run = |seed| {
        let mut db = db("capture");
        let r = Explorer::new(&world(), bank(&db.file, true, up()))
            .state_manager(&mut db.manager)
            .strategy(Strategy::Random { seed })
            .max_depth(5)
            .max_steps(40)
            .run()
            .unwrap();
        (
            r.states,
            r.steps,
            r.replays,
            r.violations
                .iter()
                .map(|v| (v.found.clone(), v.sequence.clone()))
                .collect::<Vec<_>>(),
            r.coverage.clone(),
        )
    };
    let a = run(11);
    assert_eq!(a, run(11));
    assert_ne!(a, run(12), "another seed, another order");
}

#[test]
fn without_the_bug_nothing_is_violated_and_every_state_is_seen_once() {
    let mut db = db("capture");
    let result = Explorer::new(&world(), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_depth(3)
        .run()
        .unwrap();
    println!("{result}");
    result.assert_passed();
    assert_eq!(result.stop, StopReason::Exhausted);
    // Depth 3 of 3 actions: 1 + 3 + 9 + 27 = 40 sequences, but a refused withdrawal
    // leaves the state as it was, so fewer states than sequences.
    assert!(result.states < 40, "{}", result.states);
    assert!(result.coverage.action("withdraw").unwrap().outcomes["200"] > 0);
    assert!(result
        .coverage
        .action("fast_withdraw")
        .unwrap()
        .outcomes
        .contains_key("422"));
    assert!(result.coverage.never_run().is_empty());
}

#[test]
fn a_budget_is_a_result_unless_asked_otherwise() {
    let mut db = db("capture");
    let baseline = dump(&db.file);
    let result = Explorer::new(&world(), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_depth(10)
        .max_steps(5)
        .run()
        .unwrap();
    assert_eq!(result.stop, StopReason::MaxSteps);
    assert_eq!(result.steps, 5);
    assert!(result.passed(), "{result}");
    let result = Explorer::new(&world(), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_states(3)
        .budget_is_failure(true)
        .run()
        .unwrap();
    assert_eq!(result.stop, StopReason::MaxStates);
    assert!(!result.passed());
    assert!(result
        .to_junit()
        .contains("budget: the state budget ran out"));
    let result = Explorer::new(&world(), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_steps(None)
        .time_limit(Duration::ZERO)
        .run()
        .unwrap();
    assert_eq!(result.stop, StopReason::TimeLimit);
    assert_eq!(dump(&db.file), baseline);
}

#[test]
fn faults_stop_cleanly_and_say_what_they_are() {
    let cases: Vec<(World, FaultKind, &str)> = vec![
        (
            world().action(post("deposit2").precondition(|_| panic!("bad precondition"))),
            FaultKind::PreconditionPanicked,
            "the precondition of action \"deposit2\" panicked: bad precondition",
        ),
        (
            world().action(Action::new("explode", |client, _| -> Result<(), StepError> {
                client.post("/deposit").send()?;
                panic!("the action's own bug")
            })),
            FaultKind::ActionPanicked,
            "action \"explode\" panicked: the action's own bug (last request: POST http://bank.test/deposit -> 200 OK)",
        ),
        (
            world().invariant(Invariant::new("reads a missing table", |check| {
                let db = check.connection::<crate::sqlite::Sqlite>()?;
                db.query_row("SELECT COUNT(*) FROM nope", [], |r| r.get::<_, i64>(0))?;
                Ok(())
            })),
            FaultKind::InvariantFailed,
            "invariant \"reads a missing table\" could not check after step \"setup\": no such table: nope",
        ),
        (
            world().invariant(Invariant::new("panics", |_| panic!("oops"))),
            FaultKind::InvariantFailed,
            "invariant \"panics\" panicked after step \"setup\": oops",
        ),
        (
            world().setup(|client, _| {
                client.post("/deposit").send()?;
                Err::<(), _>(StepError::msg("no catalogue"))
            }),
            FaultKind::Setup,
            "the world's setup failed, so there is no state to explore: it returned an error: no catalogue (last request: POST http://bank.test/deposit -> 200 OK)",
        ),
    ];
    for (w, kind, message) in cases {
        let mut db = db("capture");
        let baseline = dump(&db.file);
        let result = Explorer::new(&w, bank(&db.file, false, up()))
            .state_manager(&mut db.manager)
            .max_depth(3)
            .run()
            .unwrap();
        let fault = result.fault.as_ref().unwrap_or_else(|| panic!("{result}"));
        assert_eq!(fault.kind, kind, "{result}");
        assert!(fault.message.starts_with(message), "{}", fault.message);
        assert_eq!(result.stop, StopReason::Fault);
        assert!(!result.passed());
        assert!(result.cleanup.is_ok());
        assert_eq!(dump(&db.file), baseline, "{kind}");
        assert!(result.to_string().contains(&format!("Fault ({kind})")));
        assert!(result.to_junit().contains("type=\"fault\""));
    }
}

#[test]
fn a_server_that_dies_mid_exploration_is_a_fault_and_the_database_comes_back() {
    let mut db = db("capture");
    let baseline = dump(&db.file);
    let down = up();
    let steps = Arc::new(AtomicUsize::new(0));
    let (d, s) = (down.clone(), steps.clone());
    let w = world().action(Action::new("count", move |client, _| {
        if s.fetch_add(1, Ordering::SeqCst) == 3 {
            d.store(true, Ordering::SeqCst); // the server dies here
        }
        Ok(client.post("/deposit").send()?)
    }));
    let result = Explorer::new(&w, bank(&db.file, false, down))
        .state_manager(&mut db.manager)
        .max_depth(4)
        .run()
        .unwrap();
    let fault = result.fault.as_ref().expect("a fault");
    assert_eq!(fault.kind, FaultKind::ServerUnreachable, "{result}");
    assert!(
        fault.message.contains(
            "could not get an answer: POST http://bank.test/deposit: could not reach the server"
        ),
        "{}",
        fault.message
    );
    assert_eq!(fault.action.as_deref(), Some("count"));
    assert_eq!(fault.sequence.last().map(String::as_str), Some("count"));
    assert_eq!(dump(&db.file), baseline);

    // A server that is not there at all: the setup says so.
    let w = world().setup(|client, _| Ok(client.get("/balance").send()?));
    let result = Explorer::new(&w, bank(&db.file, false, Arc::new(AtomicBool::new(true))))
        .state_manager(&mut db.manager)
        .run()
        .unwrap();
    let fault = result.fault.as_ref().expect("a fault");
    assert_eq!(fault.kind, FaultKind::ServerUnreachable, "{result}");
    assert!(
        fault.message.contains("could not reach the server"),
        "{}",
        fault.message
    );
    assert_eq!(dump(&db.file), baseline);
}

#[test]
fn a_5xx_answer_is_a_violation_unless_turned_off() {
    let mut db = db("capture");
    let w = world().action(post("boom"));
    let result = Explorer::new(&w, bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_depth(2)
        .run()
        .unwrap();
    let v = result.violation(SERVER_ERRORS).expect("found");
    assert_eq!(v.sequence(), ["boom"]);
    assert_eq!(v.severity, Severity::High);
    assert!(v.message.contains("POST http://bank.test/boom -> 500 Internal Server Error answered with a server error; response body: kaboom"), "{}", v.message);
    let result = Explorer::new(
        &w.server_errors_are_violations(false),
        bank(&db.file, false, up()),
    )
    .state_manager(&mut db.manager)
    .max_depth(2)
    .run()
    .unwrap();
    assert!(result.passed(), "{result}");
}

#[test]
fn the_reproduction_fails_on_the_buggy_app_and_passes_on_the_fixed_one() {
    let mut db = db("capture");
    let baseline = dump(&db.file);
    let w = world();
    let result = Explorer::new(&w, bank(&db.file, true, up()))
        .state_manager(&mut db.manager)
        .strategy(Strategy::Dfs)
        .max_depth(4)
        .run()
        .unwrap();
    let v = result.violation("balance never below 0").unwrap();
    let journey = v.journey();
    assert_eq!(journey.name(), "repro_balance_never_below_0");
    let buggy = JourneyRunner::new(bank(&db.file, true, up()))
        .state_manager(&mut db.manager)
        .invariants(w.invariants())
        .run(journey)
        .unwrap();
    assert!(!buggy.passed());
    assert!(
        buggy
            .to_string()
            .contains("invariant \"balance never below 0\" violated after step \"fast_withdraw\""),
        "{buggy}"
    );
    let fixed = JourneyRunner::new(bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .invariants(w.invariants())
        .run(journey)
        .unwrap();
    fixed.assert_passed();
    // The same journey, by name, as the emitted test builds it.
    let by_name = w.journey("again", v.sequence()).unwrap();
    let again = JourneyRunner::new(bank(&db.file, true, up()))
        .state_manager(&mut db.manager)
        .invariants(w.invariants())
        .run(&by_name)
        .unwrap();
    assert!(!again.passed());
    assert_eq!(dump(&db.file), baseline);
    let e = w.journey("x", &["withdraw", "teleport"]).unwrap_err();
    assert_eq!(e.to_string(), "world \"bank\" has no action \"teleport\" (its actions: deposit, withdraw, fast_withdraw); check the sequence against the world the explorer ran");

    let rust = v.to_rust(
        &RustTemplate::new("bank_world()")
            .attribute("config = \"bank\"")
            .session("&mut venomqa::sqlite::SqliteCaptureSession")
            .prelude(["let server = start_bank(db.url().unwrap().expose());"])
            .client("server.client()"),
    );
    let expected_sequence = v
        .sequence()
        .iter()
        .map(|a| format!("                {a:?},\n"))
        .collect::<String>();
    assert!(rust.contains("#[venomqa::venom_test(config = \"bank\")]\nfn repro_balance_never_below_0(db: &mut venomqa::sqlite::SqliteCaptureSession) {\n    let server = start_bank(db.url().unwrap().expose());\n    let world = bank_world();\n"), "{rust}");
    assert!(rust.contains(&expected_sequence), "{rust}");
    assert!(rust.contains("    let result = venomqa::journey::JourneyRunner::new(server.client())\n        .state_manager(&mut *db)\n        .invariants(world.invariants())\n"), "{rust}");
}

#[test]
fn refusals_before_anything_runs() {
    let mut db = db("transaction");
    let e = Explorer::new(&world(), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .run()
        .unwrap_err();
    assert!(matches!(e, ExploreError::NoCapture { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("does not capture what other connections write"),
        "{e}"
    );
    let e = Explorer::new(&world(), bank(&db.file, false, up()))
        .run()
        .unwrap_err();
    assert!(matches!(e, ExploreError::NoStateManager { .. }), "{e}");
    let bad = World::new("bad")
        .action(post("deposit"))
        .action(post("deposit"))
        .invariant(never_negative())
        .invariant(never_negative());
    let e = Explorer::new(&bad, bank(&db.file, false, up()))
        .run()
        .unwrap_err();
    assert_eq!(e.to_string(), "world \"bad\" is invalid: action \"deposit\" appears twice; action names are unique; invariant \"balance never below 0\" appears twice; invariant names are unique; fix the world's definition");
    let e = World::new("").validate().unwrap_err();
    assert!(
        e.to_string()
            .contains("the world has no name; it has no actions"),
        "{e}"
    );
}

#[test]
fn reports_for_ci() {
    let mut db = db("capture");
    let dir = std::env::temp_dir().join(format!("venomqa-explore-reports-{}", std::process::id()));
    let result = Explorer::new(&world(), bank(&db.file, true, up()))
        .state_manager(&mut db.manager)
        .max_depth(3)
        .report_dir(&dir)
        .run()
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("explore_bank.json")).unwrap())
            .unwrap();
    assert_eq!(json["success"], false);
    assert_eq!(json["stop"], "exhausted");
    assert_eq!(
        json["violations"][0]["sequence"],
        json!(["withdraw", "fast_withdraw"])
    );
    assert_eq!(
        json["violations"][0]["test_name"],
        "repro_balance_never_below_0"
    );
    assert_eq!(json["states"], result.states);
    assert!(json["coverage"]["outcomes"]["200"].as_u64().unwrap() > 0);
    let xml = std::fs::read_to_string(dir.join("explore_bank.xml")).unwrap();
    let junit = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    let suite = &junit.test_suites[0];
    assert_eq!(
        (suite.name.as_str(), suite.tests, suite.failures),
        ("explore.bank", 2, 1),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"invariant balance never below 0\""),
        "{xml}"
    );
    assert!(xml.contains("1. withdraw"), "{xml}");
    // The graph: every state once with its depth, every transition between known states,
    // the violating one marked; the HTML page carries the same JSON.
    let g = &result.graph;
    assert_eq!(g.states(), result.states);
    assert_eq!(g.depths[0], 0);
    assert!(g
        .transitions
        .iter()
        .all(|t| t.from < g.states() && t.to < g.states()));
    assert!(g
        .transitions
        .iter()
        .any(|t| t.violated && g.depths[t.to] == 2));
    assert_eq!(
        json["graph"]["depths"].as_array().unwrap().len(),
        result.states
    );
    let html = std::fs::read_to_string(dir.join("explore_bank.html")).unwrap();
    // The page's data is to_json()'s, as written (not the JSON file read back: without
    // serde_json's float_roundtrip a float may come back one ULP off).
    assert!(html.contains(&result.to_json().to_string().replace('<', "\\u003c")));
    assert_eq!(
        json["violations"][0]["rust"],
        result.violations[0].to_rust(&RustTemplate::new("world()"))
    );
    let md = result.to_markdown();
    for expected in [
        "### ❌ exploration `bank` FAILED",
        "1. invariant `balance never below 0` (critical): the balance is -4",
        "   after `withdraw` → `fast_withdraw`",
        "   account updated id=1 (balance: 10 -> -4)",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in\n{md}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn fingerprints_ignore_what_they_are_told_to_and_use_observations() {
    // A token that changes every call: without ignoring it, every state is new.
    let n = Arc::new(AtomicUsize::new(0));
    let w = |ignore: bool| {
        let w = World::new("tokens")
            .setup({
                let n = n.clone();
                move |_, ctx| {
                    ctx.set("token", n.fetch_add(1, Ordering::SeqCst));
                    Ok(())
                }
            })
            .action(Action::new("refresh", {
                let n = n.clone();
                move |_, ctx| {
                    ctx.set("token", n.fetch_add(1, Ordering::SeqCst));
                    Ok(())
                }
            }));
        if ignore {
            w.fingerprint_ignores(["token"])
        } else {
            w
        }
    };
    let mut db = db("capture");
    let r = Explorer::new(&w(false), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_depth(4)
        .run()
        .unwrap();
    assert_eq!(r.states, 5, "every refresh looks like a new state");
    let r = Explorer::new(&w(true), bank(&db.file, false, up()))
        .state_manager(&mut db.manager)
        .max_depth(4)
        .run()
        .unwrap();
    assert_eq!(r.states, 1, "the token does not make a state");
    // An observation tells apart what the diff and the context do not.
    let r = Explorer::new(
        &w(true).observe("calls", {
            let n = n.clone();
            move |_| Ok(json!(n.load(Ordering::SeqCst) % 2))
        }),
        bank(&db.file, false, up()),
    )
    .state_manager(&mut db.manager)
    .max_depth(4)
    .run()
    .unwrap();
    assert_eq!(r.states, 2, "{r}");
}

#[test]
fn a_fingerprint_does_not_depend_on_the_order_keys_were_set() {
    let mut a = super::engine::Fingerprint::new();
    let mut b = super::engine::Fingerprint::new();
    let x: serde_json::Value =
        serde_json::from_str(r#"{"a": 1, "b": [{"c": 2, "d": 3}]}"#).unwrap();
    let y: serde_json::Value =
        serde_json::from_str(r#"{"b": [{"d": 3, "c": 2}], "a": 1}"#).unwrap();
    super::engine::add_json(&mut a, &x);
    super::engine::add_json(&mut b, &y);
    assert_eq!(a.finish(), b.finish());
    let mut c = super::engine::Fingerprint::new();
    super::engine::add_json(&mut c, &json!({"a": 1, "b": [{"c": 2, "d": 4}]}));
    assert_ne!(a.finish(), c.finish());
}
