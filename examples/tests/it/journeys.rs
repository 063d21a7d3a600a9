//! Journeys against the real shop server (`examples/shop`), in its own process on a free
//! port, writing to a SQLite file through its own pool; venomqa rolls that file back with
//! capture isolation. After every journey an independent connection reads the database
//! and finds it exactly at its baseline.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use std::sync::Mutex;
use venomqa::journey::{
    Branch, FailureKind, Invariant, Journey, JourneyError, JourneyRunner, Path, Status, Step,
    StepError,
};
use venomqa::sqlite::{Sqlite, SqliteCaptureSession, SqliteStateManager};
use venomqa::{venom_test, BackendConfig, StateManager};
use venomqa_examples::{
    checkout_journey, create_catalog, dump, expect_stats, invariants, ShopServer,
};

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

/// A fresh database file of this test, under the workspace's target directory.
pub(crate) fn fresh_file(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venomqa-journeys");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{tag}-{}.sqlite", std::process::id()));
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    file
}

/// A connected state manager on `file` with the given isolation.
pub(crate) fn manager(file: &std::path::Path, isolation: &str) -> SqliteStateManager {
    let mut m = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(format!("sqlite://{}", file.display()))
            .with_option("isolation", isolation),
    )
    .unwrap();
    m.connect().unwrap();
    m
}

#[venom_test(config = "shop")]
fn checkout_journey_in_a_venom_test(db: &mut SqliteCaptureSession) {
    assert!(db.captures());
    let url = db.url().unwrap();
    let file = PathBuf::from(url.expose().strip_prefix("sqlite://").expect("a file URL"));
    let server = ShopServer::start(SHOP, url.expose());
    let baseline = dump(&file);
    let result = JourneyRunner::new(server.client())
        .state_manager(&mut *db)
        .invariants(invariants())
        .run(&checkout_journey())
        .unwrap();
    println!("{result}");
    result.assert_passed();
    let branches: Vec<usize> = result
        .branch_results()
        .map(|b| b.path_results.len())
        .collect();
    assert_eq!(branches, [2, 4, 2]);
    assert_eq!(result.rollbacks(), 8, "one after each path");
    assert_eq!(
        dump(&file),
        baseline,
        "an independent connection sees the database exactly as before the journey"
    );
    assert_eq!(
        db.checkpoints(),
        ["venomqa_root"],
        "the journey's checkpoints are gone"
    );
}

#[test]
fn checkout_journey_standalone() {
    // The reference's way: JourneyRunner::new(Client::new(url)).state_manager(m).
    let file = fresh_file("standalone");
    let m = manager(&file, "capture");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let mut runner = JourneyRunner::new(venomqa::journey::Client::new(server.url()))
        .state_manager(m)
        .invariants(invariants());
    let result = runner.run(&checkout_journey()).unwrap();
    result.assert_passed();
    assert!(
        baseline.iter().any(|l| l.starts_with("table users")),
        "the server made its schema"
    );
    assert_eq!(dump(&file), baseline);
    // The runner keeps its manager: run the journey again, from the same state.
    runner.run(&checkout_journey()).unwrap().assert_passed();
    assert_eq!(dump(&file), baseline);
}

