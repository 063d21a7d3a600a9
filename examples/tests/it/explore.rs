//! Exploring the real shop server (`examples/shop`, its own process, its own pool, a
//! SQLite file with capture isolation): with `SHOP_BUG=voucher_oversell` the explorer
//! finds the stock going negative, which the written journeys miss, and shrinks it to six
//! actions; the journey it emits fails on the buggy server and passes on the fixed one.
//! After every exploration an independent connection finds the database at its baseline.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use venomqa::explore::{Action, Explorer, FaultKind, RustTemplate, StopReason, Strategy};
use venomqa::journey::JourneyRunner;
use venomqa::sqlite::{SqliteCaptureSession, SqliteStateManager};
use venomqa::{venom_test, BackendConfig, StateManager};
use venomqa_examples::explore::{shop_world, BUG};
use venomqa_examples::{checkout_journey, dump, invariants, ShopServer};

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

/// What breadth-first search finds: two orders of three widgets (five in stock), the
/// first paid by card, the second by voucher, which forgets the stock check.
const SHORTEST: [&str; 6] = [
    "open_order",
    "open_order",
    "add_3_to_order_1",
    "add_3_to_order_2",
    "pay_order_1_by_card",
    "pay_order_2_by_voucher",
];

/// A fresh database file of this test, under the workspace's target directory.
fn fresh_file(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venomqa-explore");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{tag}-{}.sqlite", std::process::id()));
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    file
}

/// A connected capture state manager on `file`.
fn manager(file: &Path) -> SqliteStateManager {
    let mut m = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(format!("sqlite://{}", file.display()))
            .with_option("isolation", "capture"),
    )
    .unwrap();
    m.connect().unwrap();
    m
}

fn file_of(db: &SqliteCaptureSession) -> PathBuf {
    let url = db.url().unwrap();
    PathBuf::from(url.expose().strip_prefix("sqlite://").expect("a file URL"))
}

#[venom_test(config = "shop")]
fn the_explorer_finds_the_seeded_bug_that_the_journeys_miss(db: &mut SqliteCaptureSession) {
    let file = file_of(db);
    let server = ShopServer::start_buggy(SHOP, db.url().unwrap().expose(), BUG);
    let baseline = dump(&file);

    // The written journeys, with their invariants, pass against the buggy server.
    let journeys = JourneyRunner::new(server.client())
        .state_manager(&mut *db)
        .invariants(invariants())
        .run(&checkout_journey())
        .unwrap();
    journeys.assert_passed();

    // The explorer finds it, breadth first: a shortest sequence.
    let result = Explorer::new(&shop_world(), server.client())
        .state_manager(&mut *db)
        .max_depth(6)
        .run()
        .unwrap();
    println!("{result}");
    assert!(!result.passed());
    assert_eq!(result.stop, StopReason::Exhausted);
    let v = result
        .violation("stock never below 0")
        .expect("the bug is found");
    assert_eq!(v.sequence(), SHORTEST);
    assert_eq!(v.found, v.sequence);
    assert_eq!(v.message, "product 1 has stock -1");
    assert_eq!(result.violations.len(), 1, "only the stock is wrong");
    let last = v.exchanges.last().unwrap();
    assert!(last.url.ends_with("/orders/2/pay"), "{}", last.url);
    assert_eq!(last.response.as_ref().unwrap().status, 200);
    let diff = v.path.last().unwrap().diff.as_ref().unwrap().to_string();
    assert!(diff.contains("products ~1 (id=1 stock)"), "{diff}");
    assert!(diff.contains("payments +2"), "{diff}");
    assert!(result.coverage.never_run().is_empty());
    assert_eq!(
        dump(&file),
        baseline,
        "an independent connection sees the baseline"
    );
    assert_eq!(db.checkpoints(), ["venomqa_root"]);
}

#[test]
fn with_the_bug_off_the_explorer_finds_nothing() {
    let file = fresh_file("fixed");
    let mut m = manager(&file);
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let result = Explorer::new(&shop_world(), server.client())
        .state_manager(&mut m)
        .max_depth(6)
        .run()
        .unwrap();
    println!("{result}");
    result.assert_passed();
    assert_eq!(result.stop, StopReason::Exhausted);
    let statuses = result.coverage.outcomes();
    for status in ["200", "201", "409", "422"] {
        assert!(statuses.contains_key(status), "{status}: {statuses:?}");
    }
    assert_eq!(dump(&file), baseline);
}

#[test]
fn the_same_seed_finds_and_shrinks_it_the_same_way() {
    let file = fresh_file("seeded");
    let mut m = manager(&file);
    let server = ShopServer::start_buggy(SHOP, m.url().unwrap().expose(), BUG);
    let baseline = dump(&file);
    let mut run = || {
        let result = Explorer::new(&shop_world(), server.client())
            .state_manager(&mut m)
            .strategy(Strategy::Random { seed: 2 })
            .max_depth(8)
            .run()
            .unwrap();
        let v = result.violation("stock never below 0").expect("found");
        assert!(v.shrunk);
        assert_eq!(v.sequence.len(), 6, "{result}");
        assert_eq!(dump(&file), baseline);
        (
            v.found.clone(),
            v.sequence.clone(),
            result.states,
            result.steps,
            result.coverage.clone(),
        )
    };
    let first = run();
    assert_eq!(first.0.len(), 7, "found with Bob's signup: {first:?}");
    assert!(first.0.contains(&"signup_bob".to_owned()));
    assert_eq!(first, run(), "a fixed seed explores the same way");
}

