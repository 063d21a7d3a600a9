#![cfg(feature = "redis")]
//! The Redis backend against the real server (`VENOMQA_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Every assertion reads Redis back through an independent
//! connection (`observer`), never through the manager under test.
//!
//! Tests that need specific databases, fixed key names or server settings start a
//! `redis-server` of their own on a free port (`PrivateServer`, killed at the end), so they
//! never race other test processes; `redis-server` must be on the PATH.
//!
//! Keys are named `vq_redis_*`. Special configurations (prefix isolation, a bigger pool)
//! live in a `venomqa.yaml` this file writes to a temporary directory.
//!
//! `child_process_helper` is not a test of its own: the cross-process tests re-run this
//! binary with `VQ_REDIS_CHILD` set and `--exact child_process_helper`, so that it holds a
//! lease in another process. Without the variable it returns at once.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::panic;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use venomqa::redis::redis::{self, Connection, Value};
use venomqa::redis::{Isolation, Redis, RedisSession, RedisStateManager, LEASE_KEY_PREFIX};
use venomqa::{venom_test, Backend, Error, Manager, StateManager};

fn url() -> String {
    std::env::var("VENOMQA_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// An independent connection on database `db` (not the manager's).
fn observer(db: i64) -> Connection {
    let client = redis::Client::open(url()).expect("a valid Redis URL");
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| {
            panic!(
                "the Redis server at {} must be running for these tests: {e}",
                url()
            )
        });
    redis::cmd("SELECT").arg(db).exec(&mut conn).unwrap();
    conn
}

/// The backend for `url`, default options.
fn redis(url: &str) -> Redis {
    Redis::from_url(url).expect("a valid Redis URL")
}

fn connected(backend: Redis) -> RedisStateManager {
    let mut m = Manager::new(backend);
    m.connect().expect("connect to Redis");
    m
}

fn manager() -> RedisStateManager {
    connected(redis(&url()))
}

/// A `venomqa.yaml` with the special entries, in a directory of this process.
fn config_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("venomqa-redis-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("venomqa.yaml"),
            "backends:\n\
             \x20 vq_redis_prefix:\n\
             \x20   backend: redis\n\
             \x20   pool_size: 32\n\
             \x20   key_prefix: \"vq_redis_par:\"\n\
             \x20   isolation: prefix\n\
             \x20 vq_redis_down:\n\
             \x20   backend: redis\n\
             \x20   url: \"redis://:s3cret-pw@127.0.0.1:1\"\n",
        )
        .unwrap();
        dir
    })
}

fn open_entry(entry: &str, test: &str) -> venomqa::Result<RedisSession> {
    RedisSession::builder()
        .config_dir(config_dir())
        .entry(entry)
        .name(test)
        .open()
}

fn set(conn: &mut Connection, args: &[&[u8]]) {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.exec(conn).unwrap();
}

fn dump(conn: &mut Connection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("DUMP").arg(key).query(conn).unwrap()
}

fn pttl(conn: &mut Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

fn dbsize(conn: &mut Connection) -> i64 {
    redis::cmd("DBSIZE").query(conn).unwrap()
}

fn exists(conn: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query(conn).unwrap()
}

/// The full contents of a key, in a canonical form (sets and hashes sorted), with its type.
fn contents(conn: &mut Connection, key: &str) -> String {
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).unwrap();
    let value: Value = match kind.as_str() {
        "string" => redis::cmd("GET").arg(key).query(conn).unwrap(),
        "list" => redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(conn)
            .unwrap(),
        "hash" => {
            let mut m: BTreeMap<Vec<u8>, Vec<u8>> =
                redis::cmd("HGETALL").arg(key).query(conn).unwrap();
            return format!("hash {:?}", std::mem::take(&mut m));
        }
        "set" => {
            let mut v: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(key).query(conn).unwrap();
            v.sort();
            return format!("set {v:?}");
        }
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(conn)
            .unwrap(),
        "stream" => {
            let entries: Value = redis::cmd("XRANGE")
                .arg(key)
                .arg("-")
                .arg("+")
                .query(conn)
                .unwrap();
            let groups: Value = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(key)
                .query(conn)
                .unwrap();
            let info: Value = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(key)
                .query(conn)
                .unwrap();
            let pending: Value = redis::cmd("XPENDING")
                .arg(key)
                .arg("g1")
                .query(conn)
                .unwrap();
            return format!("stream {entries:?} {groups:?} {info:?} {pending:?}");
        }
        "none" => Value::Nil,
        other => panic!("unexpected type {other}"),
    };
    format!("{kind} {value:?}")
}

/// Writes one key of every type (and some TTLs) into `conn`'s database, under `p`.
fn write_every_type(conn: &mut Connection, p: &str) -> Vec<String> {
    let k = |n: &str| format!("{p}vq_redis_{n}");
    let binary: &[u8] = b"bin\x00\xff\xfe\r\n end";
    set(conn, &[b"SET", k("string").as_bytes(), binary]);
    set(conn, &[b"SET", k("counter").as_bytes(), b"41"]);
    set(conn, &[b"INCR", k("counter").as_bytes()]);
    set(
        conn,
        &[
            b"SET",
            k("ttl_string").as_bytes(),
            b"expires",
            b"PX",
            b"100000",
        ],
    );
    set(
        conn,
        &[
            b"HSET",
            k("hash").as_bytes(),
            b"name",
            b"ann",
            b"age",
            b"41",
            b"bin",
            binary,
        ],
    );
    for i in 0..300 {
        // A big hash: hashtable encoding, not listpack.
        set(
            conn,
            &[
                b"HSET",
                k("big_hash").as_bytes(),
                format!("f{i}").as_bytes(),
                format!("v{i}").as_bytes(),
            ],
        );
    }
    set(conn, &[b"PEXPIRE", k("hash").as_bytes(), b"200000"]);
    set(
        conn,
        &[b"RPUSH", k("list").as_bytes(), b"a", b"b", binary, b"a"],
    );
    set(conn, &[b"SADD", k("set").as_bytes(), b"x", b"y", binary]);
    set(conn, &[b"SADD", k("intset").as_bytes(), b"1", b"2", b"300"]);
    set(
        conn,
        &[
            b"ZADD",
            k("zset").as_bytes(),
            b"1.5",
            b"one",
            b"-2",
            b"two",
            b"3e10",
            binary,
        ],
    );
    set(
        conn,
        &[b"XADD", k("stream").as_bytes(), b"1-1", b"f", b"v1"],
    );
    set(
        conn,
        &[
            b"XADD",
            k("stream").as_bytes(),
            b"2-1",
            b"f",
            b"v2",
            b"g",
            binary,
        ],
    );
    set(
        conn,
        &[b"XGROUP", b"CREATE", k("stream").as_bytes(), b"g1", b"0"],
    );
    let _: Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("g1")
        .arg("c1")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(k("stream"))
        .arg(">")
        .query(conn)
        .unwrap();
    set(conn, &[b"PEXPIRE", k("stream").as_bytes(), b"300000"]);
    [
        "string",
        "counter",
        "ttl_string",
        "hash",
        "big_hash",
        "list",
        "set",
        "intset",
        "zset",
        "stream",
    ]
    .iter()
    .map(|n| k(n))
    .collect()
}