/// A checkout whose `pay_by_voucher` path expects 201 where the shop answers 200: a
/// failing step with a request, a response and database changes to show.
pub(crate) fn checkout_wrong() -> Journey {
    let pay = |name: &str, expected: u16, body: serde_json::Value| {
        Step::new(name, move |client, ctx| {
            let order = ctx.i64("order_id")?;
            client
                .post(&format!("/orders/{order}/pay"))
                .bearer(ctx.str("ann_token")?)
                .json(&body)
                .send()?
                .expect_status(expected)?;
            Ok(())
        })
    };
    Journey::new("checkout_wrong")
        .step(create_catalog())
        .step(Step::new("signup_ann", |client, ctx| {
            let user = client
                .post("/users")
                .json(&json!({"email": "ann@example.com", "name": "Ann"}))
                .send()?
                .expect_status(201)?;
            ctx.set("ann_token", user.value("/token")?);
            let order = client
                .post("/orders")
                .bearer(ctx.str("ann_token")?)
                .send()?
                .expect_status(201)?;
            ctx.set("order_id", order.value("/id")?);
            let widget = ctx.i64("widget_id")?;
            client
                .post(&format!("/orders/{}/items", ctx.i64("order_id")?))
                .bearer(ctx.str("ann_token")?)
                .json(&json!({"product_id": widget, "quantity": 2}))
                .send()?
                .expect_status(201)?;
            Ok(())
        }))
        .checkpoint("cart_full")
        .branch(
            Branch::new("cart_full")
                .path(Path::new("pay_by_voucher").step(pay(
                    "redeem",
                    201, // the shop answers 200
                    json!({"method": "voucher", "code": "WELCOME"}),
                )))
                .path(
                    Path::new("pay_by_card")
                        .step(expect_stats("untouched", &[("stock", 5), ("payments", 0)]))
                        .step(pay(
                            "pay",
                            200,
                            json!({"method": "card", "card_number": "4242424242424242"}),
                        )),
                ),
        )
}

