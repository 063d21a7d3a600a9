//! The shop as a world to explore: a customer with up to two orders, and every way to
//! fill, pay (card or voucher) and cancel them; invariants over the API and the
//! database. With `SHOP_BUG=voucher_oversell` the explorer finds the stock going
//! negative (`examples/tests/it/explore.rs`); the written journeys do not.

use serde_json::{json, Value};
use venomqa::explore::{Action, World};
use venomqa::journey::{Check, Context, Invariant, Response, Severity, StepError};
use venomqa::sqlite::Sqlite;

/// The bug of the shop server the explorer finds (`SHOP_BUG=voucher_oversell`).
pub const BUG: &str = "voucher_oversell";

/// How many orders the customer may open.
pub const ORDERS: i64 = 2;

/// The shop world: setup (the catalogue, customer Ann), 10 actions (Bob signs up; Ann
/// opens an order; per order: add 3 widgets, pay by card, pay by voucher, cancel), 3
/// invariants.
///
/// The actions keep a model of each order in the context (`order_1_state` =
/// `"paid 750 card"`): the capture diff lists the rows inserted since the root by their
/// keys only, so an open and a cancelled order 1 would otherwise be one state.
pub fn shop_world() -> World {
    world(true)
}

/// [`shop_world`] without its database invariant: every invariant reads through the API,
/// for a state manager the invariants cannot query (the benchmark's copy-and-restore
/// baseline).
pub fn shop_world_api_only() -> World {
    world(false)
}

fn world(database_invariant: bool) -> World {
    let mut world = World::new("shop")
        .setup(|client, ctx| {
            crate::catalog(client, ctx)?;
            let ann = client
                .post("/users")
                .json(&json!({"email": "ann@example.com", "name": "Ann"}))
                .send()?
                .expect_status(201)?;
            ctx.set("ann_id", ann.value("/id")?);
            ctx.set("ann_token", ann.value("/token")?);
            ctx.set("orders", 0);
            Ok(())
        })
        .fingerprint_ignores(["ann_token", "bob_token"])
        .action(
            // Another customer: nothing to do with Ann's orders, so a sequence found with
            // it shrinks without it.
            Action::new("signup_bob", |client, ctx| {
                let r = client
                    .post("/users")
                    .json(&json!({"email": "bob@example.com", "name": "Bob"}))
                    .send()?;
                if r.status() == 201 {
                    ctx.set("bob_id", r.value("/id")?);
                    ctx.set("bob_token", r.value("/token")?);
                }
                Ok(())
            })
            .precondition(|ctx| !ctx.contains("bob_id")),
        )
        .action(
            Action::new("open_order", |client, ctx| {
                let r = client.post("/orders").bearer(token(ctx)?).send()?;
                if r.status() == 201 {
                    let n = ctx.i64("orders")? + 1;
                    ctx.set(format!("order_{n}"), r.value("/id")?);
                    ctx.set("orders", n);
                    remember(ctx, n, &r);
                }
                Ok(())
            })
            .precondition(|ctx| ctx.get("orders").and_then(Value::as_i64) < Some(ORDERS)),
        );
    for n in 1..=ORDERS {
        world = world
            .action(on_order(format!("add_3_to_order_{n}"), n, "items", |ctx| {
                Ok(json!({"product_id": ctx.i64("widget_id")?, "quantity": 3}))
            }))
            .action(on_order(format!("pay_order_{n}_by_card"), n, "pay", |_| {
                Ok(json!({"method": "card", "card_number": "4242424242424242"}))
            }))
            .action(on_order(
                format!("pay_order_{n}_by_voucher"),
                n,
                "pay",
                |_| Ok(json!({"method": "voucher", "code": "WELCOME"})),
            ))
            .action(on_order(format!("cancel_order_{n}"), n, "cancel", |_| {
                Ok(Value::Null)
            }));
    }
    let world = world
        .invariant(Invariant::new("stock never below 0", |check| {
            let id = check.context().i64("widget_id")?;
            let product = check.client().get(&format!("/products/{id}")).send()?;
            let stock = product.expect_status(200)?.value("/stock")?;
            if stock.as_i64() < Some(0) {
                return Err(StepError::msg(format!("product {id} has stock {stock}")));
            }
            Ok(())
        }))
        .invariant(
            Invariant::new("a paid order has one payment of its total", |check| {
                for n in 1..=check.context().i64("orders")? {
                    let id = check.context().i64(&format!("order_{n}"))?;
                    let order: Value = check
                        .client()
                        .get(&format!("/orders/{id}"))
                        .bearer(token(check.context())?)
                        .send()?
                        .expect_status(200)?
                        .json()?;
                    let paid = order["status"] == "paid";
                    let payment = &order["payment"];
                    let has_payment = !payment.is_null();
                    if paid != has_payment
                        || (paid && payment["amount_cents"] != order["total_cents"])
                    {
                        return Err(StepError::msg(format!(
                            "order {id} is {} with payment {payment}",
                            order["status"]
                        )));
                    }
                }
                Ok(())
            })
            .severity(Severity::High),
        );
    if !database_invariant {
        return world;
    }
    world.invariant(
            Invariant::new("an order's total is the sum of its items", |check| {
                let n = count(
                    check,
                    "SELECT COUNT(*) FROM orders o WHERE o.total_cents <> \
                     (SELECT COALESCE(SUM(i.quantity * i.price_cents), 0) FROM order_items i WHERE i.order_id = o.id)",
                )?;
                if n > 0 {
                    return Err(StepError::msg(format!(
                        "{n} orders disagree with their items"
                    )));
                }
                Ok(())
            })
            .severity(Severity::Medium),
        )
}

