//! Resilience on Redis: a private `redis-server` restarted mid-suite fails only the tests in
//! flight, and a server that stays down fails within the connect timeout, naming where.

use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use venomqa::redis::redis;
use venomqa::redis::RedisSession;
use venomqa::BackendConfig;

/// A `redis-server` of this test alone (no persistence), on a port it keeps across
/// restarts, killed on drop.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
}

impl PrivateRedis {
    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = PrivateRedis { child: None, port };
        server.start_again();
        server
    }

    fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/services.sh redis installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private redis-server on port {} did not start",
                self.port
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (as a crash or a restart would) and waits until it is gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self, db: i64) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(url: &str) -> BackendConfig {
    let mut config = BackendConfig::new("redis").with_url(url);
    config.pool_size = Some(2);
    config.connect_timeout = Some(Duration::from_secs(10));
    config
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Tests run on two threads while the server restarts (down for 0.6 s, and back empty: it
/// keeps nothing on disk). Only a test in flight may fail (at most one per thread); every
/// test that starts after the restart passes, on its own empty database.
#[test]
fn a_restart_mid_suite_fails_only_the_tests_in_flight() {
    let mut server = PrivateRedis::start();
    let config = config(&server.url(0));
    let restarted = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|worker| {
            let config = config.clone();
            let restarted = restarted.clone();
            thread::spawn(move || {
                let mut outcomes = Vec::new();
                let mut after_restart = 0;
                let mut i = 0;
                while after_restart < 8 {
                    i += 1;
                    assert!(i < 2000, "the restart never happened");
                    let was_restarted = restarted.load(Ordering::SeqCst);
                    let name = format!("worker{worker}_test{i}");
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        RedisSession::builder()
                            .with_config(config.clone())
                            .name(name.clone())
                            .run(|db| -> redis::RedisResult<()> {
                                redis::cmd("SET").arg("k").arg(&name).exec(db.conn())?;
                                thread::sleep(Duration::from_millis(10));
                                let keys: i64 = redis::cmd("DBSIZE").query(db.conn())?;
                                assert_eq!(keys, 1, "only this test's key is visible");
                                Ok(())
                            })
                    }));
                    let failure = match outcome {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.to_string()),
                        Err(panic) => Some(panic_text(panic)),
                    };
                    if was_restarted {
                        after_restart += 1;
                    }
                    outcomes.push((name, was_restarted, failure));
                }
                outcomes
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(400));
    let began = Instant::now();
    server.stop();
    thread::sleep(Duration::from_millis(600));
    server.start_again();
    restarted.store(true, Ordering::SeqCst);
    println!("server down and up again in {:?}", began.elapsed());

    let outcomes: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker thread panicked"))
        .collect();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.2.is_some()).collect();
    for (name, _, failure) in &failed {
        println!("{name}: {}", failure.as_deref().unwrap_or_default());
    }
    println!("{} tests, {} failed", outcomes.len(), failed.len());
    assert!(
        failed.len() <= 2,
        "more than the tests in flight failed: {failed:#?}"
    );
    for (name, _, failure) in &failed {
        let text = failure.as_deref().unwrap_or_default();
        assert!(!text.contains("passed"), "{name}: {text}");
    }
    assert!(
        outcomes.iter().filter(|o| o.1).all(|o| o.2.is_none()),
        "a test that began after the restart failed: {outcomes:#?}"
    );
}

/// A server that stays down: the lease keeps trying for the connect timeout, then fails
/// naming the host and port; when the server is back, the next test passes.
#[test]
fn a_server_that_stays_down_fails_within_the_connect_timeout() {
    let mut server = PrivateRedis::start();
    server.stop();
    let mut config = config(&server.url(0));
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
    assert!(text.lines().count() == 1, "{text}");

    server.start_again();
    RedisSession::builder()
        .with_config(config)
        .name("back")
        .run(|db| -> redis::RedisResult<()> { redis::cmd("SET").arg("k").arg("v").exec(db.conn()) })
        .unwrap();
}