/// Changes, deletes and adds keys of every type.
fn scribble(conn: &mut Connection, p: &str) {
    let k = |n: &str| format!("{p}vq_redis_{n}");
    set(conn, &[b"SET", k("string").as_bytes(), b"changed"]);
    set(conn, &[b"DEL", k("counter").as_bytes()]);
    set(conn, &[b"PERSIST", k("ttl_string").as_bytes()]);
    set(conn, &[b"HSET", k("hash").as_bytes(), b"name", b"bob"]);
    set(conn, &[b"PEXPIRE", k("hash").as_bytes(), b"5"]);
    set(conn, &[b"HDEL", k("big_hash").as_bytes(), b"f7"]);
    set(conn, &[b"LPOP", k("list").as_bytes()]);
    set(conn, &[b"SADD", k("set").as_bytes(), b"z"]);
    set(conn, &[b"DEL", k("intset").as_bytes()]);
    set(conn, &[b"SET", k("intset").as_bytes(), b"now a string"]);
    set(conn, &[b"ZINCRBY", k("zset").as_bytes(), b"10", b"one"]);
    set(
        conn,
        &[b"XADD", k("stream").as_bytes(), b"3-1", b"f", b"v3"],
    );
    set(conn, &[b"XACK", k("stream").as_bytes(), b"g1", b"1-1"]);
    set(
        conn,
        &[b"XGROUP", b"CREATE", k("stream").as_bytes(), b"g2", b"$"],
    );
    set(conn, &[b"SET", k("new_string").as_bytes(), b"new"]);
    set(conn, &[b"HSET", k("new_hash").as_bytes(), b"a", b"b"]);
    set(
        conn,
        &[b"SET", k("new_ttl").as_bytes(), b"x", b"PX", b"100000"],
    );
}

struct Saved {
    contents: String,
    dump: Vec<u8>,
    pttl: i64,
}

fn save(conn: &mut Connection, keys: &[String]) -> BTreeMap<String, Saved> {
    keys.iter()
        .map(|k| {
            (
                k.clone(),
                Saved {
                    contents: contents(conn, k),
                    dump: dump(conn, k).expect("key exists"),
                    pttl: pttl(conn, k),
                },
            )
        })
        .collect()
}

/// Every key equal to what was saved: contents, DUMP payload (where the encoding keeps
/// the order), and TTL within `(saved - 30 s, saved]`.
fn assert_same(conn: &mut Connection, saved: &BTreeMap<String, Saved>) {
    for (k, s) in saved {
        assert_eq!(contents(conn, k), s.contents, "contents of {k}");
        if !k.ends_with("vq_redis_set") && !k.ends_with("big_hash") {
            // Hashtable-encoded sets and hashes may DUMP their members in another order.
            assert_eq!(dump(conn, k).as_ref(), Some(&s.dump), "DUMP payload of {k}");
        }
        let now = pttl(conn, k);
        if s.pttl < 0 {
            assert_eq!(now, s.pttl, "no TTL on {k}");
        } else {
            assert!(
                now <= s.pttl && now > s.pttl - 30_000,
                "PTTL of {k}: {now}, saved {}",
                s.pttl
            );
        }
    }
}

#[test]
fn every_type_and_ttl_survive_checkpoint_and_rollback() {
    let mut m = manager();
    let db = m.database();
    let mut obs = observer(db);
    assert_eq!(dbsize(&mut obs), 0, "a leased database starts empty");
    let keys = write_every_type(m.conn(), "");
    let saved = save(&mut obs, &keys);
    let size = dbsize(&mut obs);

    m.checkpoint("start").unwrap();
    scribble(m.conn(), "");
    assert_ne!(
        contents(&mut obs, "vq_redis_string"),
        saved["vq_redis_string"].contents
    );
    m.rollback("start").unwrap();

    assert_same(&mut obs, &saved);
    assert_eq!(
        dbsize(&mut obs),
        size,
        "keys created after the checkpoint are gone"
    );
    for k in [
        "vq_redis_new_string",
        "vq_redis_new_hash",
        "vq_redis_new_ttl",
    ] {
        assert!(!exists(&mut obs, k), "{k} was created after the checkpoint");
    }

    // Once more, from the restored state: the checkpoint is still there.
    scribble(m.conn(), "");
    m.discard("start").unwrap();
    assert_same(&mut obs, &saved);
    assert!(m.checkpoints().is_empty());
    m.disconnect().unwrap();
}

#[test]
fn every_type_survives_in_prefix_isolation() {
    let mut m = connected(
        redis(&url())
            .isolation(Isolation::Prefix)
            .key_prefix("vq_redis_types:"),
    );
    let p = m.prefix().to_owned();
    assert!(
        p.starts_with("vq_redis_types:{vq") && p.ends_with("}:"),
        "{p}"
    );
    let mut obs = observer(m.database());
    // A key outside the prefix is not covered.
    let outside = format!("vq_redis_outside_{}", std::process::id());
    set(&mut obs, &[b"SET", outside.as_bytes(), b"kept"]);
    let keys = write_every_type(m.conn(), &p);
    let saved = save(&mut obs, &keys);

    m.checkpoint("start").unwrap();
    scribble(m.conn(), &p);
    set(&mut obs, &[b"SET", outside.as_bytes(), b"changed outside"]);
    m.rollback("start").unwrap();

    assert_same(&mut obs, &saved);
    assert!(!exists(&mut obs, &format!("{p}vq_redis_new_string")));
    let out: String = redis::cmd("GET").arg(&outside).query(&mut obs).unwrap();
    assert_eq!(
        out, "changed outside",
        "keys outside the prefix are not rolled back"
    );

    m.disconnect().unwrap();
    let left: (u64, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg(format!("{}*", p.replace('{', "\\{").replace('}', "\\}")))
        .arg("COUNT")
        .arg(100_000)
        .query(&mut obs)
        .unwrap();
    assert!(
        left.1.is_empty(),
        "disconnect empties the prefix: {:?}",
        left.1
    );
    set(&mut obs, &[b"DEL", outside.as_bytes()]);
}

#[test]
fn ttl_that_elapses_during_the_test_stays_expired() {
    let mut m = manager();
    let mut obs = observer(m.database());
    set(m.conn(), &[b"SET", b"vq_redis_short", b"x", b"PX", b"300"]);
    set(
        m.conn(),
        &[b"SET", b"vq_redis_long", b"x", b"PX", b"100000"],
    );
    let long = pttl(&mut obs, "vq_redis_long");
    m.checkpoint("start").unwrap();
    std::thread::sleep(Duration::from_millis(700));
    m.rollback("start").unwrap();
    assert!(
        !exists(&mut obs, "vq_redis_short"),
        "its expiry time passed during the test"
    );
    let now = pttl(&mut obs, "vq_redis_long");
    assert!(
        now <= long - 600 && now > long - 30_000,
        "the absolute expiry time is kept: {now} vs {long}"
    );
}

#[test]
fn ten_thousand_keys_round_trip() {
    let mut m = manager();
    let mut obs = observer(m.database());
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        match i % 5 {
            0 => pipe
                .cmd("SET")
                .arg(format!("vq_redis_k{i}"))
                .arg(format!("v{i}")),
            1 => pipe
                .cmd("HSET")
                .arg(format!("vq_redis_k{i}"))
                .arg("f")
                .arg(i),
            2 => pipe
                .cmd("RPUSH")
                .arg(format!("vq_redis_k{i}"))
                .arg(i)
                .arg("x"),
            3 => pipe.cmd("SADD").arg(format!("vq_redis_k{i}")).arg(i),
            _ => pipe
                .cmd("SET")
                .arg(format!("vq_redis_k{i}"))
                .arg(i)
                .arg("PX")
                .arg(1_000_000 + i),
        }
        .ignore();
    }
    pipe.exec(m.conn()).unwrap();
    let before: Vec<Option<Vec<u8>>> = {
        let mut p = redis::pipe();
        for i in 0..10_000 {
            p.cmd("DUMP").arg(format!("vq_redis_k{i}"));
        }
        p.query(&mut obs).unwrap()
    };

    m.checkpoint("start").unwrap();
    redis::cmd("FLUSHDB").exec(m.conn()).unwrap();
    set(m.conn(), &[b"SET", b"vq_redis_k1", b"different type now"]);
    set(m.conn(), &[b"SET", b"vq_redis_after", b"x"]);
    m.rollback("start").unwrap();

    assert_eq!(dbsize(&mut obs), 10_000);
    let after: Vec<Option<Vec<u8>>> = {
        let mut p = redis::pipe();
        for i in 0..10_000 {
            p.cmd("DUMP").arg(format!("vq_redis_k{i}"));
        }
        p.query(&mut obs).unwrap()
    };
    assert!(after.iter().all(Option::is_some));
    assert_eq!(after, before, "every key's DUMP payload is back");
    let ttls: Vec<i64> = {
        let mut p = redis::pipe();
        for i in (4..10_000).step_by(5) {
            p.cmd("PTTL").arg(format!("vq_redis_k{i}"));
        }
        p.query(&mut obs).unwrap()
    };
    for (n, t) in ttls.iter().enumerate() {
        let set_to = 1_000_000 + 4 + 5 * n as i64;
        assert!(
            *t <= set_to && *t > set_to - 60_000,
            "PTTL {t} of a key set to {set_to}"
        );
    }
}

