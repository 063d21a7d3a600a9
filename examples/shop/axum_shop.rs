//! The shop as an async service (feature `axum`): an axum [`Router`] whose handlers use
//! their own sqlx [`PgPool`], as a Rust API service is written. Products (a widget, 5 in
//! stock; a gadget, 1 in stock), orders that reserve stock, pay and cancel (which
//! restocks and refunds), and a keyless audit log. Its schema and catalogue are
//! `schema.postgres.sql`.
//!
//! The tests (`examples/tests/it/axum_shop.rs`) drive it in process
//! ([`Client::service`](venomqa::journey::Client::service)) and on a port, with
//! [`checkout_journey`]'s async steps, rolled back by PostgreSQL capture between paths:
//! the pool's writes are on connections venomqa never sees.
//!
//! [`Bugs::double_refund`] seeds a bug: cancelling a paid order a second time refunds
//! and restocks it again. The journey's paths pass over it; [`world`]'s exploration
//! finds it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};
use venomqa::explore::{Action, World};
use venomqa::journey::{Branch, Check, Invariant, Journey, Path as JourneyPath, Step, StepError};
use venomqa::postgres::PostgresCapture;

/// Each product's stock in the catalogue: what stock plus reserved must always add up to.
pub const CATALOGUE: [(i32, i32); 2] = [(1, 5), (2, 1)];

/// Bugs to switch on, for the explorer to find.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bugs {
    /// A second cancel of a paid order refunds and restocks it again.
    pub double_refund: bool,
}

#[derive(Clone)]
struct App {
    pool: PgPool,
    bugs: Bugs,
}

/// The shop on `pool`, without bugs.
pub fn router(pool: PgPool) -> Router {
    router_with(pool, Bugs::default())
}

/// The shop on `pool` with `bugs`.
pub fn router_with(pool: PgPool, bugs: Bugs) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/products/{id}", get(product))
        .route("/orders", post(create_order))
        .route("/orders/{id}", get(order))
        .route("/orders/{id}/pay", post(pay))
        .route("/orders/{id}/cancel", post(cancel))
        .with_state(App { pool, bugs })
}

/// A database error, as a 500 with its message.
struct Failure(sqlx::Error);

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.0.to_string()}));
        (StatusCode::INTERNAL_SERVER_ERROR, body).into_response()
    }
}

type Answer = Result<(StatusCode, Json<Value>), Failure>;

fn answer(status: StatusCode, body: Value) -> Answer {
    Ok((status, Json(body)))
}

