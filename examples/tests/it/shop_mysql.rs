//! The shop server on MySQL/MariaDB (feature `mysql`): its `mysql::Pool` storage runs the
//! checkout's steps with the same SQL as on SQLite.
//!
//! - `the_shop_runs_the_checkout_steps_on_mysql`: the checkout's steps in a straight line,
//!   in a database of its own (nothing rolled back).
//! - `checkout_journey_with_branches_on_mysql_capture`: the whole checkout journey (three
//!   branches, eight paths) with MySQL capture isolation: the server (another process, its
//!   own `mysql::Pool`) writes, and venomqa's triggers undo its writes between paths. An
//!   independent connection then finds every row and every AUTO_INCREMENT counter as they
//!   were before the journey.
//!
//! Needs a server: `VENOMQA_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`
//! (`scripts/services.sh mariadb` starts one).

use mysql::prelude::Queryable;
use serde_json::json;
use venomqa::journey::{Check, Invariant, Journey, JourneyRunner, Step, StepError};
use venomqa::mysql::{MySql, MySqlStateManager};
use venomqa::{BackendConfig, StateManager};
use venomqa_examples::{checkout_journey, create_catalog, expect_stats, ShopServer};

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

/// A database of its own on the server, dropped when this is dropped.
struct Database {
    admin: mysql::Pool,
    name: String,
    url: String,
}

impl Database {
    /// A new database `venomqa_shop_<tag>_<pid>` (dropped first if a killed run left it).
    fn create(tag: &str) -> Database {
        let server = std::env::var("VENOMQA_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let admin = mysql::Pool::new(server.as_str()).unwrap_or_else(|e| {
            panic!("no MySQL/MariaDB at {} ({e}); start one with scripts/services.sh mariadb or set VENOMQA_MYSQL_URL", venomqa::redact_url(&server))
        });
        let name = format!("venomqa_shop_{tag}_{}", std::process::id());
        let mut conn = admin.get_conn().unwrap();
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE `{name}`"))
            .unwrap();
        let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
        Database {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut conn) = self.admin.get_conn() {
            let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
        }
    }
}

fn call(
    name: &str,
    method: &'static str,
    path: &'static str,
    body: serde_json::Value,
    status: u16,
) -> Step {
    Step::new(name, move |client, ctx| {
        let path = path.replace(
            "{order}",
            &ctx.get("order").map(|v| v.to_string()).unwrap_or_default(),
        );
        let req = match method {
            "GET" => client.get(&path),
            _ => client.post(&path),
        };
        let req = match ctx.get("token").and_then(|t| t.as_str()) {
            Some(t) => req.bearer(t),
            None => req,
        };
        let req = if body.is_null() { req } else { req.json(&body) };
        let r = req.send()?.expect_status(status)?;
        if path == "/users" && status == 201 {
            ctx.set("token", r.value("/token")?);
        }
        if path == "/orders" {
            ctx.set("order", r.value("/id")?);
        }
        Ok(())
    })
}

#[test]
fn the_shop_runs_the_checkout_steps_on_mysql() {
    let db = Database::create("steps");
    let server = ShopServer::start(SHOP, &db.url);
    let journey = Journey::new("checkout_on_mysql")
        .step(create_catalog())
        .step(call(
            "signup_ann",
            "POST",
            "/users",
            json!({"email": "ann@example.com", "name": "Ann"}),
            201,
        ))
        .step(call(
            "email_taken",
            "POST",
            "/users",
            json!({"email": "ann@example.com", "name": "Ann"}),
            409,
        ))
        .step(call(
            "bad_email",
            "POST",
            "/users",
            json!({"email": "nope", "name": "X"}),
            400,
        ))
        .step(call(
            "open_order",
            "POST",
            "/orders",
            serde_json::Value::Null,
            201,
        ))
        .step(call(
            "add_two",
            "POST",
            "/orders/{order}/items",
            json!({"product_id": 1, "quantity": 2}),
            201,
        ))
        .step(call(
            "four_more",
            "POST",
            "/orders/{order}/items",
            json!({"product_id": 1, "quantity": 4}),
            422,
        ))
        .step(call(
            "declined",
            "POST",
            "/orders/{order}/pay",
            json!({"method": "card", "card_number": "4000000000000002"}),
            402,
        ))
        .step(call(
            "redeem",
            "POST",
            "/orders/{order}/pay",
            json!({"method": "voucher", "code": "WELCOME"}),
            200,
        ))
        .step(call(
            "pay_twice",
            "POST",
            "/orders/{order}/pay",
            json!({"method": "voucher", "code": "WELCOME"}),
            409,
        ))
        .step(call(
            "cancel_paid",
            "POST",
            "/orders/{order}/cancel",
            serde_json::Value::Null,
            409,
        ))
        .step(expect_stats(
            "counts",
            &[("users", 1), ("orders", 1), ("payments", 1), ("stock", 3)],
        ));
    let result = JourneyRunner::new(server.client()).run(&journey).unwrap();
    println!("{result}");
    result.assert_passed();
}