#[test]
fn a_failing_step_reports_request_response_and_database_changes() {
    let file = fresh_file("failing");
    let mut m = manager(&file, "capture");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let journey = checkout_wrong();
    let reports =
        std::env::temp_dir().join(format!("venomqa-journey-reports-{}", std::process::id()));
    let result = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .report_dir(&reports)
        .run(&journey)
        .unwrap();
    let text = result.to_string();
    println!("{text}");
    let url = server.url();
    for expected in [
        "✗ journey checkout_wrong FAILED: 1 of 2 paths passed (1 failed) in 1 branch".to_owned(),
        "   ├─ ✗ path pay_by_voucher".to_owned(),
        format!("   │       POST {url}/orders/1/pay -> 200 OK"),
        "1) checkout_wrong > branch from cart_full > path pay_by_voucher > step redeem".to_owned(),
        format!("   POST {url}/orders/1/pay: expected status 201, got 200; response body: {{\"id\":1,"),
        format!("   request:  POST {url}/orders/1/pay"),
        "             Authorization: Bearer ***".to_owned(),
        "   response: 200 OK (".to_owned(),
        "\"status\":\"paid\"".to_owned(),
        "   database changes in this path (since checkpoint cart_full): orders ~1 (id=1 status); payments +1 (id=1); products ~1 (id=1 stock); vouchers ~1 (id=1 used_by_order)".to_owned(),
        "     orders updated id=1 (status: open -> paid)".to_owned(),
        "     products updated id=1 (stock: 5 -> 3)".to_owned(),
        "     payments inserted id=1".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    // The suggestion comes before the request and response it points to.
    let suggestion = text
        .find("   suggestion: compare the step's request and response")
        .unwrap();
    assert!(
        suggestion < text.find("   request:  POST").unwrap(),
        "{text}"
    );
    // The body as sent: its keys in either order (serde_json keeps insertion order when
    // another crate of the build, such as bson, turns on its `preserve_order`).
    assert!(
        text.contains("             {\"code\":\"WELCOME\",\"method\":\"voucher\"}")
            || text.contains("             {\"method\":\"voucher\",\"code\":\"WELCOME\"}"),
        "missing the request body in\n{text}"
    );
    assert!(
        !text.contains("tok_"),
        "the bearer token never shows: {text}"
    );
    assert!(
        result.path("pay_by_card").unwrap().success(),
        "the next path started from the checkpoint"
    );
    assert_eq!(dump(&file), baseline);

    // The same for CI: JUnit XML and JSON, written by the runner.
    let xml = std::fs::read_to_string(reports.join("checkout_wrong.xml")).unwrap();
    assert!(
        has_tag(
            &xml,
            "testsuite",
            &[
                ("name", "checkout_wrong"),
                ("tests", "3"),
                ("failures", "1"),
                ("errors", "0"),
                ("skipped", "0")
            ]
        ),
        "{xml}"
    );
    assert!(
        has_tag(
            &xml,
            "testcase",
            &[
                ("classname", "checkout_wrong.cart_full"),
                ("name", "pay_by_voucher")
            ]
        ),
        "{xml}"
    );
    assert!(
        xml.contains("database changes in this path: orders ~1"),
        "{xml}"
    );
    assert!(!xml.contains("tok_"));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reports.join("checkout_wrong.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["success"], false);
    assert_eq!(json["issues"][0]["step"], "redeem");
    assert_eq!(json["issues"][0]["path"], "pay_by_voucher");
    let diff = &json["items"][3]["path_results"][0]["diff"];
    assert_eq!(diff["tables"][2]["table"], "products");
    assert_eq!(
        diff["tables"][2]["rows"][0]["columns"][0],
        json!({"column": "stock", "old": "5", "new": "3"})
    );
    // The HTML report beside them carries the same JSON (its rendering is checked in
    // Chromium: report_html.rs).
    let html = std::fs::read_to_string(reports.join("checkout_wrong.html")).unwrap();
    // The page's data is to_json()'s, as written (not the JSON file read back: without
    // serde_json's float_roundtrip a float may come back one ULP off).
    assert!(html.contains(&result.to_json().to_string().replace('<', "\\u003c")));
    assert!(!html.contains("tok_"));
    // The Markdown summary: the verdict, the failure's place and the first diff lines.
    let md = result.to_markdown();
    for expected in [
        "### ❌ journey `checkout_wrong` FAILED",
        "| 1 | 1 | 0 | 2 of 2 passed |",
        "1. `checkout_wrong` › branch from `cart_full` › path `pay_by_voucher` › step `redeem`: POST ",
        "expected status 201, got 200",
        "   products updated id=1 (stock: 5 -> 3)",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in\n{md}");
    }
    let _ = std::fs::remove_dir_all(&reports);
}

#[test]
fn an_invariant_violation_names_the_step() {
    let file = fresh_file("invariant");
    let mut m = manager(&file, "capture");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let one_order = Invariant::new("at most one order per user", |check| {
        let conn = check.connection::<Sqlite>()?;
        let n: i64 = conn.query_row(
            "SELECT COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n FROM orders GROUP BY user_id)",
            [],
            |r| r.get(0),
        )?;
        if n > 1 {
            return Err(StepError::msg(format!("a user has {n} orders")));
        }
        Ok(())
    });
    let result = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .invariants(invariants())
        .invariant(one_order)
        .run(&checkout_journey())
        .unwrap();
    assert_eq!(result.issues.len(), 1, "{result}");
    let issue = &result.issues[0];
    assert_eq!(
        issue.location(),
        "checkout > branch from paid > path reorder_with_voucher > step open_second"
    );
    assert_eq!(
        issue.error,
        "invariant \"at most one order per user\" violated after step \"open_second\" of path \"reorder_with_voucher\": a user has 2 orders"
    );
    let path = result.path("reorder_with_voucher").unwrap();
    assert_eq!(
        path.step_results[0].failure.as_ref().unwrap().kind,
        FailureKind::Invariant
    );
    assert_eq!(path.step_results[1].status, Status::Skipped);
    assert_eq!(
        path.diff.as_ref().unwrap().as_ref().unwrap().to_string(),
        "orders +1 (id=2)"
    );
    assert_eq!(dump(&file), baseline);
}

#[test]
fn a_panicking_step_fails_its_path_and_the_rollback_still_happens() {
    let file = fresh_file("panic");
    let mut m = manager(&file, "capture");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let signup_bob = || {
        Step::new("signup_bob", |client, _| {
            client
                .post("/users")
                .json(&json!({"email": "bob@example.com", "name": "Bob"}))
                .send()?
                .expect_status(201)?;
            Ok(())
        })
    };
    let journey = Journey::new("panics")
        .step(create_catalog())
        .checkpoint("catalog")
        .branch(
            Branch::new("catalog")
                .path(Path::new("boom").step(signup_bob()).step(Step::new(
                    "explode",
                    |_, ctx| -> Result<(), StepError> {
                        let missing: Option<i64> = ctx.get_as("nothing").ok();
                        panic!("no value: {missing:?}")
                    },
                )))
                .path(Path::new("bob_is_free").step(signup_bob())),
        );
    let result = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .run(&journey)
        .unwrap();
    let boom = result.path("boom").unwrap();
    let failure = boom.step_results[1].failure.as_ref().unwrap();
    assert_eq!(failure.kind, FailureKind::Panic);
    assert_eq!(failure.message, "the step panicked: no value: None");
    assert_eq!(
        boom.diff.as_ref().unwrap().as_ref().unwrap().to_string(),
        "users +1 (id=1)"
    );
    assert!(result.path("bob_is_free").unwrap().success(), "{result}");
    assert_eq!(dump(&file), baseline);
}

#[test]
fn the_server_killed_mid_journey_fails_the_step_naming_the_url() {
    let file = fresh_file("killed");
    let mut m = manager(&file, "capture");
    let server = Arc::new(Mutex::new(ShopServer::start(
        SHOP,
        m.url().unwrap().expose(),
    )));
    let url = server.lock().unwrap().url().to_owned();
    let client = server.lock().unwrap().client();
    let baseline = dump(&file);
    let killer = server.clone();
    let journey = Journey::new("crash")
        .step(create_catalog())
        .checkpoint("catalog")
        .branch(
            Branch::new("catalog")
                .path(
                    Path::new("crash")
                        .step(Step::new("signup_bob", |client, _| {
                            client
                                .post("/users")
                                .json(&json!({"email": "bob@example.com", "name": "Bob"}))
                                .send()?
                                .expect_status(201)?;
                            Ok(())
                        }))
                        .step(Step::new("kill_the_server", move |_, _| {
                            killer.lock().unwrap().kill();
                            Ok(())
                        }))
                        .step(expect_stats("stats", &[("users", 1)])),
                )
                .path(Path::new("after_the_crash").step(expect_stats("stats", &[("users", 0)]))),
        );
    let result = JourneyRunner::new(client)
        .state_manager(&mut m)
        .run(&journey)
        .unwrap();
    println!("{result}");
    let crash = result.path("crash").unwrap();
    let failure = crash.step_results[2].failure.as_ref().unwrap();
    assert_eq!(failure.kind, FailureKind::Unreachable);
    assert!(
        failure
            .message
            .starts_with(&format!("GET {url}/stats: could not reach the server (")),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("check that it is running"),
        "{}",
        failure.message
    );
    assert_eq!(
        crash.diff.as_ref().unwrap().as_ref().unwrap().to_string(),
        "users +1 (id=1)"
    );
    let after = result.path("after_the_crash").unwrap();
    assert_eq!(after.status, Status::Failed, "the server is still down");
    assert!(result
        .to_string()
        .contains("suggestion: check that the API server is running"));
    assert_eq!(
        dump(&file),
        baseline,
        "the database was rolled back without the server"
    );
}

#[test]
fn a_journey_without_capture_is_refused_before_it_runs() {
    let file = fresh_file("refused");
    // Transaction isolation: the rollbacks would undo only the test's own connection.
    let mut m = manager(&file, "transaction");
    assert!(!m.captures());
    let server = ShopServer::start(SHOP, &format!("sqlite://{}", file.display()));
    let baseline = dump(&file);
    let e = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .run(&checkout_journey())
        .unwrap_err();
    assert!(matches!(e, JourneyError::NoCapture { .. }));
    let text = e.to_string();
    assert!(text.starts_with("journey \"checkout\" refused: the state manager venomqa::manager::Manager<venomqa::backends::sqlite::Sqlite> does not capture what other connections write, so the API server's writes would leak from one path into the next"), "{text}");
    assert!(text.contains("`isolation: capture`"), "{text}");
    assert_eq!(dump(&file), baseline, "no request was sent");
}

#[test]
fn definition_mistakes_and_parallel_paths_are_refused_with_their_reason() {
    let noop = |name: &str| Step::new(name, |_, _| Ok(()));
    let journey = checkout_journey()
        .branch(Branch::new("cart_full").path(Path::new("again").step(noop("x"))))
        .branch(Branch::new("paid").path(Path::new("later").step(noop("x"))))
        .branch(Branch::new("shipped").path(Path::new("pay_by_card").step(noop("x"))))
        .branch(Branch::new("signed_up").path(Path::new("empty")));
    let e = journey.validate().unwrap_err().to_string();
    assert_eq!(
        e,
        "journey \"checkout\" is invalid: \
         branch 5 is on checkpoint \"paid\", which an earlier branch's rollbacks discarded (a rollback to a checkpoint discards the later ones); make the checkpoint again after that branch; \
         branch 6 is on checkpoint \"shipped\", which is not made before it (checkpoints available there: signed_up, cart_full); \
         path \"pay_by_card\" appears twice (in the branches from \"cart_full\" and \"shipped\"); path names are unique in a journey; \
         path \"empty\" of the branch from \"signed_up\" has no steps; fix the journey's definition"
    );

    let file = fresh_file("parallel");
    let e = JourneyRunner::new(venomqa::journey::Client::new("http://127.0.0.1:9"))
        .state_manager(manager(&file, "capture"))
        .parallel_paths(4)
        .run(&checkout_journey())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("journey \"checkout\": parallel_paths(4) refused: every path rolls back the database behind its worker's state manager, and this runner has 1 worker (the state manager venomqa::manager::Manager<venomqa::backends::sqlite::Sqlite>), so paths running at the same time would see and undo each other's writes; add 3 more with .worker(client, state_manager)"), "{e}");
}

#[test]
fn parallel_paths_with_a_server_and_a_database_per_worker() {
    let (file_a, file_b) = (fresh_file("parallel_a"), fresh_file("parallel_b"));
    let (mut a, mut b) = (manager(&file_a, "capture"), manager(&file_b, "capture"));
    let server_a = ShopServer::start(SHOP, a.url().unwrap().expose());
    let server_b = ShopServer::start(SHOP, b.url().unwrap().expose());
    let (baseline_a, baseline_b) = (dump(&file_a), dump(&file_b));
    let result = JourneyRunner::new(server_a.client())
        .state_manager(&mut a)
        .worker(server_b.client(), &mut b)
        .parallel_paths(2)
        .invariants(invariants())
        .run(&checkout_journey())
        .unwrap();
    println!("{result}");
    result.assert_passed();
    assert_eq!(result.workers(), 2);
    assert_eq!(result.path_counts(), (8, 0, 0));
    assert_eq!(result.rollbacks(), 8);
    assert_eq!(dump(&file_a), baseline_a);
    assert_eq!(dump(&file_b), baseline_b);
}

/// Whether `xml` has a `<tag ...>` with all these attributes (values as written, escaped),
/// in any order.
fn has_tag(xml: &str, tag: &str, attributes: &[(&str, &str)]) -> bool {
    xml.split(&format!("<{tag} "))
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(inside, _)| format!(" {inside}")))
        .any(|inside| {
            attributes
                .iter()
                .all(|(k, v)| inside.contains(&format!(" {k}=\"{v}\"")))
        })
}
