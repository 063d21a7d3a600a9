//! Resilience on PostgreSQL: a private server restarted mid-suite fails only the tests in
//! flight, a server that stays down fails within the connect timeout, a stalled one within
//! the I/O timeout, and the server's own reasons reach the messages.

use crate::support::resilience as support;

use std::thread;
use std::time::{Duration, Instant};

use support::{Kind, PrivateServer, StallProxy};
use venomqa::postgres::{driver, PostgresSession};
use venomqa::{BackendConfig, Error};

fn shared_url() -> String {
    std::env::var("VENOMQA_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| venomqa::postgres::DEFAULT_URL.to_owned())
}

fn config(url: &str) -> BackendConfig {
    let mut config = BackendConfig::new("postgres").with_url(url);
    config.pool_size = Some(2);
    config.connect_timeout = Some(Duration::from_secs(10));
    config
}

/// The scenario: tests run on two threads while the server restarts (down for
/// 0.6 s). Only a test in flight may fail (at most one per thread), saying its connection
/// was lost; every test that starts while the server is down waits for it (within the
/// connect timeout) and passes; nothing is left committed.
#[test]
fn a_restart_mid_suite_fails_only_the_tests_in_flight() {
    let mut server = PrivateServer::start(Kind::Postgres);
    let url = server.url();
    let mut c = driver::Client::connect(&url, driver::NoTls).unwrap();
    c.batch_execute("CREATE TABLE items (id SERIAL PRIMARY KEY, label TEXT)")
        .unwrap();
    drop(c);
    let config = config(&url);
    support::through_a_restart(
        move |name| {
            PostgresSession::builder()
                .with_config(config.clone())
                .name(name)
                .run(|db| -> venomqa::Result<()> {
                    let fail = |e| venomqa::Error::backend("postgres", "the test", e);
                    db.client()
                        .execute("INSERT INTO items (label) VALUES ($1)", &[&name])
                        .map_err(fail)?;
                    thread::sleep(Duration::from_millis(10));
                    let n: i64 = db
                        .client()
                        .query_one("SELECT COUNT(*) FROM items", &[])
                        .map_err(fail)?
                        .get(0);
                    assert_eq!(n, 1, "only this test's row is visible");
                    Ok(())
                })
                .map_err(|e| e.to_string())
        },
        || server.restart(Duration::from_millis(600)),
        Some("connection was lost"),
    );
    let mut c = driver::Client::connect(&url, driver::NoTls).unwrap();
    let left: i64 = c
        .query_one("SELECT COUNT(*) FROM items", &[])
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "nothing of any test was committed");
}

/// A server that stays down: the lease keeps trying for the connect timeout, then fails
/// naming the host, the port, the cause and how long it tried. When the server is back,
/// the next test passes.
#[test]
fn a_server_that_stays_down_fails_within_the_connect_timeout() {
    let mut server = PrivateServer::start(Kind::Postgres);
    let mut config = config(&server.url());
    config.connect_timeout = Some(Duration::from_millis(1500));
    support::stays_down_then_back(&mut server, || {
        let mut db = PostgresSession::builder()
            .with_config(config.clone())
            .open()?;
        db.client().batch_execute("SELECT 1").unwrap();
        db.finish()
    });
}

/// A server that accepted the connection and stopped answering (a proxy that stalls):
/// the next operation fails within the I/O timeout, saying so, instead of hanging; the
/// pool then opens a new connection. The client has no timeout of its own: venomqa
/// watches the protocol (a server owing an answer that stays silent).
#[test]
fn a_stalled_server_fails_within_the_io_timeout() {
    let shared = shared_url();
    let upstream = support::port_of(&shared, 5432);
    let proxy = StallProxy::new(upstream);
    let mut config = config(&proxy.url_through(&shared, upstream));
    config.io_timeout = Some(Duration::from_millis(500));

    let mut db = PostgresSession::builder()
        .with_config(config.clone())
        .name("stalled")
        .open()
        .unwrap();
    db.client().batch_execute("SELECT 1").unwrap();
    // An idle connection does not time out: nothing is owed.
    thread::sleep(Duration::from_millis(800));
    db.client().batch_execute("SELECT 1").unwrap();
    proxy.stall(true);
    let started = Instant::now();
    let e = db.client().batch_execute("SELECT 1").unwrap_err();
    let waited = started.elapsed();
    // The driver's own error: its cause says why.
    let cause = std::error::Error::source(&e)
        .map(ToString::to_string)
        .unwrap_or_default();
    println!("{e}: {cause} (after {waited:?})");
    assert!(cause.contains("io_timeout_ms"), "{e}: {cause}");
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "it hung: {waited:?}");
    let e = db.finish().unwrap_err();
    println!("{e}");
    assert!(e.is_connection_lost(), "{e}");
    proxy.stall(false);

    // venomqa's own statements time out too: a stall before the end of a test.
    let db = PostgresSession::builder()
        .with_config(config.clone())
        .open()
        .unwrap();
    proxy.stall(true);
    let started = Instant::now();
    let e = db.finish().unwrap_err();
    let text = e.to_string();
    println!("{text} (after {:?})", started.elapsed());
    assert!(matches!(e, Error::ConnectionLost { .. }), "{text}");
    assert!(text.contains("io_timeout_ms"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20));
    proxy.stall(false);

    // The pool replaced the stalled connections: the next test passes.
    let connections = proxy.connections();
    let mut db = PostgresSession::builder()
        .with_config(config)
        .open()
        .unwrap();
    db.client().batch_execute("SELECT 1").unwrap();
    db.finish().unwrap();
    assert!(proxy.connections() > connections, "a new connection");
}

