//! The shop explored from its OpenAPI spec alone: the spec is checked against the
//! server's routes, then an exploration with no hand-written action or invariant finds
//! each seeded bug (and nothing with the bugs off), and the database is back at its
//! baseline after each, by an independent connection's dump.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use venomqa::explore::{Explorer, RustTemplate, StopReason};
use venomqa::journey::JourneyRunner;
use venomqa::openapi::{Inputs, Spec, READS, RESPONSE_SCHEMA};
use venomqa::sqlite::SqliteStateManager;
use venomqa::{BackendConfig, StateManager};
use venomqa_examples::openapi::{fetch_spec, spec_world, SPEC_BUGS};
use venomqa_examples::{dump, ShopServer};

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

fn fresh(tag: &str) -> (PathBuf, SqliteStateManager) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venomqa-openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{tag}-{}.sqlite", std::process::id()));
    for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
    }
    let mut m = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(format!("sqlite://{}", file.display()))
            .with_option("isolation", "capture"),
    )
    .unwrap();
    m.connect().unwrap();
    (file, m)
}

/// The routes the shop's `route` function matches, as `METHOD /path/{}` (read from its
/// source), and the spec's operations in the same form.
#[test]
fn the_openapi_spec_has_every_route_of_the_server_and_no_other() {
    let source = include_str!("../../shop/main.rs");
    let body = source
        .split("fn route(")
        .nth(1)
        .unwrap()
        .split("fn admin(")
        .next()
        .unwrap();
    let mut routes = BTreeSet::new();
    for line in body.lines() {
        let Some(rest) = line.trim().strip_prefix("(\"") else {
            continue;
        };
        let (method, rest) = rest.split_once("\", [").unwrap();
        let pattern = rest.split(']').next().unwrap();
        let path: Vec<String> = pattern
            .split(", ")
            .map(|p| match p.strip_prefix('"') {
                Some(literal) => literal.trim_end_matches('"').to_owned(),
                None => "{}".to_owned(),
            })
            .collect();
        routes.insert(format!("{method} /{}", path.join("/")));
    }
    assert!(routes.len() >= 12, "{routes:?}");
    let spec = Spec::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/shop/openapi.yaml")).unwrap();
    let documented: BTreeSet<String> = spec
        .operations()
        .iter()
        .map(|op| {
            let path: Vec<&str> = op
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect();
            format!("{} {}", op.method.as_str(), path.join("/"))
        })
        .collect();
    assert_eq!(
        routes, documented,
        "the spec and the server's routes differ"
    );
}

#[test]
fn the_server_serves_the_spec_it_is_checked_against() {
    let (_file, m) = fresh("served");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let served = fetch_spec(&server.client()).unwrap();
    let file = Spec::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/shop/openapi.yaml")).unwrap();
    assert_eq!(served.operations().len(), file.operations().len());
    assert_eq!(served.operations().len(), 13);
}

/// With each bug on, the spec's world finds it (breadth first: a shortest sequence),
/// under the invariant the spec implies; the database comes back.
#[test]
fn openapi_exploration_finds_every_seeded_bug_from_the_spec_alone() {
    for (bug, inputs) in SPEC_BUGS {
        let (file, mut m) = fresh(bug);
        let server = ShopServer::start_buggy(SHOP, m.url().unwrap().expose(), bug);
        let baseline = dump(&file);
        let world = spec_world(&fetch_spec(&server.client()).unwrap(), inputs).unwrap();
        let started = Instant::now();
        let result = Explorer::new(&world, server.client())
            .state_manager(&mut m)
            .max_depth(6)
            .stop_on_violation(true)
            .run()
            .unwrap();
        println!("{bug}: {:?}\n{result}", started.elapsed());
        let v = result
            .violations
            .first()
            .unwrap_or_else(|| panic!("{bug} not found:\n{result}"));
        let (invariant, needle, length) = match bug {
            "voucher_oversell" => (READS, "/stock", 6),
            "cancel_drops_total" => (RESPONSE_SCHEMA, "total_cents", 3),
            _ => (venomqa::explore::SERVER_ERRORS, "500", 1),
        };
        assert_eq!(v.invariant, invariant, "{bug}: {result}");
        assert!(v.message.contains(needle), "{bug}: {}", v.message);
        assert_eq!(v.sequence.len(), length, "{bug}: {:?}", v.sequence);
        assert_eq!(
            dump(&file),
            baseline,
            "{bug}: an independent connection sees the baseline"
        );
    }
}

