//! The axum shop (`examples/shop/axum_shop.rs`, feature `axum`) on PostgreSQL capture
//! (entry `axum_shop`): its handlers write through their own sqlx pool, on connections
//! venomqa never sees, and capture rolls their writes back between paths.
//!
//! - the checkout journey's async steps, in an async `#[venom_test]`, against the
//!   `Router` in process, then against it served on a free port of the test's runtime;
//! - an exploration of it in process, which finds the seeded double refund and nothing
//!   when the bug is off.
//!
//! After each, an independent connection (a fresh sqlx connection, neither venomqa's nor
//! the app's) finds every row and the orders' sequence as they were before.
//!
//! Needs a server: postgres://postgres@127.0.0.1:5432 (`scripts/services.sh postgres`);
//! the database `vq_axum_shop` is created on first use (`create_database: true`).

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Row};
use venomqa::explore::{Explorer, StopReason};
use venomqa::journey::{Client, JourneyRunner};
use venomqa::postgres::PostgresCaptureSession;
use venomqa::venom_test;
use venomqa_examples::axum_shop::{
    checkout_journey, router, router_with, stock_is_conserved, world, Bugs,
};

/// Every row of every table of the shop, in key order (the keyless audit log sorted by
/// every column), and the orders' sequence: read by a connection of its own.
async fn dump(url: &str) -> Vec<String> {
    let mut conn = PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("the PostgreSQL server is needed for the axum shop's tests ({e}); start it with scripts/services.sh postgres")
    });
    let mut out = Vec::new();
    for sql in [
        "SELECT format('product %s %s %s %s', id, name, price_cents, stock) FROM products ORDER BY id",
        "SELECT format('order %s %s %s %s %s %s', id, product_id, qty, status, total_cents, refunded_cents) FROM orders ORDER BY id",
        "SELECT format('audit %s %s', order_id, event) FROM audit ORDER BY order_id, event",
        "SELECT format('sequence %s %s', last_value, is_called) FROM orders_id_seq",
    ] {
        for row in sqlx::query(sql).fetch_all(&mut conn).await.unwrap() {
            out.push(row.get::<String, _>(0));
        }
    }
    conn.close().await.unwrap();
    out
}

async fn pool(url: &str) -> PgPool {
    PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("the app's pool could not connect ({e})"))
}

#[venom_test(config = "axum_shop")]
async fn axum_checkout_journey_in_process_is_rolled_back_by_capture(
    db: &mut PostgresCaptureSession,
) {
    let url = db.url().unwrap().expose().to_owned();
    let app_pool = pool(&url).await;
    let before = dump(&url).await;
    let result = JourneyRunner::new(Client::service(router(app_pool.clone())))
        .state_manager(&mut *db)
        .invariant(stock_is_conserved(app_pool.clone()))
        .run_async(&checkout_journey())
        .await
        .unwrap();
    println!("{result}");
    result.assert_passed();
    assert_eq!(result.rollbacks(), 5);
    app_pool.close().await;
    assert_eq!(
        dump(&url).await,
        before,
        "an independent connection sees the baseline"
    );
}

#[venom_test(config = "axum_shop")]
async fn axum_checkout_journey_over_http_on_a_port(db: &mut PostgresCaptureSession) {
    let url = db.url().unwrap().expose().to_owned();
    let app_pool = pool(&url).await;
    let before = dump(&url).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
        listener,
        router(app_pool.clone()),
    )));
    let result = JourneyRunner::new(Client::new(&base))
        .state_manager(&mut *db)
        .invariant(stock_is_conserved(app_pool.clone()))
        .run_async(&checkout_journey())
        .await
        .unwrap();
    server.abort();
    println!("{result}");
    result.assert_passed();
    // Every step sent its one request over the socket, recorded as in process.
    let steps: Vec<_> = result
        .step_results()
        .chain(result.path_results().flat_map(|p| &p.step_results))
        .collect();
    assert_eq!(steps.len(), 21);
    for step in steps {
        assert_eq!(step.exchanges.len(), 1, "{}", step.name);
        assert!(
            step.exchanges[0].url.starts_with(&base),
            "{}",
            step.exchanges[0].url
        );
    }
    app_pool.close().await;
    assert_eq!(dump(&url).await, before);
}

/// Explores the shop in process: the explorer is blocking, so the router runs on a
/// multi-threaded runtime of the test's, and each request waits for it there.
fn explore(db: &mut PostgresCaptureSession, bugs: Bugs) -> venomqa::explore::ExplorationResult {
    let url = db.url().unwrap().expose().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app_pool = runtime.block_on(pool(&url));
    let before = runtime.block_on(dump(&url));
    let client = {
        let _inside = runtime.enter();
        Client::service(router_with(app_pool.clone(), bugs))
    };
    let result = Explorer::new(&world(), client)
        .state_manager(&mut *db)
        .max_depth(4)
        .run()
        .unwrap();
    println!("{result}");
    runtime.block_on(app_pool.close());
    assert_eq!(runtime.block_on(dump(&url)), before);
    result
}

#[venom_test(config = "axum_shop")]
fn axum_exploration_in_process_finds_the_double_refund(db: &mut PostgresCaptureSession) {
    let result = explore(
        db,
        Bugs {
            double_refund: true,
        },
    );
    assert!(!result.passed());
    let v = result
        .violation("stock is conserved")
        .expect("the second cancel restocks again");
    assert_eq!(
        v.sequence(),
        [
            "order_widget",
            "pay_order_1",
            "cancel_order_1",
            "cancel_order_1"
        ]
    );
    assert!(
        v.message.contains("product 1: stock plus reserved is 6"),
        "{}",
        v.message
    );
    let refunds = result
        .violation("never refunded more than paid")
        .expect("and refunds twice");
    assert!(
        refunds.message.contains("refunded 500 cents more"),
        "{}",
        refunds.message
    );
}

#[venom_test(config = "axum_shop")]
fn axum_exploration_in_process_finds_nothing_without_the_bug(db: &mut PostgresCaptureSession) {
    let result = explore(db, Bugs::default());
    result.assert_passed();
    assert_eq!(result.stop, StopReason::Exhausted);
    assert!(result.coverage.never_run().is_empty());
}
