//! Resilience on Redis: a private `redis-server` restarted mid-suite fails only the tests in
//! flight, and a server that stays down fails within the connect timeout, naming where.

use crate::support::resilience as support;

use std::thread;
use std::time::{Duration, Instant};

use support::{Kind, PrivateServer};
use venomqa::redis::{redis, RedisSession};
use venomqa::BackendConfig;

fn config(url: &str) -> BackendConfig {
    let mut config = BackendConfig::new("redis").with_url(url);
    config.pool_size = Some(2);
    config.connect_timeout = Some(Duration::from_secs(10));
    config
}

/// Tests run on two threads while the server restarts (down for 0.6 s, and back empty: it
/// keeps nothing on disk, leases included). Only a test in flight may fail; every test
/// that starts after the restart passes, on its own empty database.
#[test]
fn a_restart_mid_suite_fails_only_the_tests_in_flight() {
    let mut server = PrivateServer::start(Kind::Redis);
    let config = config(&server.url());
    support::through_a_restart(
        move |name| {
            RedisSession::builder()
                .with_config(config.clone())
                .name(name)
                .run(|db| -> redis::RedisResult<()> {
                    redis::cmd("SET").arg("k").arg(name).exec(db.conn())?;
                    thread::sleep(Duration::from_millis(10));
                    let keys: i64 = redis::cmd("DBSIZE").query(db.conn())?;
                    assert_eq!(keys, 1, "only this test's key is visible");
                    Ok(())
                })
                .map_err(|e| e.to_string())
        },
        || server.restart(Duration::from_millis(600)),
        None,
    );
}

/// A server that stays down: the lease keeps trying for the connect timeout, then fails
/// naming the host and port, in one line; when the server is back, the next test passes.
#[test]
fn a_server_that_stays_down_fails_within_the_connect_timeout() {
    let mut server = PrivateServer::start(Kind::Redis);
    server.stop();
    let mut config = config(&server.url());
    config.connect_timeout = Some(Duration::from_millis(1500));
    let began = Instant::now();
    let error = RedisSession::builder()
        .with_config(config.clone())
        .name("down")
        .open()
        .unwrap_err();
    let waited = began.elapsed();
    let text = error.to_string();
    println!("{text} (after {waited:?})");
    assert!(
        waited >= Duration::from_millis(1000),
        "it gave up before the connect timeout: {waited:?}"
    );
    assert!(
        text.contains(&format!("127.0.0.1:{}", server.port)),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    server.start_again();
    RedisSession::builder()
        .with_config(config)
        .name("back")
        .run(|db| -> redis::RedisResult<()> { redis::cmd("SET").arg("k").arg("v").exec(db.conn()) })
        .unwrap();
}