async fn product(State(app): State<App>, Path(id): Path<i32>) -> Answer {
    let row = sqlx::query("SELECT name, price_cents, stock FROM products WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.pool)
        .await?;
    match row {
        None => answer(StatusCode::NOT_FOUND, json!({"error": "no such product"})),
        Some(r) => answer(
            StatusCode::OK,
            json!({"id": id, "name": r.get::<String, _>(0), "price_cents": r.get::<i32, _>(1), "stock": r.get::<i32, _>(2)}),
        ),
    }
}

#[derive(Deserialize)]
struct NewOrder {
    product_id: i32,
    qty: i32,
}

async fn create_order(State(app): State<App>, Json(new): Json<NewOrder>) -> Answer {
    if new.qty <= 0 {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error": "qty must be positive"}),
        );
    }
    let mut tx = app.pool.begin().await?;
    let reserved = sqlx::query(
        "UPDATE products SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING price_cents",
    )
    .bind(new.product_id)
    .bind(new.qty)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(reserved) = reserved else {
        let exists = sqlx::query("SELECT 1 FROM products WHERE id = $1")
            .bind(new.product_id)
            .fetch_optional(&mut *tx)
            .await?;
        return match exists {
            None => answer(StatusCode::NOT_FOUND, json!({"error": "no such product"})),
            Some(_) => answer(StatusCode::CONFLICT, json!({"error": "out of stock"})),
        };
    };
    let total = reserved.get::<i32, _>(0) * new.qty;
    let id: i32 = sqlx::query_scalar(
        "INSERT INTO orders (product_id, qty, total_cents) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(new.product_id)
    .bind(new.qty)
    .bind(total)
    .fetch_one(&mut *tx)
    .await?;
    audit(&mut tx, id, "created").await?;
    tx.commit().await?;
    answer(
        StatusCode::CREATED,
        json!({"id": id, "status": "pending", "total_cents": total}),
    )
}

async fn order(State(app): State<App>, Path(id): Path<i32>) -> Answer {
    let row = sqlx::query(
        "SELECT product_id, qty, status, total_cents, refunded_cents FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&app.pool)
    .await?;
    match row {
        None => answer(StatusCode::NOT_FOUND, json!({"error": "no such order"})),
        Some(r) => answer(
            StatusCode::OK,
            json!({
                "id": id,
                "product_id": r.get::<i32, _>(0),
                "qty": r.get::<i32, _>(1),
                "status": r.get::<String, _>(2),
                "total_cents": r.get::<i32, _>(3),
                "refunded_cents": r.get::<i32, _>(4),
            }),
        ),
    }
}

async fn pay(State(app): State<App>, Path(id): Path<i32>) -> Answer {
    let mut tx = app.pool.begin().await?;
    let paid =
        sqlx::query("UPDATE orders SET status = 'paid' WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    if paid == 0 {
        return answer(
            StatusCode::CONFLICT,
            json!({"error": "only a pending order can be paid"}),
        );
    }
    audit(&mut tx, id, "paid").await?;
    tx.commit().await?;
    answer(StatusCode::OK, json!({"id": id, "status": "paid"}))
}

async fn cancel(State(app): State<App>, Path(id): Path<i32>) -> Answer {
    let mut tx = app.pool.begin().await?;
    let row = sqlx::query(
        "SELECT product_id, qty, status, total_cents, refunded_cents FROM orders WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "no such order"}));
    };
    let (product, qty, status) = (
        row.get::<i32, _>(0),
        row.get::<i32, _>(1),
        row.get::<String, _>(2),
    );
    let (total, refunded) = (row.get::<i32, _>(3), row.get::<i32, _>(4));
    // The bug: a cancelled order that was refunded is "cancelled" again, as if still paid.
    let again = status == "cancelled" && app.bugs.double_refund && refunded > 0;
    if status == "cancelled" && !again {
        return answer(
            StatusCode::CONFLICT,
            json!({"error": "the order is already cancelled"}),
        );
    }
    let refund = if status == "paid" || again { total } else { 0 };
    sqlx::query("UPDATE products SET stock = stock + $2 WHERE id = $1")
        .bind(product)
        .bind(qty)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE orders SET status = 'cancelled', refunded_cents = refunded_cents + $2 WHERE id = $1",
    )
    .bind(id)
    .bind(refund)
    .execute(&mut *tx)
    .await?;
    audit(&mut tx, id, "cancelled").await?;
    tx.commit().await?;
    answer(
        StatusCode::OK,
        json!({"id": id, "status": "cancelled", "refunded_cents": refunded + refund}),
    )
}

async fn audit(tx: &mut sqlx::PgConnection, order: i32, event: &str) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO audit (order_id, event) VALUES ($1, $2)")
        .bind(order)
        .bind(event)
        .execute(tx)
        .await
        .map(drop)
}

// ---------------------------------------------------------------------------------------
// The checkout journey: async steps.

fn call(name: &str, method: &'static str, path: &'static str, body: Value, status: u16) -> Step {
    Step::new_async(name, async move |client, ctx| {
        let path = path.replace(
            "{order}",
            &ctx.get("order").map(Value::to_string).unwrap_or_default(),
        );
        let response = match method {
            "GET" => client.get(&path).await?,
            _ if body.is_null() => client.post(&path).await?,
            _ => client.post(&path).json(&body).await?,
        };
        let response = response.expect_status(status)?;
        if path == "/orders" && status == 201 && !ctx.contains("order") {
            ctx.set("order", response.value("/id")?);
        }
        Ok(())
    })
}

fn stock(name: &str, product: i32, n: i64) -> Step {
    Step::new_async(name, async move |client, _| {
        client
            .get(&format!("/products/{product}"))
            .await?
            .expect_json("/stock", n)?;
        Ok(())
    })
}