#[test]
fn nested_checkpoints() {
    for prefix in ["", "vq_redis_app:"] {
        let mut m = connected(redis(&url()).key_prefix(prefix));
        let mut obs = observer(m.database());
        let k = |n: &str| format!("{prefix}vq_redis_{n}");
        let get = |obs: &mut Connection, n: &str| -> Option<String> {
            redis::cmd("GET").arg(k(n)).query(obs).unwrap()
        };
        set(m.conn(), &[b"SET", k("a").as_bytes(), b"1"]);
        m.checkpoint("one").unwrap();
        set(m.conn(), &[b"SET", k("a").as_bytes(), b"2"]);
        set(m.conn(), &[b"SET", k("b").as_bytes(), b"2"]);
        m.checkpoint("two").unwrap();
        set(m.conn(), &[b"SET", k("a").as_bytes(), b"3"]);
        set(m.conn(), &[b"DEL", k("b").as_bytes()]);
        m.checkpoint("three").unwrap();
        set(m.conn(), &[b"SET", k("c").as_bytes(), b"3"]);

        m.rollback("two").unwrap();
        assert_eq!(
            m.checkpoints(),
            ["one", "two"],
            "rollback keeps its target, drops later ones"
        );
        assert_eq!(get(&mut obs, "a").as_deref(), Some("2"));
        assert_eq!(get(&mut obs, "b").as_deref(), Some("2"));
        assert_eq!(get(&mut obs, "c"), None);
        assert!(matches!(
            m.rollback("three"),
            Err(Error::UnknownCheckpoint { .. })
        ));

        set(m.conn(), &[b"SET", k("a").as_bytes(), b"4"]);
        m.release("two").unwrap();
        assert_eq!(m.checkpoints(), ["one"]);
        assert_eq!(
            get(&mut obs, "a").as_deref(),
            Some("4"),
            "release keeps the changes"
        );

        m.checkpoint("four").unwrap();
        set(m.conn(), &[b"SET", k("a").as_bytes(), b"5"]);
        m.discard("four").unwrap();
        assert_eq!(get(&mut obs, "a").as_deref(), Some("4"));

        m.rollback("one").unwrap();
        assert_eq!(get(&mut obs, "a").as_deref(), Some("1"));
        assert_eq!(get(&mut obs, "b"), None);
        m.release("one").unwrap();
        assert!(m.checkpoints().is_empty());
        m.disconnect().unwrap();
    }
}

#[test]
fn key_prefix_limits_rollback_and_reset() {
    let mut m = connected(redis(&url()).key_prefix("vq_redis_app:"));
    let mut obs = observer(m.database());
    set(m.conn(), &[b"SET", b"vq_redis_app:in", b"1"]);
    set(m.conn(), &[b"SET", b"vq_redis_other", b"1"]);
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", b"vq_redis_app:in", b"2"]);
    set(m.conn(), &[b"SET", b"vq_redis_app:new", b"2"]);
    set(m.conn(), &[b"SET", b"vq_redis_other", b"2"]);
    m.rollback("start").unwrap();
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["vq_redis_app:in", "vq_redis_app:new", "vq_redis_other"])
        .query(&mut obs)
        .unwrap();
    assert_eq!(v, [Some("1".into()), None, Some("2".into())]);

    m.reset().unwrap();
    assert!(m.checkpoints().is_empty());
    assert!(
        !exists(&mut obs, "vq_redis_app:in"),
        "reset deletes the prefix's keys"
    );
    assert!(exists(&mut obs, "vq_redis_other"), "and nothing else");

    let mut whole = manager();
    let mut obs2 = observer(whole.database());
    set(whole.conn(), &[b"SET", b"vq_redis_x", b"1"]);
    whole.checkpoint("start").unwrap();
    whole.reset().unwrap();
    assert_eq!(dbsize(&mut obs2), 0);
    assert!(whole.checkpoints().is_empty());
}

#[test]
fn rollback_goes_back_to_the_leased_database_after_a_select() {
    let mut m = manager();
    let db = m.database();
    let mut obs = observer(db);
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", b"vq_redis_before_select", b"x"]);
    // The code under test switches databases (to the home database, only reading).
    redis::cmd("SELECT").arg(0).exec(m.conn()).unwrap();
    m.rollback("start").unwrap();
    assert!(!exists(&mut obs, "vq_redis_before_select"));
    set(m.conn(), &[b"SET", b"vq_redis_after_rollback", b"x"]);
    assert!(
        exists(&mut obs, "vq_redis_after_rollback"),
        "the connection is back on database {db}"
    );
}

