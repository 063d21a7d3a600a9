//! Exploring the shop server on MySQL/MariaDB (feature `mysql`): the same world as on
//! SQLite, with MySQL capture isolation rolling back what the server writes through its
//! own `mysql::Pool`. The explorer finds the seeded bug, the reproduction fails on the
//! buggy server and passes on the fixed one, and an independent connection finds the
//! database (rows, AUTO_INCREMENT counters, schema) at its baseline.
//!
//! Needs a server: the entry `shop_mysql` of `examples/venomqa.yaml` (database
//! `vq_shop_explore`, created here), or `VENOMQA_SHOP_MYSQL_URL`; `scripts/services.sh
//! mariadb` starts one.

use venomqa::explore::{Explorer, StopReason};
use venomqa::journey::JourneyRunner;
use venomqa::mysql::driver::prelude::Queryable;
use venomqa::mysql::driver::{Conn, Opts, Row};
use venomqa::mysql::MySqlCaptureSession;
use venomqa_examples::explore::{shop_world, BUG};
use venomqa_examples::ShopServer;

const SHOP: &str = env!("CARGO_BIN_EXE_shop");
const DATABASE: &str = "vq_shop_explore";

/// The entry's URL (`VENOMQA_SHOP_MYSQL_URL`, else the file's).
fn url() -> String {
    std::env::var("VENOMQA_SHOP_MYSQL_URL")
        .unwrap_or_else(|_| format!("mysql://root@127.0.0.1:3306/{DATABASE}"))
}

fn conn(database: &str) -> Conn {
    let server = url().rsplit_once('/').map_or(url(), |(s, _)| s.to_owned());
    Conn::new(Opts::from_url(&format!("{server}/{database}")).unwrap()).unwrap_or_else(|e| {
        panic!(
            "MySQL/MariaDB at {} is needed ({e}); start one with scripts/services.sh mariadb",
            venomqa::redact_url(&server)
        )
    })
}

/// Everything in the shop's database, read on a connection of its own: each table's
/// definition with its AUTO_INCREMENT counter, and its rows in key order.
fn dump() -> Vec<String> {
    let mut c = conn(DATABASE);
    let tables: Vec<String> = c
        .query(format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{DATABASE}' AND TABLE_NAME NOT LIKE '\\_vq\\_%' ORDER BY 1"
        ))
        .unwrap();
    let mut out = Vec::new();
    for t in tables {
        let create: Option<(String, String)> =
            c.query_first(format!("SHOW CREATE TABLE `{t}`")).unwrap();
        out.push(create.map(|(_, sql)| sql).unwrap_or_default());
        let rows: Vec<Row> = c.query(format!("SELECT * FROM `{t}` ORDER BY 1")).unwrap();
        out.extend(rows.into_iter().map(|r| format!("{t}: {r:?}")));
    }
    out
}

#[test]
fn the_explorer_finds_the_seeded_bug_on_mysql_capture() {
    conn("mysql")
        .query_drop(format!("CREATE DATABASE IF NOT EXISTS {DATABASE}"))
        .unwrap();
    MySqlCaptureSession::builder()
        .entry("shop_mysql")
        .name("explore_mysql")
        .run(|db: &mut MySqlCaptureSession| {
            assert!(db.captures());
            let db_url = db.url().unwrap();
            let mut server = ShopServer::start_buggy(SHOP, db_url.expose(), BUG);
            let baseline = dump();
            let world = shop_world();
            let result = Explorer::new(&world, server.client())
                .state_manager(&mut *db)
                .max_depth(6)
                .run()
                .unwrap();
            println!("{result}");
            assert_eq!(result.stop, StopReason::Exhausted);
            let v = result
                .violation("stock never below 0")
                .expect("the bug is found");
            assert_eq!(
                v.sequence(),
                [
                    "open_order",
                    "open_order",
                    "add_3_to_order_1",
                    "add_3_to_order_2",
                    "pay_order_1_by_card",
                    "pay_order_2_by_voucher",
                ]
            );
            assert_eq!(result.violations.len(), 1);
            let diff = v.path.last().unwrap().diff.as_ref().unwrap().to_string();
            assert!(diff.contains("products ~1 (id=1 stock)"), "{diff}");
            assert_eq!(
                dump(),
                baseline,
                "an independent connection sees the baseline"
            );

            // The reproduction fails on the buggy server...
            let buggy = JourneyRunner::new(server.client())
                .state_manager(&mut *db)
                .invariants(world.invariants())
                .run(v.journey())
                .unwrap();
            assert!(!buggy.passed(), "{buggy}");
            server.kill();
            // ... and passes on the fixed one, where the explorer finds nothing.
            let fixed = ShopServer::start(SHOP, db_url.expose());
            JourneyRunner::new(fixed.client())
                .state_manager(&mut *db)
                .invariants(world.invariants())
                .run(v.journey())
                .unwrap()
                .assert_passed();
            let result = Explorer::new(&world, fixed.client())
                .state_manager(&mut *db)
                .max_depth(6)
                .run()
                .unwrap();
            result.assert_passed();
            assert_eq!(result.stop, StopReason::Exhausted);
            assert_eq!(dump(), baseline);
        });
}