fn status(name: &str, expected: &'static str, refunded: i64) -> Step {
    Step::new_async(name, async move |client, ctx| {
        let order = ctx.i64("order")?;
        client
            .get(&format!("/orders/{order}"))
            .await?
            .expect_json("/status", expected)?
            .expect_json("/refunded_cents", refunded)?;
        Ok(())
    })
}

/// The checkout: order two widgets, checkpoint, then five paths from that state: pay;
/// cancel (restocked, nothing refunded); pay then cancel (refunded) then cancel again
/// (409); buy the last gadget, then fail to buy another; and a path that only checks
/// the checkpoint's state. Every path first checks the widget stock is 3, so a write
/// leaking from one path into the next fails it.
pub fn checkout_journey() -> Journey {
    let from_checkpoint = || stock("three_widgets_left", 1, 3);
    Journey::new("axum_checkout")
        .step(stock("five_widgets", 1, 5))
        .step(call(
            "order_two_widgets",
            "POST",
            "/orders",
            json!({"product_id": 1, "qty": 2}),
            201,
        ))
        .checkpoint("ordered")
        .branch(
            Branch::new("ordered")
                .path(
                    JourneyPath::new("pay")
                        .step(from_checkpoint())
                        .step(call("pay", "POST", "/orders/{order}/pay", Value::Null, 200))
                        .step(status("paid", "paid", 0)),
                )
                .path(
                    JourneyPath::new("cancel")
                        .step(from_checkpoint())
                        .step(call(
                            "cancel",
                            "POST",
                            "/orders/{order}/cancel",
                            Value::Null,
                            200,
                        ))
                        .step(status("cancelled", "cancelled", 0))
                        .step(stock("restocked", 1, 5)),
                )
                .path(
                    JourneyPath::new("refund_once")
                        .step(from_checkpoint())
                        .step(call("pay", "POST", "/orders/{order}/pay", Value::Null, 200))
                        .step(call(
                            "cancel",
                            "POST",
                            "/orders/{order}/cancel",
                            Value::Null,
                            200,
                        ))
                        .step(call(
                            "cancel_again",
                            "POST",
                            "/orders/{order}/cancel",
                            Value::Null,
                            409,
                        ))
                        .step(status("refunded", "cancelled", 1000)),
                )
                .path(
                    JourneyPath::new("sell_out")
                        .step(from_checkpoint())
                        .step(call(
                            "last_gadget",
                            "POST",
                            "/orders",
                            json!({"product_id": 2, "qty": 1}),
                            201,
                        ))
                        .step(call(
                            "no_gadget_left",
                            "POST",
                            "/orders",
                            json!({"product_id": 2, "qty": 1}),
                            409,
                        ))
                        .step(stock("gadgets_gone", 2, 0)),
                )
                .path(
                    JourneyPath::new("untouched")
                        .step(from_checkpoint())
                        .step(status("still_pending", "pending", 0))
                        .step(stock("gadget_still_there", 2, 1)),
                ),
        )
}