/// The server's own reason, with its SQLSTATE, reaches the message: an unknown database
/// (3D000), a wrong password (28P01). Neither is retried, and no message shows the
/// password, which holds `@ : / # ? % space` and non-ASCII characters.
#[test]
fn server_refusals_show_the_servers_own_reason() {
    let open = |url: &str| {
        let started = Instant::now();
        let mut config = config(url);
        config.connect_timeout = Some(Duration::from_secs(5));
        let e = PostgresSession::builder()
            .with_config(config)
            .open()
            .unwrap_err();
        let text = e.to_string();
        println!("{text}");
        assert!(matches!(e, Error::Connect { attempts: 1, .. }), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "retried: {text}"
        );
        assert!(text.len() <= 300, "{} chars: {text}", text.len());
        text
    };
    let shared = shared_url();
    let base = &shared[..shared.rfind('/').unwrap()];
    let text = open(&format!("{base}/vq_no_such_database"));
    assert!(
        text.contains("3D000") && text.contains("does not exist"),
        "{text}"
    );

    let password = "p@ss:w/rd#1? 100% é";
    let server = PrivateServer::start_postgres_with_password(password);
    let mut db = PostgresSession::builder()
        .with_config(config(&server.url()))
        .open()
        .expect("the right password connects");
    db.client().batch_execute("SELECT 1").unwrap();
    db.finish().unwrap();
    let wrong = server.url().replace(
        &support::percent_encode(password),
        "p%40ss%3Aw%2Frd%231%3F%20100%25%20wrong",
    );
    assert_ne!(wrong, server.url());
    let text = open(&wrong);
    assert!(text.contains("28P01"), "{text}");
    for leak in ["p@ss", "p%40ss", "rd#1", "100%", "wrong"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

/// Round trips of an empty test on a pooled connection, counted by a proxy: 2 (`BEGIN;
/// SAVEPOINT`, and `ROLLBACK TO SAVEPOINT; ROLLBACK; ..cleanup`), as a hand-written
/// transaction: the lease runs no health check of its own.
#[test]
fn an_empty_test_costs_two_round_trips() {
    let shared = shared_url();
    let upstream = support::port_of(&shared, 5432);
    let proxy = StallProxy::new(upstream);
    let mut config = config(&proxy.url_through(&shared, upstream));
    config.pool_size = Some(1);
    let run = || {
        PostgresSession::builder()
            .with_config(config.clone())
            .run(|_db| {})
    };
    run(); // connects
    let before = proxy.round_trips();
    for _ in 0..10 {
        run();
    }
    let per_test = (proxy.round_trips() - before) as f64 / 10.0;
    println!("{per_test} round trips per empty test");
    assert_eq!(per_test, 2.0);
    assert_eq!(proxy.connections(), 1);
}

/// The claim a pipelined `ROLLBACK; BEGIN; SAVEPOINT` (a test's end sending the next
/// test's begin) rests on, checked on the server: a REPEATABLE READ transaction takes its
/// snapshot at its first query, not at `BEGIN` or `SAVEPOINT`, so a row another
/// connection commits in between is visible. What does change: `now()` is the
/// transaction's start, so it would be the previous test's end. venomqa does not pipeline
/// for that reason (and because a pre-begun idle connection cannot be health-checked
/// without a round trip); this test keeps both facts checked.
#[test]
fn the_snapshot_starts_at_the_first_query_but_now_at_begin() {
    let url = shared_url();
    let mut a = driver::Client::connect(&url, driver::NoTls).unwrap();
    let mut b = driver::Client::connect(&url, driver::NoTls).unwrap();
    let table = format!("vq_snapshot_{}", std::process::id());
    a.batch_execute(&format!("CREATE TABLE {table} (v INT)"))
        .unwrap();
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SAVEPOINT venomqa_root")
        .unwrap();
    thread::sleep(Duration::from_millis(50));
    b.batch_execute(&format!("INSERT INTO {table} VALUES (1)"))
        .unwrap();
    let seen: i64 = a
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(seen, 1, "the snapshot starts at the first query");
    b.batch_execute(&format!("INSERT INTO {table} VALUES (2)"))
        .unwrap();
    let seen: i64 = a
        .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .unwrap()
        .get(0);
    assert_eq!(seen, 1, "repeatable read after the first query");
    // now() is the transaction's start: before the 50 ms pause, not at the first query.
    let lag_ms: f64 = a
        .query_one(
            "SELECT (EXTRACT(EPOCH FROM clock_timestamp() - now()) * 1000)::float8",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(lag_ms >= 40.0, "now() is BEGIN's time: {lag_ms} ms behind");
    a.batch_execute("ROLLBACK").unwrap();
    a.batch_execute(&format!("DROP TABLE {table}")).unwrap();
}
