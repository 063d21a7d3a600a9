#![cfg(feature = "redis")]
//! Redis capture isolation: writes made by OTHER processes (the tests crate's
//! the writer (this test binary re-executed, `support::writer`), on connections of its own) to the URL's database are rolled back, and
//! an independent connection proves the database is back exactly: every type, every
//! member, every absolute expiry time to the millisecond.
//!
//! Most tests run a `redis-server` of their own on a free port (`PrivateServer`), so
//! leases, spare databases and kills never touch other tests; the conformance suite runs
//! on the shared server (entry `redis_capture` of venomqa.yaml).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use venomqa::capture::ChangeKind;
use venomqa::redis::redis::{self, Connection, Value};
use venomqa::redis::{
    Redis, RedisCaptureSession, RedisCaptureStateManager, RedisStateManager, CAPTURE_PIN_VALUE,
};
use venomqa::{Backend, BackendConfig, Error, SessionBuilder, StateManager};

/// A `redis-server` of this test alone on a free port (no persistence), killed on drop.
struct PrivateServer {
    child: Child,
    port: u16,
}

impl PrivateServer {
    fn start() -> PrivateServer {
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(["--daemonize", "no", "--bind", "127.0.0.1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed for these tests");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken meanwhile: try another
                }
                let up = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                    .unwrap()
                    .get_connection_with_timeout(Duration::from_millis(200))
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
                if up.is_ok() {
                    return PrivateServer { child, port };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start a private redis-server");
    }

    /// The URL of database `db`.
    fn url(&self, db: i64) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// An independent connection on database `db`.
    fn observer(&self, db: i64) -> Connection {
        observer(&self.url(db))
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An independent connection to `url` (not the session's).
fn observer(url: &str) -> Connection {
    redis::Client::open(url)
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("the Redis server at {url} must be running: {e}"))
}

/// A `venomqa.yaml` with the capture entries these tests use, in a directory of its own.
fn config_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("venomqa-redis-capture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("venomqa.yaml"),
            "backends:\n\
             \x20 vq_capture:\n\
             \x20   backend: redis\n\
             \x20   isolation: capture\n\
             \x20   lease_ttl_ms: 1500\n\
             \x20   lease_wait_ms: 30000\n\
             \x20 vq_capture_digest:\n\
             \x20   backend: redis\n\
             \x20   isolation: capture\n\
             \x20   capture_proof: digest\n",
        )
        .unwrap();
        dir
    })
}

/// Sessions on the capture entry, on `url` (a private server's database).
fn capture(url: &str, test: &str) -> SessionBuilder<RedisCaptureStateManager> {
    RedisCaptureSession::builder()
        .config_dir(config_dir())
        .entry("vq_capture")
        .url(url)
        .name(test)
}

fn cmd(conn: &mut Connection, args: &[&str]) -> Value {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(conn).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// Writes `commands` (one a line) from another process, on a connection of its own.
fn write_from_another_process(url: &str, commands: &str) {
    let out = crate::support::writer::command()
        .args(["redis", url, commands])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the writer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Everything in the database, read by an independent connection: per key its type, its
/// full contents in a canonical form, and its absolute expiry time in ms.
fn dump(conn: &mut Connection) -> BTreeMap<Vec<u8>, String> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(conn).unwrap();
    keys.into_iter()
        .map(|k| {
            let expires: i64 = redis::cmd("PEXPIRETIME").arg(&k).query(conn).unwrap();
            let text = format!("{} expires_at_ms={expires}", contents(conn, &k));
            (k, text)
        })
        .collect()
}

/// Asserts that two dumps are equal, naming the keys that differ (not the whole dumps).
#[track_caller]
fn same(now: &BTreeMap<Vec<u8>, String>, expected: &BTreeMap<Vec<u8>, String>) {
    let differ: Vec<String> = now
        .keys()
        .chain(expected.keys())
        .filter(|k| now.get(*k) != expected.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| {
                v.map_or("(none)".to_owned(), |v| v.chars().take(120).collect())
            };
            format!(
                "{}: {} != {}",
                String::from_utf8_lossy(k),
                show(now.get(k)),
                show(expected.get(k))
            )
        })
        .collect();
    assert!(differ.is_empty(), "the database differs: {differ:#?}");
}