/// "Stock is conserved", read through the app's own pool (async): for each product,
/// stock plus what open orders reserve is the catalogue's stock.
pub fn stock_is_conserved(pool: PgPool) -> Invariant {
    Invariant::new_async("stock is conserved", async move |_check| {
        for (product, total) in CATALOGUE {
            let held: i64 = sqlx::query_scalar(
                "SELECT p.stock + COALESCE((SELECT SUM(qty) FROM orders o WHERE o.product_id = p.id AND o.status <> 'cancelled'), 0) FROM products p WHERE p.id = $1",
            )
            .bind(product)
            .fetch_one(&pool)
            .await?;
            if held != i64::from(total) {
                return Err(StepError::msg(format!(
                    "product {product}: stock plus reserved is {held}, the catalogue had {total}"
                )));
            }
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------
// The exploration world: blocking actions and invariants (the explorer is blocking), sent
// to the in-process router through a multi-threaded runtime.

/// The world: order widgets, pay, cancel, on up to two orders; invariants: stock is
/// conserved and never refunded twice, read through venomqa's own PostgreSQL connection.
pub fn world() -> World {
    let mut world = World::new("axum_shop").action(
        Action::new("order_widget", |client, ctx| {
            let r = client
                .post("/orders")
                .json(&json!({"product_id": 1, "qty": 1}))
                .send()?;
            if r.status() == 201 {
                let n = ctx.get("orders").and_then(Value::as_i64).unwrap_or(0) + 1;
                ctx.set(format!("order_{n}"), r.value("/id")?);
                ctx.set(format!("order_{n}_state"), "pending");
                ctx.set("orders", n);
            }
            Ok(())
        })
        .precondition(|ctx| ctx.get("orders").and_then(Value::as_i64).unwrap_or(0) < 2),
    );
    for n in 1..=2 {
        for (verb, next) in [("pay", "paid"), ("cancel", "cancelled")] {
            world = world.action(
                Action::new(format!("{verb}_order_{n}"), move |client, ctx| {
                    let id = ctx.i64(&format!("order_{n}"))?;
                    let r = client.post(&format!("/orders/{id}/{verb}")).send()?;
                    if r.status() == 200 {
                        ctx.set(format!("order_{n}_state"), next);
                    }
                    Ok(())
                })
                .precondition(move |ctx| ctx.contains(&format!("order_{n}"))),
            );
        }
    }
    world
        .invariant(Invariant::new("stock is conserved", |check| {
            database(check, STOCK)
        }))
        .invariant(Invariant::new("never refunded more than paid", |check| {
            database(check, REFUNDS)
        }))
}

const STOCK: &str = "SELECT p.id, (p.stock + COALESCE((SELECT SUM(qty) FROM orders o WHERE o.product_id = p.id AND o.status <> 'cancelled'), 0))::int FROM products p ORDER BY p.id";
const REFUNDS: &str = "SELECT id, refunded_cents - total_cents FROM orders WHERE refunded_cents > total_cents ORDER BY id";

/// Checks `sql`'s rows on venomqa's connection: STOCK's second column is each product's
/// catalogue stock; REFUNDS has no row.
fn database(check: &mut Check<'_>, sql: &str) -> Result<(), StepError> {
    let db = check.connection::<PostgresCapture>()?;
    let rows = db.query(sql, &[])?;
    for row in rows {
        let (id, n): (i32, i32) = (row.get(0), row.get(1));
        if sql == REFUNDS {
            return Err(StepError::msg(format!(
                "order {id} was refunded {n} cents more than it cost"
            )));
        }
        let total = CATALOGUE
            .iter()
            .find(|(p, _)| *p == id)
            .map_or(0, |(_, t)| *t);
        if n != total {
            return Err(StepError::msg(format!(
                "product {id}: stock plus reserved is {n}, the catalogue had {total}"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The benchmark's journey.

/// The benchmark's journey: order two widgets, checkpoint, then `paths` paths that each
/// check the stock and pay the order (two requests, each path rolled back). Async steps
/// when `blocking` is false, else the same requests as blocking steps (for the blocking
/// client).
pub fn bench_journey(paths: usize, blocking: bool) -> Journey {
    let step = |name: &str, method: &'static str, path: &'static str, body: Value, status: u16| {
        if blocking {
            Step::new(name, move |client, ctx| {
                let path = path.replace(
                    "{order}",
                    &ctx.get("order").map(Value::to_string).unwrap_or_default(),
                );
                let r = match method {
                    "GET" => client.get(&path).send()?,
                    _ if body.is_null() => client.post(&path).send()?,
                    _ => client.post(&path).json(&body).send()?,
                };
                let r = r.expect_status(status)?;
                if path == "/orders" {
                    ctx.set("order", r.value("/id")?);
                }
                Ok(())
            })
        } else {
            call(name, method, path, body, status)
        }
    };
    let mut branch = Branch::new("ordered");
    for i in 0..paths {
        branch = branch.path(
            JourneyPath::new(format!("pay_{i}"))
                .step(step("stock", "GET", "/products/1", Value::Null, 200))
                .step(step("pay", "POST", "/orders/{order}/pay", Value::Null, 200)),
        );
    }
    Journey::new(format!("axum_bench_{paths}"))
        .step(step(
            "order",
            "POST",
            "/orders",
            json!({"product_id": 1, "qty": 2}),
            201,
        ))
        .checkpoint("ordered")
        .branch(branch)
}
