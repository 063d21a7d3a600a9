//! Journeys on worker databases (`workers` on the shop's capture entry): `#[venom_test]`s
//! on the `shop_workers` entry run at once, each on a database of its own; the same
//! journey gives the same result on one worker database and on two (two sessions of the
//! entry, a shop server on each, `parallel_paths(2)`), a failing journey included.

use serde_json::Value;
use venomqa::journey::{Journey, JourneyResult, JourneyRunner};
use venomqa::{venom_test, Session, StateManager};
use venomqa_examples::{checkout_journey, invariants, ShopServer};

use super::journeys::checkout_wrong;

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

/// What a result says, without what may differ between runs: times, the servers'
/// addresses (each worker has its own), response headers (their dates).
fn said(result: &JourneyResult, servers: &[&str]) -> Value {
    fn strip(v: &mut Value, servers: &[&str]) {
        match v {
            Value::Object(map) => {
                map.retain(|k, _| !k.ends_with("_ms") && k != "headers" && k != "rollbacks");
                map.values_mut().for_each(|v| strip(v, servers));
            }
            Value::Array(items) => items.iter_mut().for_each(|v| strip(v, servers)),
            Value::String(s) => {
                for server in servers {
                    *s = s.replace(server, "SERVER");
                }
            }
            _ => {}
        }
    }
    let mut json = result.to_json();
    strip(&mut json, servers);
    json
}

#[test]
fn journey_results_are_the_same_on_one_and_two_worker_databases() {
    let dir = std::env::temp_dir().join(format!("venomqa-shop-workers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!(
            "backends:\n  shop_workers:\n    backend: sqlite\n    url: sqlite://{}/shop.db\n    isolation: capture\n    workers: 2\n",
            dir.display()
        ),
    )
    .unwrap();
    let open = || {
        Session::<dyn StateManager>::builder()
            .config_dir(&dir)
            .entry("shop_workers")
            .open()
            .unwrap()
    };
    let journeys: [(Journey, bool); 2] = [(checkout_journey(), true), (checkout_wrong(), false)];
    for (journey, passes) in journeys {
        let (mut a, mut b) = (open(), open());
        let (url_a, url_b) = (a.url().unwrap(), b.url().unwrap());
        assert_ne!(url_a.expose(), url_b.expose(), "two worker databases");
        let server_a = ShopServer::start(SHOP, url_a.expose());
        let server_b = ShopServer::start(SHOP, url_b.expose());
        let servers = [server_a.url(), server_b.url()];
        let one = JourneyRunner::new(server_a.client())
            .state_manager(&mut a)
            .invariants(invariants())
            .run(&journey)
            .unwrap();
        let two = JourneyRunner::new(server_a.client())
            .state_manager(&mut a)
            .worker(server_b.client(), &mut b)
            .parallel_paths(2)
            .invariants(invariants())
            .run(&journey)
            .unwrap();
        assert_eq!(one.passed(), passes, "{one}");
        assert_eq!(two.workers(), 2);
        let paths = said(&one, &servers)["paths"].clone();
        assert_eq!(paths, said(&two, &servers)["paths"]);
        assert!(paths["passed"].as_u64().unwrap() >= 1, "{paths}");
        assert_eq!(
            said(&one, &servers),
            said(&two, &servers),
            "one worker:\n{one}\ntwo workers:\n{two}"
        );
        drop((server_a, server_b));
        a.finish().unwrap();
        b.finish().unwrap();
    }
    let config = Session::<dyn StateManager>::builder()
        .config_dir(&dir)
        .entry("shop_workers")
        .config()
        .unwrap();
    assert_eq!(venomqa::workers::clean(&config).unwrap().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two `#[venom_test]`s on the `shop_workers` entry (`workers: auto`): each runs the
/// checkout journey against a shop server on its own worker database; under `cargo test`
/// they may run at once, under nextest each process takes its slot.
fn checkout_on_a_worker(db: &mut Session) {
    let url = db.url().unwrap();
    assert!(
        url.expose().contains("shop-workers_w"),
        "a worker database: {url}"
    );
    let server = ShopServer::start(SHOP, url.expose());
    JourneyRunner::new(server.client())
        .state_manager(&mut *db)
        .invariants(invariants())
        .run(&checkout_journey())
        .unwrap()
        .assert_passed();
}

#[venom_test(config = "shop_workers")]
fn a_venom_test_on_a_worker_database(db: &mut Session) {
    checkout_on_a_worker(db);
}

#[venom_test(config = "shop_workers")]
fn another_venom_test_on_a_worker_database(db: &mut Session) {
    checkout_on_a_worker(db);
}