/// The full contents of a key, in a canonical form (sets and hashes sorted), with its type.
fn contents(conn: &mut Connection, key: &[u8]) -> String {
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).unwrap();
    let q = |conn: &mut Connection, args: &[&[u8]]| -> Value {
        let mut c = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for a in &args[1..] {
            c.arg(*a);
        }
        c.query(conn).unwrap()
    };
    match kind.as_str() {
        "string" => format!("string {:?}", q(conn, &[b"GET", key])),
        "list" => format!("list {:?}", q(conn, &[b"LRANGE", key, b"0", b"-1"])),
        "hash" => {
            let m: BTreeMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL").arg(key).query(conn).unwrap();
            format!("hash {m:?}")
        }
        "set" => {
            let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(key).query(conn).unwrap();
            v.sort();
            format!("set {v:?}")
        }
        "zset" => format!(
            "zset {:?}",
            q(conn, &[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"])
        ),
        "stream" => format!(
            "stream {:?} {:?} {:?} {:?}",
            q(conn, &[b"XRANGE", key, b"-", b"+"]),
            q(conn, &[b"XINFO", b"GROUPS", key]),
            q(conn, &[b"XINFO", b"STREAM", key]),
            q(conn, &[b"XPENDING", key, b"g1"]),
        ),
        other => panic!("unexpected type {other}"),
    }
}

/// One key of every type, some with an expiry, a big hash and set (hashtable encoding),
/// binary values.
const EVERY_TYPE: &str = r#"
SET str "bin\x00\xff\xfe\r end"
SET counter 41
INCR counter
SET ttl_string expires PX 100000
HSET hash name ann age 41 bin "\x00\xff"
PEXPIRE hash 200000
RPUSH list a b "\x00" a
SADD set x y "\xff"
SADD intset 1 2 300
ZADD zset 1.5 one -2 two 3e10 three
XADD stream 1-1 f v1
XADD stream 2-1 f v2 g "\x00"
XGROUP CREATE stream g1 0
XREADGROUP GROUP g1 c1 COUNT 1 STREAMS stream >
PEXPIRE stream 300000
"#;

/// Changes, deletes and adds keys of every type, and expiry times.
const APP_WRITES: &str = r#"
SET str changed
DEL counter
PERSIST ttl_string
HSET hash name bob
PEXPIRE hash 5000
HDEL big_hash f7
LPOP list
SADD set z
SREM big_set m3
DEL intset
SET intset "now a string"
ZINCRBY zset 10 one
XADD stream 3-1 f v3
XACK stream g1 1-1
XGROUP CREATE stream g2 $
SET new_string new
HSET new_hash a b
SET new_ttl x PX 100000
"#;

fn fill_every_type(url: &str) {
    let mut big = String::from("HSET big_hash");
    let mut set = String::from("SADD big_set");
    for i in 0..300 {
        big.push_str(&format!(" f{i} v{i}"));
        set.push_str(&format!(" m{i}"));
    }
    write_from_another_process(url, &format!("{EVERY_TYPE}\n{big}\n{set}"));
}

#[test]
fn another_process_writes_and_the_rollback_undoes_it_exactly() {
    let server = PrivateServer::start();
    let url = server.url(3);
    fill_every_type(&url);
    let mut eye = server.observer(3);
    let baseline = dump(&mut eye);
    assert_eq!(baseline.len(), 11);
    capture(&url, "exact").run(|db: &mut RedisCaptureSession| {
        assert!(db.captures());
        assert_eq!(db.url().unwrap().expose(), url);
        assert_eq!(db.database(), 3);
        db.create_checkpoint("before_the_app").unwrap();
        write_from_another_process(&url, APP_WRITES);
        let changed = dump(&mut eye);
        assert_ne!(changed, baseline, "the other process's writes are there");

        let diff = db.diff_since("before_the_app").unwrap();
        let keys = diff.table("db3").expect("db3 changed");
        assert_eq!(
            (keys.inserted, keys.updated, keys.deleted),
            (3, 10, 1),
            "{diff}"
        );
        let hash = keys.rows.iter().find(|r| r.key == "hash").unwrap();
        let columns: Vec<(&str, &str, &str)> = hash
            .columns
            .iter()
            .map(|c| (c.column.as_str(), c.old.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(columns[0], ("name", "ann", "bob"), "{diff}");
        assert_eq!(columns[1].0, "expires_at_ms", "{diff}");
        assert!(
            keys.rows
                .iter()
                .any(|r| r.key == "counter" && r.kind == ChangeKind::Deleted),
            "{diff}"
        );
        let big_set = keys.rows.iter().find(|r| r.key == "big_set").unwrap();
        assert_eq!(
            big_set.columns.len(),
            1,
            "a copy's member order is no change: {diff}"
        );

        // An app connection open across the rollback sees the restored data at once.
        let mut app = server.observer(3);
        db.rollback("before_the_app").unwrap();
        assert_eq!(
            dump(&mut eye),
            baseline,
            "every key, type, member and expiry is back"
        );
        assert_eq!(
            cmd(&mut app, &["GET", "counter"]),
            Value::BulkString(b"42".to_vec())
        );
        assert!(db.diff().unwrap().is_empty(), "{}", db.diff().unwrap());

        // The checkpoint stays: the app writes again, and it is undone again.
        write_from_another_process(&url, APP_WRITES);
        db.rollback("before_the_app").unwrap();
        same(&dump(&mut eye), &baseline);
        write_from_another_process(&url, "SET after_the_checkpoint x");
    });
    assert_eq!(
        dump(&mut eye),
        baseline,
        "the end of the test rolls back too"
    );
    // Nothing of capture is left: no record, no spare leased, no spare holding data.
    let mut zero = server.observer(0);
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("venomqa:*")
        .query(&mut zero)
        .unwrap();
    let pins: Vec<&String> = left.iter().filter(|k| *k != "venomqa:lease:db:3").collect();
    assert!(pins.is_empty(), "only the connection's pin stays: {left:?}");
    for spare in 1..16 {
        if spare != 3 {
            let n: i64 = redis::cmd("DBSIZE")
                .query(&mut server.observer(spare))
                .unwrap();
            assert_eq!(n, 0, "spare database {spare} was emptied");
        }
    }
}

#[test]
fn nested_checkpoints_each_restore_their_own_state() {
    let server = PrivateServer::start();
    let url = server.url(2);
    fill_every_type(&url);
    let mut eye = server.observer(2);
    let baseline = dump(&mut eye);
    capture(&url, "nested").run(|db: &mut RedisCaptureSession| {
        db.create_checkpoint("one").unwrap();
        write_from_another_process(&url, "SET one 1\nDEL list\nHSET hash name one");
        let at_two = dump(&mut eye);
        db.create_checkpoint("two").unwrap();
        write_from_another_process(&url, "SET two 2\nDEL str\nPEXPIRE set 9000");
        db.checkpoint("three", |db| {
            // The test's own connection is just another client of the database.
            cmd(db.conn(), &["SET", "three", "3"]);
            write_from_another_process(&url, "FLUSHDB");
            assert_eq!(dump(&mut eye).len(), 0);
        })
        .unwrap();
        let diff = db.diff_since("two").unwrap();
        assert_eq!(
            diff.to_string(),
            "db2 +1 ~1 -1 (set expires_at_ms, str, two)"
        );
        db.rollback("two").unwrap();
        same(&dump(&mut eye), &at_two);
        db.rollback("one").unwrap();
        same(&dump(&mut eye), &baseline);
    });
    same(&dump(&mut eye), &baseline);
}

#[test]
fn the_tests_connection_is_back_on_the_apps_database_after_a_select_or_a_multi() {
    let server = PrivateServer::start();
    let url = server.url(5);
    write_from_another_process(&url, "SET here 5");
    capture(&url, "select").run(|db: &mut RedisCaptureSession| {
        db.create_checkpoint("c").unwrap();
        cmd(db.conn(), &["SELECT", "9"]);
        cmd(db.conn(), &["MULTI"]);
        db.rollback("c").unwrap();
        assert_eq!(
            cmd(db.conn(), &["GET", "here"]),
            Value::BulkString(b"5".to_vec()),
            "the open MULTI was discarded and database 5 selected again"
        );
    });
}

#[test]
fn expiry_times_come_back_to_the_millisecond_and_expired_keys_stay_expired() {
    let server = PrivateServer::start();
    let url = server.url(1);
    write_from_another_process(
        &url,
        "SET long x PX 600000\nSET soon x PX 300\nHSET h f v\nPEXPIREAT h 4102444800123\nSET forever x",
    );
    let mut eye = server.observer(1);
    let at = |eye: &mut Connection, k: &str| -> i64 {
        redis::cmd("PEXPIRETIME").arg(k).query(eye).unwrap()
    };
    let long = at(&mut eye, "long");
    capture(&url, "ttl").run(|db: &mut RedisCaptureSession| {
        db.create_checkpoint("c").unwrap();
        write_from_another_process(
            &url,
            "PERSIST long\nPEXPIRE forever 100000\nPEXPIREAT h 5000000000000\nSET soon y",
        );
        std::thread::sleep(Duration::from_millis(400));
        db.rollback("c").unwrap();
        assert_eq!(
            at(&mut eye, "long"),
            long,
            "the absolute expiry time, exactly"
        );
        assert_eq!(at(&mut eye, "h"), 4_102_444_800_123);
        assert_eq!(at(&mut eye, "forever"), -1);
        assert_eq!(
            at(&mut eye, "soon"),
            -2,
            "a key whose time passed during the test stays expired, as it would have"
        );
    });
    assert_eq!(at(&mut eye, "long"), long);
}

/// The child half of the kill tests: a session on `VQ_CAPTURE_URL` whose own connection
/// and another process write, in a loop of checkpoints and rollbacks, until it is killed.
#[test]
#[ignore = "a child process of a_test_process_killed_at_any_point_is_restored_by_the_next_session runs it"]
fn killed_child() {
    let url = std::env::var("VQ_CAPTURE_URL").unwrap();
    let mut db = capture(&url, "killed").open().unwrap();
    write_from_another_process(&url, "SET left_by_the_dead x\nDEL str\nHSET hash name dead");
    println!("written");
    for round in 0.. {
        db.create_checkpoint("c").unwrap();
        cmd(db.conn(), &["SET", &format!("round{round}"), "x"]);
        cmd(db.conn(), &["DEL", "list"]);
        db.rollback("c").unwrap();
        db.release("c").unwrap();
    }
}

fn spawn_child(test: &str, url: &str) -> Child {
    Command::new(crate::support::this_binary())
        .args([
            "--exact",
            &format!("redis_capture::{test}"),
            "--ignored",
            "--nocapture",
        ])
        .env("VQ_CAPTURE_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_line(child: &mut Child, line: &str) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(child.stdout.as_mut().unwrap());
    let mut got = String::new();
    loop {
        got.clear();
        assert!(
            reader.read_line(&mut got).unwrap() > 0,
            "the child ended before {line:?}"
        );
        if got.trim() == line {
            return;
        }
    }
}

#[test]
fn a_test_process_killed_at_any_point_is_restored_by_the_next_session() {
    let server = PrivateServer::start();
    let url = server.url(4);
    fill_every_type(&url);
    let mut eye = server.observer(4);
    let baseline = dump(&mut eye);
    // Killed right after its writes, then at points inside its loop of checkpoints and
    // rollbacks (a rollback is in flight most of the time).
    for delay_ms in [0, 37, 120, 251] {
        let mut child = spawn_child("killed_child", &url);
        wait_for_line(&mut child, "written");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_ne!(
            dump(&mut eye),
            baseline,
            "the dead session left its changes"
        );
        let started = Instant::now();
        capture(&url, "after_kill").run(|_: &mut RedisCaptureSession| ());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited only for the dead session's turn lock to expire"
        );
        same(&dump(&mut eye), &baseline);
    }
    // Its spare databases expired with its leases, and were emptied when leased again.
    let mut zero = server.observer(0);
    let record: Option<String> = redis::cmd("TYPE")
        .arg("venomqa:capture:db:4")
        .query(&mut zero)
        .ok();
    assert_eq!(record.as_deref(), Some("none"));
}

/// The child half of the two-process tests: rounds of sessions on `VQ_CAPTURE_URL`, each
/// checking that it starts from the baseline.
#[test]
#[ignore = "a child process of the two-process tests runs it"]
fn rounds_child() {
    let url = std::env::var("VQ_CAPTURE_URL").unwrap();
    let mut eye = observer(&url);
    let baseline = dump(&mut eye);
    for round in 0..6 {
        capture(&url, "rounds").run(|db: &mut RedisCaptureSession| {
            same(&dump(&mut eye), &baseline);
            write_from_another_process(
                &url,
                &format!(
                    "SET mine{round} {}\nDEL str\nRPUSH list x",
                    std::process::id()
                ),
            );
            db.checkpoint("inner", |_| write_from_another_process(&url, "FLUSHDB"))
                .unwrap();
            assert_eq!(
                dump(&mut eye).len(),
                baseline.len(),
                "str gone, mine{round} there"
            );
        });
    }
    same(&dump(&mut eye), &baseline);
}

fn succeeded(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_processes_each_on_its_own_database() {
    let server = PrivateServer::start();
    for db in [5, 6] {
        fill_every_type(&server.url(db));
    }
    let children: Vec<Child> = [5, 6]
        .iter()
        .map(|db| spawn_child("rounds_child", &server.url(*db)))
        .collect();
    for child in children {
        succeeded(child);
    }
}

#[test]
fn two_processes_on_one_database_take_turns() {
    let server = PrivateServer::start();
    let url = server.url(7);
    fill_every_type(&url);
    let children: Vec<Child> = (0..2).map(|_| spawn_child("rounds_child", &url)).collect();
    for child in children {
        succeeded(child);
    }
}

#[test]
fn a_writer_that_keeps_writing_is_rolled_back_each_time() {
    let server = PrivateServer::start();
    let url = server.url(1);
    fill_every_type(&url);
    let mut eye = server.observer(1);
    let baseline = dump(&mut eye);
    capture(&url, "busy").run(|db: &mut RedisCaptureSession| {
        db.create_checkpoint("c").unwrap();
        let mut writer = crate::support::writer::command()
            .args([
                "redis",
                &url,
                "INCR counter\nRPUSH list x\nSET r x PX 50",
                "--loop",
                "1500",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut writer, "writing");
        let (mut rollbacks, mut seen) = (0, 0);
        while writer.try_wait().unwrap().is_none() {
            let counter: i64 = redis::cmd("GET").arg("counter").query(&mut eye).unwrap();
            seen = seen.max(counter);
            // Each rollback is one atomic script: the writer's commands land before or
            // after it, never in the middle.
            db.rollback("c").unwrap();
            rollbacks += 1;
        }
        assert!(writer.wait().unwrap().success());
        assert!(
            rollbacks > 5 && seen > 42,
            "{rollbacks} rollbacks, counter seen at {seen}"
        );
        db.rollback("c").unwrap();
        same(&dump(&mut eye), &baseline);
    });
}

#[test]
fn an_app_killed_mid_write_is_rolled_back() {
    let server = PrivateServer::start();
    let url = server.url(3);
    fill_every_type(&url);
    let mut eye = server.observer(3);
    let baseline = dump(&mut eye);
    capture(&url, "app_killed").run(|db: &mut RedisCaptureSession| {
        db.create_checkpoint("c").unwrap();
        // The app writes in a loop, and dies (SIGKILL) somewhere in the middle of a round.
        let mut app = crate::support::writer::command()
            .args([
                "redis",
                &url,
                "INCR counter\nRPUSH list x\nHSET big_hash f1 changed\nDEL str\nSET str again",
                "--loop",
                "10000",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut app, "writing");
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            app.try_wait().unwrap().is_none(),
            "the app is still writing"
        );
        app.kill().unwrap();
        assert!(!app.wait().unwrap().success());
        assert!(!db.diff_since("c").unwrap().is_empty());
        db.rollback("c").unwrap();
        same(&dump(&mut eye), &baseline);
    });
}

/// Another client writes `tamper` into the spare database of checkpoint "c", with `proof`.
fn tamper_with_the_spare(proof: &str, tamper: &str, says: &str) {
    let server = PrivateServer::start();
    let url = server.url(2);
    fill_every_type(&url);
    let mut eye = server.observer(2);
    let baseline = dump(&mut eye);
    let entry = if proof == "digest" {
        "vq_capture_digest"
    } else {
        "vq_capture"
    };
    let mut db = RedisCaptureSession::builder()
        .config_dir(config_dir())
        .entry(entry)
        .url(&url)
        .name("tampered")
        .open()
        .unwrap();
    db.create_checkpoint("c").unwrap();
    write_from_another_process(&url, "SET app x");
    let changed = dump(&mut eye);
    // The spare database holding "c": leased by a lease token (the root's lease key holds
    // the session's record marker, database 2's the capture pin).
    let mut zero = server.observer(0);
    let spare = (1..16)
        .find(|n| {
            let value: Option<String> = redis::cmd("GET")
                .arg(format!("venomqa:lease:db:{n}"))
                .query(&mut zero)
                .unwrap();
            value.is_some_and(|v| !v.starts_with("venomqa:"))
        })
        .expect("the spare of c is leased");
    write_from_another_process(&server.url(spare), tamper);
    let e = db.rollback("c").unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::StateLost { .. }), "{text}");
    assert!(
        text.contains(&format!("spare database {spare}"))
            && text.contains(says)
            && text.contains("nothing was restored"),
        "{text}"
    );
    assert!(text.len() <= 300, "{} chars: {text}", text.len());
    same(&dump(&mut eye), &changed);
    // The session's first checkpoint is intact: the end of the test restores it.
    drop(db);
    capture(&url, "after").run(|_: &mut RedisCaptureSession| ());
    same(&dump(&mut eye), &baseline);
}

#[test]
fn a_spare_changed_by_someone_else_fails_the_rollback_and_restores_nothing() {
    // The count proof sees keys added or deleted.
    tamper_with_the_spare("count", "SET intruder x", "12 keys, 11 expected");
    // The digest proof also sees a value changed in place.
    tamper_with_the_spare("digest", "HSET hash name mallory", "its contents differ");
}

#[test]
fn uninstall_restores_what_a_dead_session_left_and_removes_everything() {
    let server = PrivateServer::start();
    let url = server.url(3);
    fill_every_type(&url);
    let mut eye = server.observer(3);
    let baseline = dump(&mut eye);
    let mut child = spawn_child("killed_child", &url);
    wait_for_line(&mut child, "written");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut zero = server.observer(0);
    let root: i64 = redis::cmd("HGET")
        .arg("venomqa:capture:db:3")
        .arg("spare")
        .query(&mut zero)
        .unwrap();
    let config = BackendConfig::new("redis")
        .with_url(&url)
        .with_option("isolation", "capture")
        .with_option("lease_ttl_ms", 1000);
    let backend = RedisCaptureStateManager::from_config(&config).unwrap();
    backend.backend().uninstall_capture().unwrap();
    same(&dump(&mut eye), &baseline);
    let left: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut zero).unwrap();
    assert!(
        left.iter()
            .all(|k| k == "venomqa:lease:db:3" || k.starts_with("venomqa:lease:db:") && k != &format!("venomqa:lease:db:{root}")),
        "the record and its spare's reservation are gone; what stays are the pin of uninstall's own connection and the dead child's other leases, which expire: {left:?}"
    );
    let size: i64 = redis::cmd("DBSIZE")
        .query(&mut server.observer(root))
        .unwrap();
    assert_eq!(
        size, 0,
        "the dead session's first spare, database {root}, was emptied"
    );
}

#[test]
fn other_isolations_hand_out_no_url_and_keep_no_diff() {
    let server = PrivateServer::start();
    let mut m = RedisStateManager::new(Redis::from_url(&server.url(0)).unwrap());
    m.connect().unwrap();
    assert!(!m.captures());
    let e = m.url().unwrap_err().to_string();
    assert!(e.contains("isolation: capture"), "{e}");
    m.checkpoint("c").unwrap();
    assert!(m
        .diff("c")
        .unwrap_err()
        .to_string()
        .contains("isolation: capture"));
    m.disconnect().unwrap();
}

#[test]
fn bad_capture_configurations_are_refused_with_the_way_out() {
    let server = PrivateServer::start();
    let mut errors: Vec<(&str, Error)> = Vec::new();
    let build = |url: &str, extra: Option<(&str, &str)>| {
        let mut config = BackendConfig::new("redis")
            .with_url(url)
            .with_option("isolation", "capture")
            .with_option("lease_wait_ms", 0);
        if let Some((k, v)) = extra {
            config = config.with_option(k, v);
        }
        RedisCaptureStateManager::from_config(&config)
    };
    errors.push(("database 0", build(&server.url(0), None).unwrap_err()));
    errors.push((
        "key prefix",
        build(&server.url(1), Some(("key_prefix", "app:"))).unwrap_err(),
    ));
    // Prefix isolation works in database 1: capture may not swap it under it.
    let mut prefix = RedisStateManager::new(
        Redis::from_url(&server.url(1))
            .unwrap()
            .isolation(venomqa::redis::Isolation::Prefix),
    );
    prefix.connect().unwrap();
    let mut capture = build(&server.url(1), None).unwrap();
    errors.push(("held by prefix isolation", capture.connect().unwrap_err()));
    prefix.disconnect().unwrap();
    // Capture pins database 2: database isolation never leases it.
    let mut pinned = build(&server.url(2), None).unwrap();
    pinned.connect().unwrap();
    let mut zero = server.observer(0);
    let pin: String = redis::cmd("GET")
        .arg("venomqa:lease:db:2")
        .query(&mut zero)
        .unwrap();
    assert_eq!(pin, CAPTURE_PIN_VALUE);
    let held = Redis::from_url(&server.url(0))
        .unwrap()
        .databases(2, 2)
        .lease_wait(Duration::ZERO)
        .connect()
        .unwrap_err();
    errors.push(("database isolation on a captured database", held));
    let e = RedisStateManager::new(
        Redis::from_url(&server.url(2))
            .unwrap()
            .isolation(venomqa::redis::Isolation::None)
            .lease_wait(Duration::ZERO),
    )
    .connect()
    .unwrap_err();
    assert!(e.to_string().contains("held by capture isolation"), "{e}");
    errors.push(("none isolation on a captured database", e));
    pinned.disconnect().unwrap();
    for (what, e) in &errors {
        let text = e.to_string();
        println!("{what}: {text}");
        assert!(
            !text.contains('\n') && !text.contains("  "),
            "{what}: {text}"
        );
        assert!(text.len() <= 300, "{what}: {} chars: {text}", text.len());
    }
    let text = errors[0].1.to_string();
    assert!(
        text.contains("1 or higher") && text.contains("backends.redis.url"),
        "{text}"
    );
    assert!(errors[1].1.to_string().contains("remove key_prefix"));
    assert!(errors[2].1.to_string().contains("prefix or none isolation"));
}

/// Keys `vq_probe:<value>` of the captured database.
struct Keys;

impl venomqa::conformance::Probe for Keys {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
        let m = m.connection::<Redis>()?;
        redis::cmd("SET")
            .arg(format!("vq_probe:{value}"))
            .arg("")
            .exec(m.conn())
            .map_err(|e| Error::backend("redis", "probe insert", e))
    }

    fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
        let m = m.connection::<Redis>()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("vq_probe:*")
            .query(m.conn())
            .map_err(|e| Error::backend("redis", "probe read", e))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix("vq_probe:")?.parse().ok())
            .collect())
    }
}