#[test]
fn rollback_survives_a_killed_connection() {
    let mut m = manager();
    let mut obs = observer(m.database());
    set(m.conn(), &[b"SET", b"vq_redis_kept", b"1"]);
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", b"vq_redis_kept", b"2"]);
    let id: i64 = redis::cmd("CLIENT").arg("ID").query(m.conn()).unwrap();
    redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .exec(&mut obs)
        .unwrap();
    m.rollback("start")
        .expect("reconnects: the snapshot is in memory and the data in Redis");
    let v: String = redis::cmd("GET")
        .arg("vq_redis_kept")
        .query(&mut obs)
        .unwrap();
    assert_eq!(v, "1");
    m.release("start").unwrap();
    assert!(m.health_check(), "the new connection works");
}

// ---- sessions and #[venom_test] ----

#[venom_test(backend = "redis")]
fn attribute_test_gets_its_own_database(db: &mut RedisSession) {
    assert_ne!(db.database(), 0, "never the home database");
    set(db.conn(), &[b"SET", b"vq_redis_attr", b"x"]);
    db.checkpoint("block", |db| {
        set(db.conn(), &[b"DEL", b"vq_redis_attr"]);
        assert!(!exists(db.conn(), "vq_redis_attr"));
    })
    .unwrap();
    assert!(
        exists(db.conn(), "vq_redis_attr"),
        "the block's changes are undone"
    );
}

/// Runs `body` as `#[venom_test(backend = "redis")]` runs test `name`.
fn run_test<R: venomqa::TestOutcome>(name: &str, body: impl FnOnce(&mut RedisSession) -> R) -> R {
    RedisSession::builder()
        .backend("redis")
        .name(name)
        .run(body)
}

#[test]
fn session_is_rolled_back_after_pass_err_and_panic() {
    let mut db = None;
    run_test("pass", |s: &mut RedisSession| {
        db = Some(s.database());
        set(s.conn(), &[b"SET", b"vq_redis_pass", b"x"]);
    });
    assert!(!exists(&mut observer(db.unwrap()), "vq_redis_pass"));

    let result: Result<(), String> = run_test("err", |s: &mut RedisSession| {
        db = Some(s.database());
        set(s.conn(), &[b"HSET", b"vq_redis_err", b"f", b"v"]);
        Err("failed".into())
    });
    assert_eq!(result, Err("failed".into()));
    assert!(!exists(&mut observer(db.unwrap()), "vq_redis_err"));

    let panicked = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        run_test::<()>("panic", |s: &mut RedisSession| {
            db = Some(s.database());
            set(s.conn(), &[b"RPUSH", b"vq_redis_panic", b"v"]);
            panic!("boom");
        })
    }));
    assert!(panicked.is_err());
    assert!(!exists(&mut observer(db.unwrap()), "vq_redis_panic"));
}

/// 32 tests at once on the default pool: they queue for its connections (at most
/// `pool_size` <= 15 sessions at once, one database each, Redis having 16 with database 0
/// for the leases), every live session in a database no other live session uses, and each
/// sees only its own value under the same key name.
#[test]
fn thirty_two_sessions_queue_for_the_pool_each_alone_in_its_database() {
    let live: Arc<std::sync::Mutex<HashSet<i64>>> = Arc::default();
    let most = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let (live, most) = (live.clone(), most.clone());
            std::thread::spawn(move || {
                let mut s = RedisSession::start("redis").unwrap();
                let db = s.database();
                {
                    let mut live = live.lock().unwrap();
                    assert!(
                        live.insert(db),
                        "database {db} is used by two live sessions"
                    );
                    most.fetch_max(live.len(), Ordering::SeqCst);
                }
                let me = format!("thread {i}");
                set(s.conn(), &[b"SET", b"vq_redis_same", me.as_bytes()]);
                std::thread::sleep(Duration::from_millis(20));
                let mine: String = redis::cmd("GET")
                    .arg("vq_redis_same")
                    .query(s.conn())
                    .unwrap();
                assert_eq!(mine, me);
                let seen: String = redis::cmd("GET")
                    .arg("vq_redis_same")
                    .query(&mut observer(db))
                    .unwrap();
                assert_eq!(
                    seen, me,
                    "the observer sees this session's value in its database"
                );
                live.lock().unwrap().remove(&db);
                s.finish().unwrap();
                db
            })
        })
        .collect();
    let dbs: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(dbs.len(), 32, "all 32 tests ran");
    let most = most.load(Ordering::SeqCst);
    assert!(
        (1..=15).contains(&most),
        "at most 15 sessions at once (one per leasable database): {most}"
    );
    assert!(!dbs.contains(&0), "never database 0");
    for db in dbs.into_iter().collect::<HashSet<_>>() {
        assert!(!exists(&mut observer(db), "vq_redis_same"), "rolled back");
    }
}

/// Holds `n` sessions of `entry` at the same time (as far as the server allows within
/// 30 s), each writing the same key name, and returns (database, prefix) of each.
fn hold_at_once(dir: PathBuf, url: String, entry: &'static str, n: usize) -> Vec<(i64, String)> {
    let arrived = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (arrived, done) = (arrived.clone(), done.clone());
            let (dir, url) = (dir.clone(), url.clone());
            std::thread::spawn(move || {
                let mut s = RedisSession::builder()
                    .config_dir(&dir)
                    .entry(entry)
                    .name("hold_at_once")
                    .open()
                    .unwrap();
                let observer = |db: i64| {
                    let mut c = redis::Client::open(url.as_str())
                        .unwrap()
                        .get_connection()
                        .unwrap();
                    redis::cmd("SELECT").arg(db).exec(&mut c).unwrap();
                    c
                };
                let me = format!("session {i}");
                let key = s.key("vq_redis_same");
                set(s.conn(), &[b"SET", key.as_bytes(), me.as_bytes()]);
                arrived.fetch_add(1, Ordering::SeqCst);
                let deadline = Instant::now() + Duration::from_secs(30);
                while arrived.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                // Everyone has written: each still sees its own value.
                let mine: String = redis::cmd("GET").arg(&key).query(s.conn()).unwrap();
                assert_eq!(mine, me);
                let seen: String = redis::cmd("GET")
                    .arg(&key)
                    .query(&mut observer(s.database()))
                    .unwrap();
                assert_eq!(seen, me);
                let at = (s.database(), s.prefix().to_owned());
                done.wait();
                s.finish().unwrap();
                at
            })
        })
        .collect();
    let places: Vec<(i64, String)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(arrived.load(Ordering::SeqCst), n);
    places
}

#[test]
fn thirty_two_parallel_sessions_in_prefix_isolation() {
    let places = hold_at_once(config_dir().clone(), url(), "vq_redis_prefix", 32);
    let prefixes: HashSet<&String> = places.iter().map(|(_, p)| p).collect();
    assert_eq!(
        prefixes.len(),
        32,
        "32 sessions held at once, 32 prefixes: {places:?}"
    );
    let mut obs = observer(places[0].0);
    for p in prefixes {
        assert!(p.starts_with("vq_redis_par:{vq"), "{p}");
        assert!(
            !exists(&mut obs, &format!("{p}vq_redis_same")),
            "rolled back"
        );
    }
}