/// `POST /orders/{order n}/{route}` with the body `body` builds (none for `Null`), for
/// order `n` once it is open.
fn on_order(
    name: String,
    n: i64,
    route: &'static str,
    body: fn(&Context) -> Result<Value, StepError>,
) -> Action {
    let key = format!("order_{n}");
    Action::new(name, move |client, ctx| {
        let id = ctx.i64(&format!("order_{n}"))?;
        let request = client
            .post(&format!("/orders/{id}/{route}"))
            .bearer(token(ctx)?);
        let body = body(ctx)?;
        let r = if body.is_null() {
            request.send()?
        } else {
            request.json(&body).send()?
        };
        remember(ctx, n, &r);
        Ok(())
    })
    .precondition(move |ctx| ctx.contains(&key))
}

/// Keeps order `n`'s status, total and payment method in the context (`"paid 750
/// voucher"`), from an answer that carries the order: with them the context alone tells
/// the shop's states apart.
fn remember(ctx: &mut Context, n: i64, r: &Response) {
    if !r.is_success() {
        return;
    }
    let Ok(order) = r.json::<Value>() else {
        return;
    };
    let method = order["payment"]["method"].as_str().unwrap_or("unpaid");
    ctx.set(
        format!("order_{n}_state"),
        format!(
            "{} {} {method}",
            order["status"].as_str().unwrap_or_default(),
            order["total_cents"]
        ),
    );
}

fn token(ctx: &Context) -> Result<String, StepError> {
    Ok(ctx.str("ann_token")?.to_owned())
}

/// The number in the first column of `sql`, read through the explorer's state manager
/// (the database the server writes to): SQLite, or MySQL/MariaDB with the `mysql` feature.
fn count(check: &mut Check<'_>, sql: &str) -> Result<i64, StepError> {
    let manager = check.state_manager()?;
    if let Ok(conn) = manager.connection::<Sqlite>() {
        return Ok(conn.query_row(sql, [], |r| r.get(0))?);
    }
    #[cfg(feature = "mysql")]
    if let Ok(conn) = manager.connection::<venomqa::mysql::MySql>() {
        use venomqa::mysql::driver::prelude::Queryable;
        let n: Option<i64> = conn.query_first(sql)?;
        return Ok(n.unwrap_or_default());
    }
    // Not a violation: the invariant cannot read this database.
    Err(
        std::io::Error::other("the shop's invariants read SQLite or MySQL state managers only")
            .into(),
    )
}