impl Database {
    /// Everything in the database, read on a connection of its own: each shop table's
    /// definition (AUTO_INCREMENT counter included) and every row, in key order.
    /// venomqa's own tables (`_vq_*`) are left out; the triggers are not in a table's
    /// definition.
    fn dump(&self) -> Vec<String> {
        let mut conn = mysql::Conn::new(self.url.as_str()).expect("an independent connection");
        let tables: Vec<String> = conn
            .exec(
                "SELECT table_name FROM information_schema.tables \
                 WHERE table_schema = ? AND table_name NOT LIKE '\\_vq\\_%' ORDER BY 1",
                (&self.name,),
            )
            .unwrap();
        let mut out = Vec::new();
        for table in tables {
            let (_, create): (String, String) = conn
                .query_first(format!("SHOW CREATE TABLE `{table}`"))
                .unwrap()
                .unwrap();
            out.push(create);
            let rows: Vec<mysql::Row> = conn
                .query(format!("SELECT * FROM `{table}` ORDER BY 1"))
                .unwrap();
            out.extend(
                rows.into_iter()
                    .map(|r| format!("{table}: {:?}", r.unwrap())),
            );
        }
        out
    }
}

/// The shop's invariants, through the state manager's own MySQL connection.
fn mysql_invariants() -> Vec<Invariant> {
    fn count(check: &mut Check<'_>, sql: &str) -> Result<i64, StepError> {
        let conn = check.connection::<MySql>()?;
        Ok(conn.driver().query_first(sql)?.unwrap_or(0))
    }
    vec![
        Invariant::new("stock never below 0", |check| {
            match count(check, "SELECT COUNT(*) FROM products WHERE stock < 0")? {
                0 => Ok(()),
                n => Err(StepError::msg(format!("{n} products have negative stock"))),
            }
        }),
        Invariant::new(
            "a paid order has exactly one payment of its total",
            |check| match count(
                check,
                "SELECT COUNT(*) FROM orders o LEFT JOIN payments p ON p.order_id = o.id \
                 WHERE (o.status = 'paid') <> (p.id IS NOT NULL) \
                 OR (p.id IS NOT NULL AND p.amount_cents <> o.total_cents)",
            )? {
                0 => Ok(()),
                n => Err(StepError::msg(format!(
                    "{n} orders disagree with their payments"
                ))),
            },
        ),
    ]
}

#[test]
fn checkout_journey_with_branches_on_mysql_capture() {
    let db = Database::create("capture");
    // The schema is the server's: let it create its tables once, before any checkpoint
    // (DDL between a checkpoint and its rollback fails the rollback, by design).
    drop(ShopServer::start(SHOP, &db.url));
    let mut manager = MySqlStateManager::from_config(
        &BackendConfig::new("mysql")
            .with_url(&db.url)
            .with_option("isolation", "capture"),
    )
    .unwrap();
    manager.connect().unwrap();
    assert!(manager.captures());
    let server = ShopServer::start(SHOP, manager.url().unwrap().expose());
    let baseline = db.dump();
    assert!(
        baseline
            .iter()
            .any(|l| l.contains("CREATE TABLE `payments`")),
        "the server made its schema: {baseline:#?}"
    );

    let mut runner = JourneyRunner::new(server.client())
        .state_manager(&mut manager)
        .invariants(mysql_invariants());
    let result = runner.run(&checkout_journey()).unwrap();
    println!("{result}");
    result.assert_passed();
    let branches: Vec<usize> = result
        .branch_results()
        .map(|b| b.path_results.len())
        .collect();
    assert_eq!(branches, [2, 4, 2]);
    assert_eq!(result.rollbacks(), 8, "one after each path");
    drop(runner);
    assert_eq!(
        db.dump(),
        baseline,
        "an independent connection sees every row and AUTO_INCREMENT counter as before"
    );

    // Run it again: every path starts from the same state the second time too.
    let result = JourneyRunner::new(server.client())
        .state_manager(&mut manager)
        .run(&checkout_journey())
        .unwrap();
    result.assert_passed();
    assert_eq!(db.dump(), baseline);
    drop(server);
    manager.disconnect().unwrap();
}