#[test]
fn eight_sessions_held_at_once_have_eight_databases() {
    // A server of this test alone: 8 of its 15 databases are free for sure.
    let server = PrivateServer::start(&[]);
    let dir = std::env::temp_dir().join(format!("venomqa-redis-db8-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!(
            "backends:\n  vq_redis_db8:\n    backend: redis\n    pool_size: 8\n    url: \"{}\"\n",
            server.url()
        ),
    )
    .unwrap();
    let places = hold_at_once(dir, server.url(), "vq_redis_db8", 8);
    let dbs: HashSet<i64> = places.iter().map(|(d, _)| *d).collect();
    assert_eq!(dbs.len(), 8, "{places:?}");
    assert!(!dbs.contains(&0));
    for db in dbs {
        assert_eq!(
            dbsize(&mut server.observer(db)),
            0,
            "rolled back and emptied"
        );
    }
}

// ---- leases across processes ----

/// Run by the cross-process tests in a child process (see the file's docs).
#[test]
fn child_process_helper() {
    let Ok(mode) = std::env::var("VQ_REDIS_CHILD") else {
        return;
    };
    let mut m = redis(&url());
    if mode == "crash" {
        m = m.databases(15, 15).lease_ttl(Duration::from_millis(3000));
    }
    let mut m = connected(m);
    set(m.conn(), &[b"SET", b"vq_redis_child_leftover", b"x"]);
    println!(
        "VQ_DB={} VQ_OWNER={}",
        m.database(),
        m.lease_owner().unwrap()
    );
    // Hold the lease until the parent closes stdin (or kills this process).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    m.disconnect().unwrap();
}

fn spawn_child(mode: &str, url: &str) -> (Child, i64, String) {
    let mut child = Command::new(crate::support::this_binary())
        .args([
            "--exact",
            "redis::child_process_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VQ_REDIS_CHILD", mode)
        .env("VENOMQA_REDIS_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest prints "test child_process_helper ... " before the child's own output.
    let line = lines
        .find_map(|l| {
            l.ok()
                .and_then(|l| l.find("VQ_DB=").map(|at| l[at..].to_owned()))
        })
        .expect("the child reports its database");
    // Keep reading, so the child never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let (db, owner) = line.split_once(' ').unwrap();
    let db = db.trim_start_matches("VQ_DB=").parse().unwrap();
    (child, db, owner.trim_start_matches("VQ_OWNER=").to_owned())
}

#[test]
fn two_processes_never_share_a_database() {
    let mut mine = manager();
    let (mut a, db_a, owner_a) = spawn_child("hold", &url());
    let (mut b, db_b, owner_b) = spawn_child("hold", &url());
    // All three hold their leases now.
    let dbs = [mine.database(), db_a, db_b];
    assert_eq!(dbs.iter().collect::<HashSet<_>>().len(), 3, "{dbs:?}");
    let mut home = observer(0);
    for (db, owner) in [
        (db_a, &owner_a),
        (db_b, &owner_b),
        (mine.database(), &mine.lease_owner().unwrap().to_owned()),
    ] {
        let held: String = redis::cmd("GET")
            .arg(format!("{LEASE_KEY_PREFIX}db:{db}"))
            .query(&mut home)
            .unwrap();
        assert_eq!(&held, owner);
    }
    assert!(exists(&mut observer(db_a), "vq_redis_child_leftover"));
    assert!(!exists(mine.conn(), "vq_redis_child_leftover"));
    for child in [&mut a, &mut b] {
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
    }
    for (db, owner) in [(db_a, &owner_a), (db_b, &owner_b)] {
        // The children gave their leases back, and emptied their databases.
        let held: Option<String> = redis::cmd("GET")
            .arg(format!("{LEASE_KEY_PREFIX}db:{db}"))
            .query(&mut home)
            .unwrap();
        assert_ne!(held.as_ref(), Some(owner));
    }
    mine.disconnect().unwrap();
}

#[test]
fn lease_of_a_killed_process_expires_and_is_reused() {
    // A server of this test alone: nobody else leases database 15 there.
    let server = PrivateServer::start(&[]);
    let (mut child, db, owner) = spawn_child("crash", &server.url());
    assert_eq!(db, 15);
    child.kill().unwrap();
    child.wait().unwrap();
    let mut home = server.observer(0);
    let lease_key = format!("{LEASE_KEY_PREFIX}db:15");
    let held: Option<String> = redis::cmd("GET").arg(&lease_key).query(&mut home).unwrap();
    assert_eq!(
        held.as_deref(),
        Some(owner.as_str()),
        "the dead process still holds the lease"
    );

    // While the dead lease lives, nobody gets the database, and the error says why.
    let err = redis(&server.url())
        .databases(15, 15)
        .lease_wait(Duration::ZERO)
        .connect()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("15..=15") && text.contains("leased") && text.contains("lease_wait_ms"),
        "{text}"
    );

    // It expires (3 s), and the database is leased again, emptied.
    let mut m = connected(
        redis(&server.url())
            .databases(15, 15)
            .lease_wait(Duration::from_secs(60)),
    );
    assert_eq!(m.database(), 15);
    assert_ne!(m.lease_owner(), Some(owner.as_str()));
    let held: String = redis::cmd("GET").arg(&lease_key).query(&mut home).unwrap();
    assert_eq!(Some(held.as_str()), m.lease_owner());
    assert!(
        !exists(&mut server.observer(15), "vq_redis_child_leftover"),
        "the dead holder's keys are gone"
    );
    m.disconnect().unwrap();
}

#[test]
fn prefix_lease_of_a_dead_owner_expires_and_is_reused() {
    // A server of this test alone: its fixed prefix slot is nobody else's.
    let server = PrivateServer::start(&[]);
    let mut home = server.observer(0);
    let lease_key = format!("{LEASE_KEY_PREFIX}prefix:vq_redis_dead:{{vq0}}");
    let leftover = "vq_redis_dead:{vq0}:left";
    set(
        &mut home,
        &[b"SET", lease_key.as_bytes(), b"dead-owner", b"PX", b"3000"],
    );
    set(&mut home, &[b"SET", leftover.as_bytes(), b"x"]);
    let fresh = || {
        redis(&server.url())
            .isolation(Isolation::Prefix)
            .key_prefix("vq_redis_dead:")
            .prefix_slots(1)
    };
    let err = fresh().lease_wait(Duration::ZERO).connect().unwrap_err();
    assert!(err.to_string().contains("all 1 prefix slots"), "{err}");
    let m = connected(fresh().lease_wait(Duration::from_secs(60)));
    assert_eq!(m.prefix(), "vq_redis_dead:{vq0}:");
    assert!(
        !exists(&mut home, leftover),
        "the dead owner's keys are gone"
    );
    let held: String = redis::cmd("GET").arg(&lease_key).query(&mut home).unwrap();
    assert_eq!(Some(held.as_str()), m.lease_owner());
    drop(m); // gives the lease back
    assert!(!exists(&mut home, &lease_key));
}

#[test]
fn all_leased_waits_a_bounded_time_then_fails_clearly() {
    let server = PrivateServer::start(&[]);
    let mut holder = connected(redis(&server.url()).databases(14, 14));
    let err = redis(&server.url())
        .databases(14, 14)
        .lease_wait(Duration::from_millis(300))
        .connect()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("all databases 14..=14") && text.contains("none came free"),
        "{text}"
    );
    assert!(
        text.contains("isolation: prefix"),
        "names a way out: {text}"
    );
    holder.disconnect().unwrap();
    let m = connected(redis(&server.url()).databases(14, 14));
    assert_eq!(m.database(), 14, "the lease was given back on disconnect");
}

