//! Resilience on MySQL/MariaDB: a private server restarted mid-suite fails only the tests
//! in flight, a server that stays down fails within the connect timeout, a stalled one
//! within the I/O timeout, and the server's own reasons reach the messages.

use crate::support::resilience as support;

use std::thread;
use std::time::{Duration, Instant};

use support::{Kind, PrivateServer, StallProxy};
use venomqa::mysql::driver::prelude::Queryable;
use venomqa::mysql::{driver, MySqlSession};
use venomqa::{BackendConfig, Error};

fn shared_url() -> String {
    std::env::var("VENOMQA_MYSQL_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| venomqa::mysql::DEFAULT_URL.to_owned())
}

fn config(url: &str) -> BackendConfig {
    let mut config = BackendConfig::new("mysql").with_url(url);
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
    let mut server = PrivateServer::start(Kind::MariaDb);
    let url = server.url();
    let mut c = driver::Conn::new(url.as_str()).unwrap();
    c.query_drop(
        "CREATE TABLE items (id INT AUTO_INCREMENT PRIMARY KEY, label TEXT) ENGINE=InnoDB",
    )
    .unwrap();
    drop(c);
    let config = config(&url);
    // One pool resets the session before each lease (the default, whose reset is the
    // health check); the other's does not, so its first checkpoint is the health check.
    let never = config.clone().with_option("session_reset", "never");
    support::through_a_restart(
        move |name| {
            let config = if name.starts_with("worker0") {
                &config
            } else {
                &never
            };
            MySqlSession::builder()
                .with_config(config.clone())
                .name(name)
                .run(|db| -> venomqa::Result<()> {
                    db.exec(&format!("INSERT INTO items (label) VALUES ('{name}')"))?;
                    thread::sleep(Duration::from_millis(10));
                    let n: Option<i64> = db
                        .conn()
                        .query_first("SELECT COUNT(*) FROM items")
                        .map_err(|e| venomqa::Error::backend("mysql", "count", e))?;
                    assert_eq!(n, Some(1), "only this test's row is visible");
                    Ok(())
                })
                .map_err(|e| e.to_string())
        },
        || server.restart(Duration::from_millis(600)),
        Some("connection was lost"),
    );
    let mut c = driver::Conn::new(url.as_str()).unwrap();
    let left: Option<i64> = c.query_first("SELECT COUNT(*) FROM items").unwrap();
    assert_eq!(left, Some(0), "nothing of any test was committed");
}

/// A server that stays down: the lease keeps trying for the connect timeout, then fails
/// naming the host, the port, the cause and how long it tried. When the server is back,
/// the next test passes.
#[test]
fn a_server_that_stays_down_fails_within_the_connect_timeout() {
    let mut server = PrivateServer::start(Kind::MariaDb);
    let mut config = config(&server.url());
    config.connect_timeout = Some(Duration::from_millis(1500));
    support::stays_down_then_back(&mut server, || {
        let mut db = MySqlSession::builder().with_config(config.clone()).open()?;
        let one: Option<i64> = db.conn().query_first("SELECT 1").unwrap();
        assert_eq!(one, Some(1));
        db.finish()
    });
}

/// A server that accepted the connection and stopped answering (a proxy that stalls):
/// the next operation fails within the I/O timeout, saying so, instead of hanging; the
/// pool then opens a new connection.
#[test]
fn a_stalled_server_fails_within_the_io_timeout() {
    let shared = shared_url();
    let upstream = support::port_of(&shared, 3306);
    let proxy = StallProxy::new(upstream);
    // prefer_socket=false: on a loopback host the driver would otherwise switch to the
    // server's Unix socket, around the proxy.
    let through = proxy.url_through(&shared, upstream);
    let sep = if through.contains('?') { '&' } else { '?' };
    let mut config = config(&format!("{through}{sep}prefer_socket=false"));
    config.io_timeout = Some(Duration::from_millis(500));

    let mut db = MySqlSession::builder()
        .with_config(config.clone())
        .name("stalled")
        .open()
        .unwrap();
    db.exec("SELECT 1").unwrap();
    proxy.stall(true);
    let started = Instant::now();
    let e = db.exec("SELECT 1").unwrap_err();
    let waited = started.elapsed();
    let text = e.to_string();
    println!("{text} (after {waited:?})");
    assert!(matches!(e, Error::ConnectionLost { .. }), "{text}");
    assert!(text.contains("io_timeout_ms"), "{text}");
    assert!(waited < Duration::from_secs(20), "it hung: {waited:?}");
    let e = db.finish().unwrap_err();
    assert!(e.is_connection_lost(), "{e}");
    proxy.stall(false);

    // A stalled user query through the native connection times out too.
    let mut db = MySqlSession::builder()
        .with_config(config.clone())
        .open()
        .unwrap();
    proxy.stall(true);
    let started = Instant::now();
    let e = db.conn().query_drop("SELECT 1").unwrap_err();
    println!("{e} (after {:?})", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(20));
    drop(db);
    proxy.stall(false);

    // The pool replaced the stalled connections: the next test passes.
    let connections = proxy.connections();
    let mut db = MySqlSession::builder().with_config(config).open().unwrap();
    db.exec("SELECT 1").unwrap();
    db.finish().unwrap();
    assert!(proxy.connections() > connections, "a new connection");
}

/// The server's own reason, with its code, reaches the message: unknown database (1049),
/// a wrong password (1045), no access to the database (1044). None is retried, and no
/// message shows the password.
#[test]
fn server_refusals_show_the_servers_own_reason() {
    let shared = shared_url();
    let base = &shared[..shared.rfind('/').unwrap()];
    let open = |url: &str| {
        let started = Instant::now();
        let mut config = config(url);
        config.connect_timeout = Some(Duration::from_secs(5));
        let e = MySqlSession::builder()
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
        assert!(!text.contains("Error {"), "the driver's Debug text: {text}");
        text
    };
    let text = open(&format!("{base}/vq_no_such_database"));
    assert!(
        text.contains("1049") && text.contains("Unknown database"),
        "{text}"
    );

    let mut c = driver::Conn::new(shared.as_str()).unwrap();
    c.query_drop("CREATE USER IF NOT EXISTS 'vq_no_access'@'%' IDENTIFIED BY 'p@ss:w/rd#1'")
        .unwrap();
    let no_access = format!(
        "mysql://vq_no_access:p%40ss%3Aw%2Frd%231@{}/test",
        support::server_of(&shared)
    );
    let text = open(&no_access);
    assert!(
        text.contains("1044") && text.contains("Access denied"),
        "{text}"
    );
    assert!(!text.contains("p@ss") && !text.contains("p%40ss"), "{text}");

    let wrong = no_access.replace("p%40ss%3Aw%2Frd%231", "wrong");
    let text = open(&wrong);
    assert!(
        text.contains("1045") && text.contains("Access denied"),
        "{text}"
    );
}

/// Round trips of an empty test on a pooled connection, counted by a proxy: 3 with the
/// session reset before each test (the default), 2 without (`session_reset: never`), as
/// a hand-written transaction.
#[test]
fn an_empty_test_costs_three_round_trips_or_two_without_the_session_reset() {
    let shared = shared_url();
    let upstream = support::port_of(&shared, 3306);
    for (reset, expected) in [("each_test", 3), ("never", 2)] {
        let proxy = StallProxy::new(upstream);
        let through = proxy.url_through(&shared, upstream);
        let sep = if through.contains('?') { '&' } else { '?' };
        let mut config = config(&format!("{through}{sep}prefer_socket=false"))
            .with_option("session_reset", reset);
        config.pool_size = Some(1);
        let run = || {
            MySqlSession::builder()
                .with_config(config.clone())
                .run(|_db| {})
        };
        run(); // connects
        let before = proxy.round_trips();
        for _ in 0..10 {
            run();
        }
        let per_test = (proxy.round_trips() - before) as f64 / 10.0;
        println!("session_reset: {reset}: {per_test} round trips per empty test");
        assert_eq!(per_test, expected as f64, "session_reset: {reset}");
        assert_eq!(proxy.connections(), 1);
    }
}

/// `session_reset: never` keeps its promise both ways: no round trip for a reset, and
/// what a test leaves in its session reaches the next test (documented); the URL's
/// database is selected again all the same.
#[test]
fn without_the_session_reset_the_database_is_still_selected_again() {
    let config = config(&shared_url()).with_option("session_reset", "never");
    let mut config = config;
    config.pool_size = Some(1);
    let database = {
        let mut db = MySqlSession::builder()
            .with_config(config.clone())
            .open()
            .unwrap();
        let database: Option<String> = db.conn().query_first("SELECT DATABASE()").unwrap();
        db.conn().query_drop("SET @vq_left = 1; USE mysql").unwrap();
        db.finish().unwrap();
        database
    };
    let mut db = MySqlSession::builder().with_config(config).open().unwrap();
    let (current, left): (Option<String>, Option<i64>) = db
        .conn()
        .query_first("SELECT DATABASE(), @vq_left")
        .unwrap()
        .unwrap();
    assert_eq!(current, database);
    assert_eq!(left, Some(1), "no reset: the user variable is still there");
    db.finish().unwrap();
}

/// The claim a pipelined `ROLLBACK; START TRANSACTION; SAVEPOINT` (a test's end sending the
/// next test's begin) rests on, checked on the server: under REPEATABLE READ, InnoDB's
/// consistent read view is taken at the first read, not at `START TRANSACTION` or
/// `SAVEPOINT`. A row another connection commits between the begin and the test's first
/// read is visible to it, exactly as if the transaction had begun at that read.
#[test]
fn the_read_view_starts_at_the_first_read_not_at_start_transaction() {
    let url = shared_url();
    let mut a = driver::Conn::new(url.as_str()).unwrap();
    let mut b = driver::Conn::new(url.as_str()).unwrap();
    let table = format!("vq_read_view_{}", std::process::id());
    a.query_drop(format!("CREATE TABLE {table} (v INT) ENGINE=InnoDB"))
        .unwrap();
    a.query_drop(
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION; SAVEPOINT venomqa_root",
    )
    .unwrap();
    b.query_drop(format!("INSERT INTO {table} VALUES (1)"))
        .unwrap();
    let seen: Option<i64> = a
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .unwrap();
    assert_eq!(seen, Some(1), "the view starts at the first read");
    // From then on the view holds: a later commit is not seen.
    b.query_drop(format!("INSERT INTO {table} VALUES (2)"))
        .unwrap();
    let seen: Option<i64> = a
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .unwrap();
    assert_eq!(seen, Some(1), "repeatable read after the first read");
    a.query_drop("ROLLBACK").unwrap();
    a.query_drop(format!("DROP TABLE {table}")).unwrap();
}