/// The checkpoint-semantics suite on the shared server's captured database (entry
/// `redis_capture` of the tests' venomqa.yaml).
#[test]
fn conformance_with_capture() {
    venomqa::conformance::run("redis_capture", Keys);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    let server = PrivateServer::start();
    let config = BackendConfig::new("redis")
        .with_url(server.url(1))
        .with_option("isolation", "capture");
    venomqa::conformance::faults(
        RedisStateManager::from_config(&config)
            .unwrap()
            .backend()
            .clone(),
    );
}

use crate::support::capture_exact;

/// The capture suite (`conformance::capture`) on Redis: the writes of a small shop made
/// by a client of the probe's own, as an app would (a Lua script per write, so each is
/// atomic and a rejected one changes nothing), and a dump of every `vq_cc:*` key read by
/// that client. Entry `redis_capture_cc` of venomqa.yaml: database 13 of the shared
/// server, which no other test uses.
mod capture_exact_probe {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use venomqa::conformance::capture::{self, Write};
    use venomqa::redis::redis::{self, Connection, Script};
    use venomqa::redis::RedisCaptureStateManager;
    use venomqa::{BackendConfig, Error, Result};

    const ENTRY: &str = "redis_capture_cc";
    const URL: &str = "redis://127.0.0.1:6379/13";