#[test]
fn lease_is_renewed_under_a_long_test_and_loss_is_reported() {
    // A TTL long enough for a loaded machine (renewed every second), and a wait of more
    // than two TTLs.
    let mut m = connected(redis(&url()).lease_ttl(Duration::from_millis(3000)));
    let key = m.lease_key().unwrap().to_owned();
    let mut home = observer(0);
    std::thread::sleep(Duration::from_millis(7000));
    let held: Option<String> = redis::cmd("GET").arg(&key).query(&mut home).unwrap();
    assert_eq!(
        held.as_deref(),
        m.lease_owner(),
        "renewed in the background"
    );
    m.checkpoint("still_mine").unwrap();
    assert!(m.is_connected(), "the lease is still held");

    // Someone takes the lease away: the next operation refuses instead of corrupting.
    set(
        &mut home,
        &[b"SET", key.as_bytes(), b"someone-else", b"PX", b"5000"],
    );
    // The renewer notices at its next round (every second).
    let deadline = Instant::now() + Duration::from_secs(20);
    while m.is_connected() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = m.rollback("still_mine").unwrap_err();
    assert!(matches!(err, Error::StateLost { .. }), "{err}");
    assert!(err.to_string().contains("lease"), "{err}");
    assert!(!m.is_connected(), "a lost lease breaks the connection");
    drop(m);
    let held: String = redis::cmd("GET").arg(&key).query(&mut home).unwrap();
    assert_eq!(
        held, "someone-else",
        "a lost lease is not deleted on disconnect"
    );
    set(&mut home, &[b"DEL", key.as_bytes()]);
}

// ---- errors ----

#[test]
fn unreachable_server_gives_a_clear_error_without_the_password() {
    let err = redis("redis://:s3cret-pw@127.0.0.1:1")
        .connect()
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(
        text.contains("127.0.0.1:1") && text.contains("VENOMQA_REDIS_URL"),
        "{text}"
    );
    assert!(!text.contains("s3cret-pw"), "{text}");

    let err = open_entry("vq_redis_down", "down").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(
        !text.contains("s3cret-pw") && text.contains("VENOMQA_VQ_REDIS_DOWN_URL"),
        "{text}"
    );
}

#[test]
fn bad_url_gives_a_clear_error() {
    for bad in [
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:notaport",
        "not a url",
    ] {
        let err = Redis::from_url(bad).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Connect { .. }), "{bad}: {text}");
        assert!(text.contains("expected redis://"), "{bad}: {text}");
    }
}

#[test]
fn not_connected_and_bad_options() {
    let mut m = Manager::new(redis(&url()));
    assert!(matches!(m.checkpoint("a"), Err(Error::NotConnected { .. })));
    assert!(m.try_conn().is_err());
    let config = venomqa::BackendConfig::new("redis").with_option("isolation", "cluster");
    let err = RedisStateManager::from_config(&config).unwrap_err();
    assert!(
        err.to_string().contains("backends.redis.isolation"),
        "{err}"
    );
    let config = venomqa::BackendConfig::new("redis")
        .with_option("isolation", "prefix")
        .with_option("databases", "9-3");
    assert!(RedisStateManager::from_config(&config).is_err());
    let config = venomqa::BackendConfig::new("redis").with_option("lease_tll_ms", 100);
    let err = RedisStateManager::from_config(&config).unwrap_err();
    assert!(
        err.to_string().contains("backends.redis.lease_tll_ms")
            && err.to_string().contains("lease_ttl_ms"),
        "{err}"
    );
    let config = venomqa::BackendConfig::new("redis").with_option("lease_ttl_ms", 100);
    let err = RedisStateManager::from_config(&config).unwrap_err();
    assert!(err.to_string().contains("at least 300"), "{err}");
}

#[test]
fn isolation_none_uses_the_url_database_and_never_touches_lease_keys() {
    // A server of this test alone: a concurrent run of this test would roll back (or
    // restore) this one's keys under the same prefix.
    let server = PrivateServer::start(&[]);
    // Prefix "venomqa:" on database 0 covers the lease keys of every running test: they
    // must survive the rollback untouched.
    let mut m = connected(
        redis(&format!("{}/0", server.url()))
            .isolation(Isolation::None)
            .key_prefix("venomqa:"),
    );
    assert_eq!((m.database(), m.lease_owner()), (0, None));
    let mut home = server.observer(0);
    let fake = format!("{LEASE_KEY_PREFIX}vq_redis_fake_{}", std::process::id());
    let mine = format!("venomqa:vq_redis_none_{}", std::process::id());
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", mine.as_bytes(), b"x"]);
    set(
        &mut home,
        &[b"SET", fake.as_bytes(), b"someone", b"PX", b"60000"],
    );
    m.rollback("start").unwrap();
    assert!(!exists(&mut home, &mine));
    assert!(exists(&mut home, &fake), "lease keys are never rolled back");
    set(&mut home, &[b"DEL", fake.as_bytes()]);
}

#[test]
fn database_in_the_url_with_database_isolation_is_refused() {
    let err = redis(&format!("{}/3", url())).connect().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("database 3") && text.contains("isolation: none"),
        "{text}"
    );
}

// ---- a private server, for tests that need specific databases or server settings ----

/// A `redis-server` of this test alone on a free port (no persistence), killed on drop:
/// tests that pin databases or change server settings never race other processes.
struct PrivateServer {
    child: Child,
    port: u16,
}