#[test]
fn openapi_exploration_finds_nothing_with_the_bugs_off() {
    let (file, mut m) = fresh("fixed");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let world = spec_world(&fetch_spec(&server.client()).unwrap(), Inputs::Boundary).unwrap();
    let result = Explorer::new(&world, server.client())
        .state_manager(&mut m)
        .max_depth(4)
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

/// The violation's journey fails on the buggy server and passes on the fixed one, and
/// the `#[venom_test]` it emits is the one below, pasted as is.
#[test]
fn the_openapi_reproduction_fails_on_the_buggy_server_and_passes_on_the_fixed_one() {
    let (file, mut m) = fresh("repro");
    let mut server = ShopServer::start_buggy(SHOP, m.url().unwrap().expose(), "voucher_oversell");
    let baseline = dump(&file);
    let world = spec_world(&fetch_spec(&server.client()).unwrap(), Inputs::Valid).unwrap();
    let result = Explorer::new(&world, server.client())
        .state_manager(&mut m)
        .max_depth(6)
        .stop_on_violation(true)
        .run()
        .unwrap();
    let v = result.violation(READS).expect("found");
    let buggy = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .invariants(world.invariants())
        .run(v.journey())
        .unwrap();
    assert!(!buggy.passed(), "{buggy}");
    assert!(
        buggy
            .to_string()
            .contains("at /stock: -1 is less than the minimum of 0"),
        "{buggy}"
    );
    server.kill();
    let fixed = ShopServer::start(SHOP, m.url().unwrap().expose());
    JourneyRunner::new(fixed.client())
        .state_manager(&mut m)
        .invariants(world.invariants())
        .run(v.journey())
        .unwrap()
        .assert_passed();
    assert_eq!(dump(&file), baseline);

    let rust = v.to_rust(
        &RustTemplate::new("venomqa_examples::openapi::served_world(&server.client())")
        .attribute(r#"config = "shop""#)
        .session("&mut venomqa::sqlite::SqliteCaptureSession")
        .prelude(["let server = venomqa_examples::ShopServer::start(SHOP, db.url().unwrap().expose());"])
        .client("server.client()"),
    );
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    assert!(
        squeeze(include_str!("openapi.rs")).contains(&squeeze(&rust)),
        "paste the emitted test into this file:\n{rust}"
    );
}

// What `Violation::to_rust` emitted for the violation above, pasted as is: a regression
// test that runs on the fixed server (and would fail on the buggy one).

/// Found by exploring world "shop" (bfs): invariant "every read answers as the spec says" violated after
/// createOrder, createOrder, addItem(orders 1), addItem(orders 2), payOrder(orders 1, CardPayment), payOrder(orders 2, VoucherPayment).
/// Fails until the bug is fixed.
#[venomqa::venom_test(config = "shop")]
fn repro_every_read_answers_as_the_spec_says(db: &mut venomqa::sqlite::SqliteCaptureSession) {
    let server = venomqa_examples::ShopServer::start(SHOP, db.url().unwrap().expose());
    let world = venomqa_examples::openapi::served_world(&server.client());
    let journey = world
        .journey(
            "repro_every_read_answers_as_the_spec_says",
            &[
                "createOrder",
                "createOrder",
                "addItem(orders 1)",
                "addItem(orders 2)",
                "payOrder(orders 1, CardPayment)",
                "payOrder(orders 2, VoucherPayment)",
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

/// Invalid bodies (a required property left out, one of the wrong type) are refused with
/// a 4xx by the shop: `Inputs::Invalid` finds nothing; every invalid body of an operation
/// on no resource (sign-up, catalogue, orders) ran.
#[test]
fn openapi_invalid_bodies_are_refused_by_the_shop() {
    let (file, mut m) = fresh("invalid");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let baseline = dump(&file);
    let world = spec_world(&fetch_spec(&server.client()).unwrap(), Inputs::Invalid).unwrap();
    let invalid = world
        .action_names()
        .iter()
        .filter(|n| n.contains("without ") || n.contains("wrong type"))
        .count();
    assert!(invalid >= 20, "{:?}", world.action_names());
    let result = Explorer::new(&world, server.client())
        .state_manager(&mut m)
        .max_depth(2)
        .run()
        .unwrap();
    println!("{result}");
    result.assert_passed();
    let never = result.coverage.never_run();
    assert!(
        never.iter().all(|n| n.contains("(orders ")),
        "only actions on a second order or a paid one wait past depth 2: {never:?}"
    );
    assert!(result.coverage.outcomes().contains_key("400"));
    assert_eq!(dump(&file), baseline);
}