    /// The shop's writes. ARGV[1] is `one` or `tx`, then one write a word list each:
    /// `ip id`, `rn id`, `rk id to`, `dp id`, `ins table parent v`, `up table parent`,
    /// `rc table parent`, `d1 table parent v`, `da table v`. Parent `id` is the hash
    /// `vq_cc:parent:<id>` {name} with a TTL; a keyed child the hash `vq_cc:<table>:<n>`
    /// {parent, v}, `n` from `INCR vq_cc:<table>:seq`; a keyless child an element
    /// `parent:v` of the list `vq_cc:<table>`. A rejected write returns an error before
    /// it changes anything; in a transaction (`tx`) the writes before it are undone from
    /// a DUMP of every key taken at its start.
    const SHOP: &str = r#"
local PARENT = 'vq_cc:parent:'
local TABLES = { 'vq_cc_kc', 'vq_cc_kn', 'vq_cc_lc', 'vq_cc_ln' }
local KEYED = { vq_cc_kc = true, vq_cc_kn = true }
local CASCADE = { vq_cc_kc = true, vq_cc_lc = true }

local function row_no(k) return tonumber(string.match(k, ':(%d+)$')) end

-- The keyed rows of table t, in key order.
local function rows(t)
  local seq = 'vq_cc:' .. t .. ':seq'
  local out = {}
  for _, k in ipairs(redis.call('KEYS', 'vq_cc:' .. t .. ':*')) do
    if k ~= seq then table.insert(out, k) end
  end
  table.sort(out, function(a, b) return row_no(a) < row_no(b) end)
  return out
end

local function split(e) return string.match(e, '^(.*):(%d+)$') end

-- f(key, index, parent, v) for every element of keyless table t.
local function each_element(t, f)
  local key = 'vq_cc:' .. t
  for i, e in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local p, v = split(e)
    f(key, i - 1, p, v)
  end
end

-- Removes every element of keyless table t whose parent and value match.
local function remove_where(t, matches)
  local key = 'vq_cc:' .. t
  local done = {}
  for _, e in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local p, v = split(e)
    if matches(p, v) and not done[e] then
      done[e] = true
      redis.call('LREM', key, 0, e)
    end
  end
end

-- Every child of parent `from` in table t gets parent `to` (an id or 'NULL').
local function reparent(t, from, to)
  if KEYED[t] then
    for _, k in ipairs(rows(t)) do
      if redis.call('HGET', k, 'parent') == from then redis.call('HSET', k, 'parent', to) end
    end
  else
    each_element(t, function(key, i, p, v)
      if p == from then redis.call('LSET', key, i, to .. ':' .. v) end
    end)
  end
end

local ops = {}

function ops.ip(id)
  local k = PARENT .. id
  if redis.call('EXISTS', k) == 1 then return 'parent ' .. id .. ' exists' end
  redis.call('HSET', k, 'name', 'p' .. id)
  redis.call('PEXPIRE', k, 3600000)
end

function ops.rn(id)
  local k = PARENT .. id
  local name = redis.call('HGET', k, 'name')
  if name then redis.call('HSET', k, 'name', name .. '+') end
end

function ops.rk(id, to)
  local from, dest = PARENT .. id, PARENT .. to
  if redis.call('EXISTS', from) == 0 then return 'no parent ' .. id end
  if redis.call('EXISTS', dest) == 1 then return 'parent ' .. to .. ' exists' end
  redis.call('RENAME', from, dest)
  for _, t in ipairs(TABLES) do reparent(t, id, to) end
end

function ops.dp(id)
  if redis.call('DEL', PARENT .. id) == 0 then return end
  for _, t in ipairs(TABLES) do
    if not CASCADE[t] then
      reparent(t, id, 'NULL')
    elseif KEYED[t] then
      for _, k in ipairs(rows(t)) do
        if redis.call('HGET', k, 'parent') == id then redis.call('DEL', k) end
      end
    else
      remove_where(t, function(p, v) return p == id end)
    end
  end
end

function ops.ins(t, parent, v)
  if redis.call('EXISTS', PARENT .. parent) == 0 then return 'no parent ' .. parent end
  if KEYED[t] then
    local seq = 'vq_cc:' .. t .. ':seq'
    local n = tonumber(redis.call('GET', seq) or '0') + 1
    if redis.call('EXISTS', 'vq_cc:' .. t .. ':' .. n) == 1 then return 'key ' .. n .. ' exists' end
    n = redis.call('INCR', seq)
    redis.call('HSET', 'vq_cc:' .. t .. ':' .. n, 'parent', parent, 'v', v)
  else
    redis.call('RPUSH', 'vq_cc:' .. t, parent .. ':' .. v)
  end
end

function ops.up(t, parent)
  if KEYED[t] then
    for _, k in ipairs(rows(t)) do
      if redis.call('HGET', k, 'parent') == parent then redis.call('HINCRBY', k, 'v', 1) end
    end
  else
    each_element(t, function(key, i, p, v)
      if p == parent then redis.call('LSET', key, i, p .. ':' .. (tonumber(v) + 1)) end
    end)
  end
end

function ops.rc(t, parent)
  if not KEYED[t] then return end
  local moves = {}
  for _, k in ipairs(rows(t)) do
    if redis.call('HGET', k, 'parent') == parent then
      local dest = 'vq_cc:' .. t .. ':' .. (row_no(k) + 1000)
      if redis.call('EXISTS', dest) == 1 then return dest .. ' exists' end
      table.insert(moves, { k, dest })
    end
  end
  for _, m in ipairs(moves) do redis.call('RENAME', m[1], m[2]) end
end

function ops.d1(t, parent, v)
  if KEYED[t] then
    for _, k in ipairs(rows(t)) do
      if redis.call('HGET', k, 'parent') == parent and redis.call('HGET', k, 'v') == v then
        redis.call('DEL', k)
        return
      end
    end
  else
    redis.call('LREM', 'vq_cc:' .. t, 1, parent .. ':' .. v)
  end
end

function ops.da(t, v)
  if KEYED[t] then
    for _, k in ipairs(rows(t)) do
      if redis.call('HGET', k, 'v') == v then redis.call('DEL', k) end
    end
  else
    remove_where(t, function(p, w) return w == v end)
  end
end

local before = nil
if ARGV[1] == 'tx' then
  before = {}
  for _, k in ipairs(redis.call('KEYS', 'vq_cc:*')) do
    table.insert(before, { k, redis.call('DUMP', k), redis.call('PEXPIRETIME', k) })
  end
end
for i = 2, #ARGV do
  local words = {}
  for w in string.gmatch(ARGV[i], '%S+') do table.insert(words, w) end
  local op = table.remove(words, 1)
  local err = ops[op](unpack(words))
  if err then
    if before then
      for _, k in ipairs(redis.call('KEYS', 'vq_cc:*')) do redis.call('DEL', k) end
      for _, b in ipairs(before) do
        if b[3] > 0 then
          redis.call('RESTORE', b[1], b[3], b[2], 'ABSTTL')
        else
          redis.call('RESTORE', b[1], 0, b[2])
        end
      end
    end
    return redis.error_reply('REJECTED ' .. ARGV[i] .. ': ' .. err)
  end
end
return 'OK'
"#;