impl PrivateServer {
    fn start(extra: &[&str]) -> PrivateServer {
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
                .args(extra)
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

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn observer(&self, db: i64) -> Connection {
        let mut conn = redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap();
        redis::cmd("SELECT").arg(db).exec(&mut conn).unwrap();
        conn
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- the rollback is never skipped, and never touches what is not ours ----

#[test]
fn rollback_happens_after_the_test_left_watch_multi_or_subscribe() {
    let mut m = manager();
    let mut obs = observer(m.database());
    set(m.conn(), &[b"SET", b"vq_redis_w", b"1"]);
    m.checkpoint("start").unwrap();

    // WATCH left on the connection, and the watched key touched: a plain MULTI/EXEC
    // would be aborted (nil), and the rollback silently skipped.
    set(m.conn(), &[b"WATCH", b"vq_redis_w"]);
    set(m.conn(), &[b"SET", b"vq_redis_w", b"2"]);
    set(m.conn(), &[b"SET", b"vq_redis_w_new", b"x"]);
    m.rollback("start").unwrap();
    let v: String = redis::cmd("GET").arg("vq_redis_w").query(&mut obs).unwrap();
    assert_eq!(v, "1", "rolled back although the test left a WATCH");
    assert!(!exists(&mut obs, "vq_redis_w_new"));

    // An open transaction: the test's queued commands are discarded, the rollback runs.
    set(m.conn(), &[b"SET", b"vq_redis_w", b"3"]);
    set(m.conn(), &[b"MULTI"]);
    let queued: String = redis::cmd("SET")
        .arg("vq_redis_w_queued")
        .arg("x")
        .query(m.conn())
        .unwrap();
    assert_eq!(queued, "QUEUED");
    m.rollback("start").unwrap();
    let v: String = redis::cmd("GET").arg("vq_redis_w").query(&mut obs).unwrap();
    assert_eq!(v, "1", "rolled back although the test left MULTI open");
    assert!(!exists(&mut obs, "vq_redis_w_queued"));
    set(m.conn(), &[b"SET", b"vq_redis_w_after", b"x"]);
    assert!(
        exists(&mut obs, "vq_redis_w_after"),
        "the connection works again, on the test's database"
    );

    // Subscribe mode: the connection cannot run the rollback; a new one does.
    set(m.conn(), &[b"SET", b"vq_redis_w", b"4"]);
    redis::cmd("SUBSCRIBE")
        .arg("vq_redis_channel")
        .exec(m.conn())
        .unwrap();
    m.rollback("start").unwrap();
    let v: String = redis::cmd("GET").arg("vq_redis_w").query(&mut obs).unwrap();
    assert_eq!(v, "1", "rolled back although the test left subscribe mode");
    assert!(!exists(&mut obs, "vq_redis_w_after"));
    set(m.conn(), &[b"SET", b"vq_redis_w_after", b"y"]);
    assert!(exists(&mut obs, "vq_redis_w_after"));

    // Left in subscribe mode at the end: the lease is still given back.
    let key = m.lease_key().unwrap().to_owned();
    let owner = m.lease_owner().unwrap().to_owned();
    redis::cmd("SUBSCRIBE")
        .arg("vq_redis_channel")
        .exec(m.conn())
        .unwrap();
    m.disconnect().unwrap();
    let held: Option<String> = redis::cmd("GET").arg(&key).query(&mut observer(0)).unwrap();
    assert_ne!(held, Some(owner), "the lease was given back");
}

#[test]
fn destructive_steps_verify_the_lease_on_the_server() {
    // Database isolation: the lease is taken over on the server; before the renewer can
    // notice, rollback and reset must refuse instead of flushing someone else's database.
    let mut m = connected(redis(&url()).lease_ttl(Duration::from_secs(60)));
    let key = m.lease_key().unwrap().to_owned();
    let mut home = observer(0);
    let mut obs = observer(m.database());
    set(m.conn(), &[b"SET", b"vq_redis_theirs", b"1"]);
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", b"vq_redis_theirs", b"2"]);
    set(
        &mut home,
        &[
            b"SET",
            key.as_bytes(),
            b"vq_redis_other_owner",
            b"PX",
            b"60000",
        ],
    );
    let err = m.rollback("start").unwrap_err();
    assert!(matches!(err, Error::StateLost { .. }), "{err}");
    let v: String = redis::cmd("GET")
        .arg("vq_redis_theirs")
        .query(&mut obs)
        .unwrap();
    assert_eq!(
        v, "2",
        "nothing flushed or restored in a database we no longer own"
    );
    assert!(matches!(m.reset(), Err(Error::StateLost { .. })));
    assert!(exists(&mut obs, "vq_redis_theirs"), "reset deleted nothing");
    drop(m);
    assert!(
        exists(&mut obs, "vq_redis_theirs"),
        "the release emptied nothing"
    );
    let held: String = redis::cmd("GET").arg(&key).query(&mut home).unwrap();
    assert_eq!(held, "vq_redis_other_owner");
    set(&mut obs, &[b"DEL", b"vq_redis_theirs"]);
    set(&mut home, &[b"DEL", key.as_bytes()]);

    // Prefix isolation: the same for rollback and for the release on disconnect.
    let mut p = connected(
        redis(&url())
            .isolation(Isolation::Prefix)
            .key_prefix("vq_redis_guard:")
            .lease_ttl(Duration::from_secs(60)),
    );
    let key = p.lease_key().unwrap().to_owned();
    let k = p.key("x");
    p.checkpoint("start").unwrap();
    set(p.conn(), &[b"SET", k.as_bytes(), b"1"]);
    set(
        &mut home,
        &[
            b"SET",
            key.as_bytes(),
            b"vq_redis_other_owner",
            b"PX",
            b"60000",
        ],
    );
    assert!(matches!(p.rollback("start"), Err(Error::StateLost { .. })));
    assert!(exists(&mut home, &k), "not deleted by the rollback");
    p.disconnect().unwrap_err();
    assert!(exists(&mut home, &k), "not deleted by the release");
    let held: String = redis::cmd("GET").arg(&key).query(&mut home).unwrap();
    assert_eq!(held, "vq_redis_other_owner", "nor the other owner's lease");
    set(&mut home, &[b"DEL", key.as_bytes(), k.as_bytes()]);
}

#[test]
fn prefix_and_none_isolation_go_back_to_the_url_database_after_a_select() {
    let server = PrivateServer::start(&[]);
    for isolation in [Isolation::Prefix, Isolation::None] {
        let mut m = connected(
            redis(&format!("{}/2", server.url()))
                .isolation(isolation)
                .key_prefix("vq_redis_sel:"),
        );
        let mut two = server.observer(2);
        let mut three = server.observer(3);
        let k = m.key("k");
        set(m.conn(), &[b"SET", k.as_bytes(), b"1"]);
        set(&mut three, &[b"SET", k.as_bytes(), b"db3"]);
        m.checkpoint("start").unwrap();
        set(m.conn(), &[b"SET", k.as_bytes(), b"2"]);
        // The code under test switches databases.
        redis::cmd("SELECT").arg(3).exec(m.conn()).unwrap();
        set(m.conn(), &[b"SET", k.as_bytes(), b"db3 changed"]);
        m.rollback("start").unwrap();
        let v: String = redis::cmd("GET").arg(&k).query(&mut two).unwrap();
        assert_eq!(v, "1", "{isolation:?}: rolled back in database 2");
        let v: String = redis::cmd("GET").arg(&k).query(&mut three).unwrap();
        assert_eq!(v, "db3 changed", "{isolation:?}: database 3 untouched");
        let v: String = redis::cmd("GET").arg(&k).query(m.conn()).unwrap();
        assert_eq!(
            v, "1",
            "{isolation:?}: the connection is back on database 2"
        );
        redis::cmd("SELECT").arg(3).exec(m.conn()).unwrap();
        m.reset().unwrap();
        assert!(!exists(&mut two, &k), "{isolation:?}: reset in database 2");
        assert!(exists(&mut three, &k), "{isolation:?}: not in database 3");
        set(&mut three, &[b"DEL", k.as_bytes()]);
        m.disconnect().unwrap();
    }
}

#[test]
fn database_isolation_never_leases_the_database_of_a_prefix_manager() {
    let server = PrivateServer::start(&[]);
    let mut p = connected(
        redis(&format!("{}/5", server.url()))
            .isolation(Isolation::Prefix)
            .key_prefix("vq_redis_mixed:"),
    );
    let k = p.key("k");
    set(p.conn(), &[b"SET", k.as_bytes(), b"x"]);
    let pin: Option<String> = redis::cmd("GET")
        .arg(format!("{LEASE_KEY_PREFIX}db:5"))
        .query(&mut server.observer(0))
        .unwrap();
    assert!(pin.is_some(), "database 5 is pinned in database 0");
    let err = redis(&server.url())
        .databases(5, 5)
        .lease_wait(Duration::ZERO)
        .connect()
        .unwrap_err();
    assert!(err.to_string().contains("5..=5"), "{err}");
    let mut other = connected(redis(&server.url()).databases(4, 6));
    assert_ne!(other.database(), 5);
    assert!(
        exists(&mut server.observer(5), &k),
        "the prefix manager's keys were not flushed"
    );
    other.disconnect().unwrap();

    // The other way round: a database-isolation manager holds database 6, so a prefix
    // manager on database 6 waits, then says why.
    let mut holder = connected(redis(&server.url()).databases(6, 6));
    let err = redis(&format!("{}/6", server.url()))
        .isolation(Isolation::None)
        .lease_wait(Duration::ZERO)
        .connect()
        .unwrap_err();
    assert!(
        err.to_string().contains("database 6") && err.to_string().contains("database isolation"),
        "{err}"
    );
    holder.disconnect().unwrap();
    p.disconnect().unwrap();
}

#[test]
fn a_server_with_one_database_fails_at_once_suggesting_prefix_isolation() {
    let server = PrivateServer::start(&["--databases", "1"]);
    let err = redis(&server.url())
        .lease_wait(Duration::from_secs(5))
        .connect()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("single database") && text.contains("isolation: prefix"),
        "{text}"
    );
    assert!(
        !text.contains("other tests"),
        "does not blame other tests: {text}"
    );
    // And prefix isolation works there.
    let mut m = connected(
        redis(&server.url())
            .isolation(Isolation::Prefix)
            .key_prefix("vq_redis_one:"),
    );
    let k = m.key("k");
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", k.as_bytes(), b"x"]);
    m.rollback("start").unwrap();
    assert!(!exists(&mut server.observer(0), &k));
    m.disconnect().unwrap();
}

#[test]
fn user_keys_named_like_leases_in_a_leased_database_are_rolled_back() {
    let mut m = manager();
    let mut obs = observer(m.database());
    let k = format!("{LEASE_KEY_PREFIX}vq_redis_user_key");
    set(m.conn(), &[b"SET", k.as_bytes(), b"mine"]);
    m.checkpoint("start").unwrap();
    set(m.conn(), &[b"SET", k.as_bytes(), b"changed"]);
    m.rollback("start").unwrap();
    let v: Option<String> = redis::cmd("GET").arg(&k).query(&mut obs).unwrap();
    assert_eq!(
        v.as_deref(),
        Some("mine"),
        "snapshotted and restored, not flushed away"
    );
    m.disconnect().unwrap();
}

// ---- the checkpoint-semantics suite, and the shape of the messages ----

/// Keys `<prefix>vq_probe:<value>` under the session's prefix.
struct Keys;

impl venomqa::conformance::Probe for Keys {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
        let m = m.connection::<Redis>()?;
        let key = m.key(&format!("vq_probe:{value}"));
        redis::cmd("SET")
            .arg(key)
            .arg("")
            .exec(m.conn())
            .map_err(|e| Error::backend("redis", "probe insert", e))
    }

    fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
        let m = m.connection::<Redis>()?;
        let prefix = m.key("vq_probe:");
        let pattern = format!("{}*", prefix.replace('\\', "\\\\").replace('*', "\\*"));
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&pattern)
            .query(m.conn())
            .map_err(|e| Error::backend("redis", "probe read", e))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix(&prefix)?.parse().ok())
            .collect())
    }
}