#[test]
fn the_reproduction_fails_on_the_buggy_server_and_passes_on_the_fixed_one() {
    let file = fresh_file("repro");
    let mut m = manager(&file);
    let world = shop_world();
    let mut server = ShopServer::start_buggy(SHOP, m.url().unwrap().expose(), BUG);
    let baseline = dump(&file);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venomqa-explore/reports");
    let result = Explorer::new(&world, server.client())
        .state_manager(&mut m)
        .strategy(Strategy::Dfs)
        .max_depth(8)
        .report_dir(&dir)
        .run()
        .unwrap();
    println!("{result}");
    let v = result.violation("stock never below 0").expect("found");
    assert!(
        v.found.len() > v.sequence.len(),
        "depth first finds a longer one: {result}"
    );
    assert_eq!(v.sequence.len(), 6);

    let buggy = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .invariants(world.invariants())
        .run(v.journey())
        .unwrap();
    println!("{buggy}");
    assert!(!buggy.passed());
    assert!(buggy.to_string().contains(&format!(
        "invariant \"stock never below 0\" violated after step {:?}",
        v.sequence.last().unwrap()
    )));
    server.kill();
    let fixed_server = ShopServer::start(SHOP, m.url().unwrap().expose());
    JourneyRunner::new(fixed_server.client())
        .state_manager(&mut m)
        .invariants(world.invariants())
        .run(v.journey())
        .unwrap()
        .assert_passed();
    assert_eq!(dump(&file), baseline);

    // The #[venom_test] it emits is the one below, pasted as is: it runs on the fixed
    // server in this suite.
    let rust = v.to_rust(
        &RustTemplate::new("venomqa_examples::explore::shop_world()")
            .attribute(r#"config = "shop""#)
            .session("&mut venomqa::sqlite::SqliteCaptureSession")
            .prelude(["let server = venomqa_examples::ShopServer::start(SHOP, db.url().unwrap().expose());"])
            .client("server.client()"),
    );
    println!("{rust}");
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        squeeze(include_str!("explore.rs")).contains(&squeeze(&rust)),
        "paste the emitted test into this file:\n{rust}"
    );

    // The reports for CI.
    let json = std::fs::read_to_string(dir.join("explore_shop.json")).unwrap();
    assert!(
        json.contains("\"pay_order_2_by_voucher\"") || json.contains("\"pay_order_1_by_voucher\"")
    );
    let xml = std::fs::read_to_string(dir.join("explore_shop.xml")).unwrap();
    assert!(
        xml.contains("name=\"invariant stock never below 0\""),
        "{xml}"
    );
}

#[test]
fn a_server_killed_mid_exploration_is_a_fault_and_the_database_comes_back() {
    let file = fresh_file("killed");
    let mut m = manager(&file);
    let server = Arc::new(Mutex::new(ShopServer::start(
        SHOP,
        m.url().unwrap().expose(),
    )));
    let client = server.lock().unwrap().client();
    let baseline = dump(&file);
    let killer = server.clone();
    let world = shop_world().action(
        Action::new("crash_the_server", move |_, _| {
            killer.lock().unwrap().kill();
            Ok(())
        })
        .precondition(|ctx| ctx.i64("orders").unwrap_or_default() == 1),
    );
    let result = Explorer::new(&world, client)
        .state_manager(&mut m)
        .max_depth(3)
        .run()
        .unwrap();
    println!("{result}");
    let fault = result.fault.as_ref().expect("a fault");
    assert_eq!(fault.kind, FaultKind::ServerUnreachable);
    assert!(
        fault
            .message
            .contains("could not reach the API after step \"crash_the_server\""),
        "{}",
        fault.message
    );
    assert_eq!(fault.sequence, ["open_order", "crash_the_server"]);
    assert_eq!(result.stop, StopReason::Fault);
    assert!(result.cleanup.is_ok());
    assert_eq!(
        dump(&file),
        baseline,
        "rolled back although the server died"
    );

    // A panicking precondition, against a live server: the same clean stop.
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let world = shop_world().action(Action::new("never", |_, _| Ok(())).precondition(|ctx| {
        assert!(ctx.i64("orders").unwrap() < 1, "a precondition's own bug");
        false
    }));
    let result = Explorer::new(&world, server.client())
        .state_manager(&mut m)
        .max_depth(3)
        .run()
        .unwrap();
    let fault = result.fault.as_ref().expect("a fault");
    assert_eq!(fault.kind, FaultKind::PreconditionPanicked);
    assert!(
        fault.message.contains("a precondition's own bug"),
        "{}",
        fault.message
    );
    assert_eq!(fault.sequence, ["open_order"]);
    assert_eq!(dump(&file), baseline);
}

// What `Violation::to_rust` emitted for the violation above, pasted as is: a regression
// test that runs on the fixed server (and would fail on the buggy one).

/// Found by exploring world "shop" (dfs): invariant "stock never below 0" violated after
/// open_order, open_order, add_3_to_order_1, add_3_to_order_2, pay_order_1_by_card, pay_order_2_by_voucher.
/// Fails until the bug is fixed.
#[venomqa::venom_test(config = "shop")]
fn repro_stock_never_below_0(db: &mut venomqa::sqlite::SqliteCaptureSession) {
    let server = venomqa_examples::ShopServer::start(SHOP, db.url().unwrap().expose());
    let world = venomqa_examples::explore::shop_world();
    let journey = world
        .journey(
            "repro_stock_never_below_0",
            &[
                "open_order",
                "open_order",
                "add_3_to_order_1",
                "add_3_to_order_2",
                "pay_order_1_by_card",
                "pay_order_2_by_voucher",
            ],
        )
        .unwrap();
    let result = venomqa::journey::JourneyRunner::new(server.client())
        .state_manager(&mut *db)
        .invariants(world.invariants())
        .run(&journey)
        .unwrap();
    result.assert_passed();
}