    /// A client of the probe's own on the captured database, as the app's would be.
    struct Shop {
        conn: Mutex<Connection>,
        script: Script,
    }

    impl Shop {
        /// The probe, on a database without the suite's keys. What a session of an
        /// earlier run that died left is put back first (its first checkpoint, its
        /// spare freed), so the next session does not swap it back in.
        fn fresh() -> Shop {
            let config = BackendConfig::new("redis")
                .with_url(URL)
                .with_option("isolation", "capture");
            RedisCaptureStateManager::from_config(&config)
                .unwrap()
                .backend()
                .uninstall_capture()
                .unwrap();
            let mut conn = super::observer(URL);
            let keys: Vec<String> = redis::cmd("KEYS").arg("vq_cc:*").query(&mut conn).unwrap();
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).exec(&mut conn).unwrap();
            }
            Shop {
                conn: Mutex::new(conn),
                script: Script::new(SHOP),
            }
        }
    }

    /// The script's words for `write`, the writes of a committed transaction in order
    /// (those of one rolled back: none).
    fn words(write: &Write, out: &mut Vec<String>) {
        out.push(match write {
            Write::InsertParent { id } => format!("ip {id}"),
            Write::RenameParent { id } => format!("rn {id}"),
            Write::RekeyParent { id, to } => format!("rk {id} {to}"),
            Write::DeleteParent { id } => format!("dp {id}"),
            Write::Insert { child, parent, v } => format!("ins {} {parent} {v}", child.table()),
            Write::Update { child, parent } => format!("up {} {parent}", child.table()),
            Write::RekeyChildren { child, parent } => format!("rc {} {parent}", child.table()),
            Write::DeleteOne { child, parent, v } => {
                format!("d1 {} {parent} {v}", child.table())
            }
            Write::DeleteAll { child, v } => format!("da {} {v}", child.table()),
            Write::Transaction { writes, commit } => {
                if *commit {
                    for w in writes {
                        words(w, out);
                    }
                }
                return;
            }
        });
    }

    impl capture::CaptureProbe for Shop {
        fn write(&self, write: &Write) -> Result<()> {
            let mut args = vec![match write {
                Write::Transaction { .. } => "tx".to_owned(),
                _ => "one".to_owned(),
            }];
            words(write, &mut args);
            if args.len() == 1 {
                return Ok(()); // a transaction the app rolled back
            }
            let mut conn = self.conn.lock().unwrap();
            let mut invocation = self.script.prepare_invoke();
            for a in &args {
                invocation.arg(a);
            }
            invocation
                .invoke::<()>(&mut *conn)
                .map_err(|e| Error::backend("redis", "probe write", e))
        }

        fn dump(&self) -> Result<Vec<String>> {
            let mut conn = self.conn.lock().unwrap();
            let e = |e| Error::backend("redis", "probe dump", e);
            let mut keys: Vec<String> = redis::cmd("KEYS")
                .arg("vq_cc:*")
                .query(&mut *conn)
                .map_err(e)?;
            keys.sort();
            let mut out = Vec::new();
            for key in keys {
                let kind: String = redis::cmd("TYPE").arg(&key).query(&mut *conn).map_err(e)?;
                let contents = match kind.as_str() {
                    "hash" => {
                        let m: BTreeMap<String, String> = redis::cmd("HGETALL")
                            .arg(&key)
                            .query(&mut *conn)
                            .map_err(e)?;
                        format!("{m:?}")
                    }
                    "list" => {
                        let l: Vec<String> = redis::cmd("LRANGE")
                            .arg(&key)
                            .arg(0)
                            .arg(-1)
                            .query(&mut *conn)
                            .map_err(e)?;
                        format!("{l:?}")
                    }
                    "string" => {
                        let s: String = redis::cmd("GET").arg(&key).query(&mut *conn).map_err(e)?;
                        format!("{s:?}")
                    }
                    other => format!("(a key of type {other})"),
                };
                let pttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut *conn).map_err(e)?;
                // Coarse, so the milliseconds that pass between two dumps do not count;
                // a lost or changed expiry does.
                let expiry = if pttl >= 0 {
                    format!(" expires in ~{}0 min", (pttl + 599_999) / 600_000)
                } else {
                    " persistent".to_owned()
                };
                out.push(format!("{key}: {kind} {contents}{expiry}"));
            }
            Ok(out)
        }
    }

    /// Every named check, then `cases` random programs after the suite's seed data
    /// (the proptest seed fixed unless `VENOMQA_PROPTEST_SEED` says otherwise).
    #[test]
    fn redis_capture_is_exact() {
        let shop = Shop::fresh();
        super::capture_exact::check_capture(ENTRY, &shop, 256);
    }
}