#[test]
fn conformance_in_database_isolation() {
    venomqa::conformance::run("redis", Keys);
}

#[test]
fn conformance_in_prefix_isolation() {
    venomqa::conformance::run("redis_prefix", Keys);
}

#[test]
fn conformance_with_a_key_prefix() {
    venomqa::conformance::run("redis_key_prefix", Keys);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    venomqa::conformance::faults(redis(&url()));
    venomqa::conformance::faults(
        redis(&url())
            .isolation(Isolation::Prefix)
            .key_prefix("vq_faults:"),
    );
}

/// Every main error of the backend is one line of at most 300 characters, without runs of
/// spaces, and never shows the password.
#[test]
fn error_messages_are_one_short_line() {
    let server = PrivateServer::start(&[]);
    let mut errors: Vec<(&str, Error)> = Vec::new();
    errors.push((
        "unreachable",
        redis("redis://:s3cret-pw@127.0.0.1:1")
            .connect()
            .unwrap_err(),
    ));
    errors.push((
        "bad url",
        Redis::from_url("http://:s3cret-pw@127.0.0.1:6379").unwrap_err(),
    ));
    errors.push((
        "database in the URL",
        redis(&format!("{}/3", server.url())).connect().unwrap_err(),
    ));
    errors.push((
        "only database 0",
        redis(&server.url()).databases(0, 0).connect().unwrap_err(),
    ));
    let holder = connected(redis(&server.url()).databases(14, 14));
    errors.push((
        "all leased",
        redis(&server.url())
            .databases(14, 14)
            .lease_wait(Duration::ZERO)
            .connect()
            .unwrap_err(),
    ));
    errors.push(("all prefix slots leased", {
        let _slot = connected(
            redis(&server.url())
                .isolation(Isolation::Prefix)
                .key_prefix("vq_msg:")
                .prefix_slots(1),
        );
        redis(&server.url())
            .isolation(Isolation::Prefix)
            .key_prefix("vq_msg:")
            .prefix_slots(1)
            .lease_wait(Duration::ZERO)
            .connect()
            .unwrap_err()
    }));
    errors.push((
        "pinned database leased",
        redis(&format!("{}/14", server.url()))
            .isolation(Isolation::None)
            .lease_wait(Duration::ZERO)
            .connect()
            .unwrap_err(),
    ));
    drop(holder);
    let mut m = connected(redis(&server.url()).lease_ttl(Duration::from_secs(60)));
    m.checkpoint("a").unwrap();
    let key = m.lease_key().unwrap().to_owned();
    set(
        &mut server.observer(0),
        &[b"SET", key.as_bytes(), b"vq_redis_other_owner"],
    );
    errors.push(("lost lease", m.rollback("a").unwrap_err()));
    let config = venomqa::BackendConfig::new("redis").with_option("databases", "9-3");
    errors.push((
        "bad option",
        RedisStateManager::from_config(&config).unwrap_err(),
    ));
    for (what, e) in errors {
        let text = e.to_string();
        println!("{what}: {text}");
        assert!(
            !text.contains('\n') && !text.contains("  "),
            "{what}: not one line: {text}"
        );
        assert!(text.len() <= 300, "{what}: {} chars: {text}", text.len());
        assert!(!text.contains("s3cret-pw"), "{what}: {text}");
    }
}
