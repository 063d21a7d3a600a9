//! The shop server on MySQL/MariaDB (feature `mysql`): its `mysql::Pool` storage runs the
//! checkout's steps with the same SQL as on SQLite. MySQL capture isolation is not in
//! venomqa yet, so this journey has no branches (nothing to roll back between paths) and
//! works in a database of its own, dropped at the end; when MySQL capture lands, the
//! checkout journey with its branches runs here as it does on SQLite.
//!
//! Needs a server: `VENOMQA_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`
//! (`scripts/services.sh mariadb` starts one).

use mysql::prelude::Queryable;
use serde_json::json;
use venomqa::journey::{Journey, JourneyRunner, Step};
use venomqa_examples::{create_catalog, expect_stats, ShopServer};

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

/// A database of its own on the server, dropped when this is dropped.
struct Database {
    admin: mysql::Pool,
    name: String,
    url: String,
}

impl Database {
    fn create() -> Database {
        let server = std::env::var("VENOMQA_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        let admin = mysql::Pool::new(server.as_str()).unwrap_or_else(|e| {
            panic!("no MySQL/MariaDB at {} ({e}); start one with scripts/services.sh mariadb or set VENOMQA_MYSQL_URL", venomqa::redact_url(&server))
        });
        let name = format!("venomqa_shop_{}", std::process::id());
        let mut conn = admin.get_conn().unwrap();
        conn.query_drop(format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        conn.query_drop(format!("CREATE DATABASE {name}")).unwrap();
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
            let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS {}", self.name));
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
    let db = Database::create();
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
