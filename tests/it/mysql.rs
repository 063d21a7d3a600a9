#![cfg(feature = "mysql")]
//! The MySQL / MariaDB backend against the real server (127.0.0.1:3306, root, database
//! `test` unless VENOMQA_MYSQL_URL says otherwise). Checks read the data back from a
//! second, independent connection opened with the driver directly; the checkpoint rules
//! shared by every backend are checked by `venomqa::conformance` at the end of the file.
//!
//! Sessions use the entries of `tests/venomqa.yaml`: `mysql` (whose setup creates the
//! shared tables) and private pools (`mysql_kill`, `mysql_xa`, ...).

use std::error::Error as _;
use std::panic::catch_unwind;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use venomqa::mysql::driver::prelude::Queryable;
use venomqa::mysql::driver::{self, Conn};
use venomqa::mysql::{MySql, MySqlSession, MySqlStateManager, ResetStrategy, TransactionMode};
use venomqa::{venom_test, Error, Manager, Session, SessionBuilder, StateManager};

const ITEMS: &str = "vq_mysql_items";

fn url() -> String {
    std::env::var("VENOMQA_MYSQL_URL").unwrap_or_else(|_| venomqa::mysql::DEFAULT_URL.to_owned())
}

/// `what` suffixed with this process's id: labels and tables that a test commits or
/// creates must not collide with another run of this file against the same server (two
/// CI shards, two developers, `cargo nextest` processes).
fn unique(what: &str) -> String {
    format!("{what}_{}", std::process::id())
}

/// Holds the server-wide named lock `name` until dropped (the connection closes), so
/// concurrent runs of this file take turns on shared objects (tables, users).
fn named_lock(name: &str) -> Conn {
    let mut c = other();
    let got: Option<i64> = c.exec_first("SELECT GET_LOCK(?, 120)", (name,)).unwrap();
    assert_eq!(got, Some(1), "GET_LOCK({name:?}) timed out");
    c
}

/// A second connection, independent of venomqa: what it sees is what is committed.
fn other() -> Conn {
    Conn::new(driver::Opts::from_url(&url()).unwrap()).unwrap_or_else(|e| {
        panic!(
            "the MySQL/MariaDB server at {} is needed by these tests: {e}",
            venomqa::redact_url(&url())
        )
    })
}

/// The shared tables exist: the `mysql` entry's setup (`tests/sql/mysql/`) creates them
/// once per process, before its pool's first lease.
fn schema() {
    MySqlSession::builder().name("schema").run(|_| ());
}

/// Committed rows with `label`, seen from a second connection.
fn committed(label: &str) -> i64 {
    other()
        .exec_first(
            format!("SELECT COUNT(*) FROM {ITEMS} WHERE label = ?"),
            (label,),
        )
        .unwrap()
        .unwrap()
}

fn insert(conn: &mut Conn, label: &str) {
    conn.exec_drop(format!("INSERT INTO {ITEMS} (label) VALUES (?)"), (label,))
        .unwrap();
}

/// Rows with `label` as `conn` sees them (its own uncommitted rows included).
fn visible(conn: &mut Conn, label: &str) -> i64 {
    conn.exec_first(
        format!("SELECT COUNT(*) FROM {ITEMS} WHERE label = ?"),
        (label,),
    )
    .unwrap()
    .unwrap()
}

/// A test on the default `mysql` entry, run as `#[venom_test(backend = "mysql")]` runs it.
fn test(name: &str) -> SessionBuilder<MySqlStateManager> {
    MySqlSession::builder().name(name)
}

/// A session on a private pool (an entry of `tests/venomqa.yaml`), so counters, kills and
/// session state touch no other test.
fn private(entry: &str) -> SessionBuilder<MySqlStateManager> {
    MySqlSession::builder().entry(entry).url(url()).name(entry)
}

/// A standalone manager (not pooled) on `backend`, connected.
fn standalone(backend: MySql) -> MySqlStateManager {
    let mut m = Manager::new(backend);
    m.connect().unwrap();
    m
}

/// The connection of a standalone manager.
fn conn(m: &mut MySqlStateManager) -> &mut Conn {
    m.connection().unwrap().driver()
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// ---------------------------------------------------------------- rollback at test end

#[test]
fn rolled_back_after_a_passing_test() {
    schema();
    let label = &unique("rolled_back_after_a_passing_test");
    test("pass").run(|db: &mut MySqlSession| {
        insert(db.conn(), label);
        insert(db.conn(), label);
        assert_eq!(visible(db.conn(), label), 2);
        assert_eq!(
            committed(label),
            0,
            "uncommitted rows must not be visible to other connections"
        );
    });
    assert_eq!(committed(label), 0);
}

#[test]
fn rolled_back_after_a_test_returning_err() {
    schema();
    let label = &unique("rolled_back_after_err");
    let result: Result<(), String> = test("err").run(|db: &mut MySqlSession| {
        insert(db.conn(), label);
        Err("the test failed".to_owned())
    });
    assert_eq!(result, Err("the test failed".to_owned()));
    assert_eq!(committed(label), 0);
}

#[test]
fn rolled_back_after_a_panicking_test() {
    schema();
    let label = &unique("rolled_back_after_panic");
    let outcome = catch_unwind(|| {
        test("panic").run(|db: &mut MySqlSession| -> () {
            insert(db.conn(), label);
            assert_eq!(visible(db.conn(), label), 1);
            panic!("boom in the test body");
        })
    });
    assert_eq!(panic_text(outcome.unwrap_err()), "boom in the test body");
    assert_eq!(committed(label), 0);
}

/// The attribute form end to end (its entry's setup made the tables); the checks after it
/// in `rolled_back_*` prove rollback.
#[venom_test(backend = "mysql")]
fn venom_test_attribute_gives_the_native_connection(db: &mut MySqlSession) -> Result<(), Error> {
    let label = &unique("venom_test_attribute");
    let id: Option<u32> = db.conn().query_first("SELECT CONNECTION_ID()").unwrap();
    assert_eq!(id, Some(db.conn().connection_id()));
    db.exec(&format!("INSERT INTO {ITEMS} (label) VALUES ('{label}'); INSERT INTO {ITEMS} (label) VALUES ('{label}')"))?;
    assert_eq!(visible(db.conn(), label), 2);
    assert_eq!(committed(label), 0);
    Ok(())
}

// ---------------------------------------------------------------- checkpoints
// Nesting, blocks, explicit checkpoints, the stack rules and hostile checkpoint names are
// checked by the conformance suite (`conformance` at the end of this file).

#[test]
fn standalone_manager_release_commits_and_discard_rolls_back() {
    schema();
    let label = &unique("standalone_release_commits");
    let mut m = standalone(MySql::from_url(&url()).unwrap());
    m.checkpoint("a").unwrap();
    insert(conn(&mut m), label);
    m.checkpoint("b").unwrap();
    insert(conn(&mut m), label);
    m.discard("b").unwrap();
    assert_eq!(visible(conn(&mut m), label), 1);
    assert_eq!(committed(label), 0);
    m.release("a").unwrap(); // outermost: COMMIT
    assert_eq!(committed(label), 1);

    m.checkpoint("c").unwrap();
    conn(&mut m)
        .exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (label,))
        .unwrap();
    m.discard("c").unwrap(); // outermost: ROLLBACK
    assert_eq!(committed(label), 1);
    conn(&mut m)
        .exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (label,))
        .unwrap();
    assert_eq!(committed(label), 0);
    m.disconnect().unwrap();
}

#[test]
fn commit_keeps_earlier_changes_and_later_ones_still_roll_back() {
    schema();
    let (kept, undone) = (&unique("commit_kept"), &unique("commit_undone"));
    other()
        .exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (kept,))
        .unwrap();
    test("commit").run(|db: &mut MySqlSession| {
        insert(db.conn(), kept);
        db.create_checkpoint("before_commit").unwrap();
        db.commit().unwrap();
        assert_eq!(committed(kept), 1);
        assert_eq!(db.checkpoints(), ["venomqa_root", "before_commit"]);
        insert(db.conn(), undone);
        db.rollback("before_commit").unwrap();
        assert_eq!(visible(db.conn(), undone), 0);
        insert(db.conn(), undone);
    });
    assert_eq!(committed(kept), 1);
    assert_eq!(committed(undone), 0);
    other()
        .exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (kept,))
        .unwrap();
}

// ---------------------------------------------------------------- parallel tests

/// A pool of 32 and barriers: all 32 transactions are open at the same time (checked from
/// an independent connection), and each sees only its own row.
#[test]
fn thirty_two_parallel_tests_on_one_table() {
    schema();
    let label = unique("parallel_32");
    // 32 sessions + this thread.
    let (inserted, checked) = (Arc::new(Barrier::new(33)), Arc::new(Barrier::new(33)));
    let (ids, received) = std::sync::mpsc::channel();
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let (inserted, checked, ids) = (inserted.clone(), checked.clone(), ids.clone());
            let label = label.clone();
            std::thread::spawn(move || {
                let mut db = private("mysql_parallel").open().unwrap();
                ids.send(db.conn().connection_id()).unwrap();
                db.conn()
                    .exec_drop(
                        format!("INSERT INTO {ITEMS} (label, owner) VALUES (?, ?)"),
                        (&label, i),
                    )
                    .unwrap();
                inserted.wait(); // every session has inserted and is still open
                let owners: Vec<i32> = db
                    .conn()
                    .exec(
                        format!("SELECT owner FROM {ITEMS} WHERE label = ?"),
                        (&label,),
                    )
                    .unwrap();
                checked.wait();
                db.finish().unwrap();
                owners
            })
        })
        .collect();
    inserted.wait();
    let ids: Vec<String> = received.iter().take(32).map(|id| id.to_string()).collect();
    let open: Option<i64> = other()
        .query_first(format!(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id IN ({})",
            ids.join(", ")
        ))
        .unwrap();
    assert_eq!(open, Some(32), "all 32 transactions are open at once");
    assert_eq!(
        committed(&label),
        0,
        "none of the 32 rows is visible outside"
    );
    checked.wait();
    for (i, t) in threads.into_iter().enumerate() {
        assert_eq!(
            t.join().unwrap(),
            [i as i32],
            "session {i} must see only its own row"
        );
    }
    assert_eq!(committed(&label), 0);
    let stats = private("mysql_parallel").pool_stats().unwrap();
    assert_eq!((stats.leases, stats.opened), (32, 32), "{stats:?}");
    assert_eq!(stats.replaced, 0, "{stats:?}");
}

#[test]
fn thirty_two_sessions_started_by_name_in_parallel_threads() {
    schema();
    let label = &unique("parallel_by_name");
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let label = label.clone();
            std::thread::spawn(move || {
                let mut db = MySqlSession::start("mysql").unwrap();
                db.conn()
                    .exec_drop(
                        format!("INSERT INTO {ITEMS} (label, owner) VALUES (?, ?)"),
                        (&label, i),
                    )
                    .unwrap();
                let owners: Vec<i32> = db
                    .conn()
                    .exec(
                        format!("SELECT owner FROM {ITEMS} WHERE label = ?"),
                        (&label,),
                    )
                    .unwrap();
                assert_eq!(owners, [i]);
                db.finish().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(committed(label), 0);
}

// ---------------------------------------------------------------- reset

/// Its own database: resetting "every table" must not touch other tests' tables. Returns
/// the URL and the connection that holds the lock on that database (one test, in one
/// process, at a time drops and re-creates its tables).
fn reset_database() -> (String, Conn) {
    let lock = named_lock("vq_mysql_reset_db");
    let mut c = other();
    c.query_drop("CREATE DATABASE IF NOT EXISTS vq_mysql_reset")
        .unwrap();
    c.query_drop(
        "USE vq_mysql_reset; SET FOREIGN_KEY_CHECKS = 0;
         DROP VIEW IF EXISTS vq_mysql_child_view;
         DROP TABLE IF EXISTS vq_mysql_parent, vq_mysql_child, vq_mysql_kept, `vq_mysql_odd``name`, vq_mysql_orphan;
         SET FOREIGN_KEY_CHECKS = 1;
         CREATE TABLE vq_mysql_parent (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB;
         CREATE TABLE vq_mysql_child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL,
             FOREIGN KEY (parent_id) REFERENCES vq_mysql_parent (id)) ENGINE=InnoDB;
         CREATE TABLE vq_mysql_kept (v INT) ENGINE=InnoDB;
         CREATE TABLE `vq_mysql_odd``name` (v INT) ENGINE=InnoDB;
         CREATE VIEW vq_mysql_child_view AS SELECT c.id, p.v FROM vq_mysql_child c JOIN vq_mysql_parent p ON p.id = c.parent_id;",
    )
    .unwrap();
    let base = url();
    let base = base.split('?').next().unwrap();
    let db_url = format!("{}/vq_mysql_reset", &base[..base.rfind('/').unwrap()]);
    (db_url, lock)
}

fn fill_reset_tables(c: &mut Conn) {
    c.query_drop(
        "USE vq_mysql_reset;
         INSERT INTO vq_mysql_parent (v) VALUES (1), (2), (3);
         INSERT INTO vq_mysql_child (parent_id) SELECT id FROM vq_mysql_parent;
         INSERT INTO vq_mysql_kept VALUES (7);
         INSERT INTO `vq_mysql_odd``name` VALUES (1);",
    )
    .unwrap();
}

fn count(c: &mut Conn, table: &str) -> i64 {
    c.query_first(format!("SELECT COUNT(*) FROM vq_mysql_reset.{table}"))
        .unwrap()
        .unwrap()
}

#[test]
fn reset_empties_every_base_table_with_foreign_keys_and_a_view_present() {
    let (db_url, _lock) = reset_database();
    let mut c = other();
    for strategy in [ResetStrategy::Delete, ResetStrategy::Truncate] {
        fill_reset_tables(&mut c);
        let mut m = standalone(
            MySql::from_url(&db_url)
                .unwrap()
                .exclude_tables(["vq_mysql_kept"])
                .reset_strategy(strategy),
        );
        m.checkpoint("open").unwrap(); // reset ends an open transaction first
        m.reset().unwrap();
        assert!(m.checkpoints().is_empty());
        for table in [
            "vq_mysql_parent",
            "vq_mysql_child",
            "`vq_mysql_odd``name`",
            "vq_mysql_child_view",
        ] {
            assert_eq!(count(&mut c, table), 0, "{strategy:?}: {table}");
        }
        assert_eq!(
            count(&mut c, "vq_mysql_kept"),
            1,
            "{strategy:?}: excluded table untouched"
        );
        let checks: Option<i64> = conn(&mut m)
            .query_first("SELECT @@FOREIGN_KEY_CHECKS")
            .unwrap();
        assert_eq!(checks, Some(1), "foreign key checks are back on");
        let views: Option<i64> = c
            .query_first("SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'vq_mysql_reset'")
            .unwrap();
        assert_eq!(views, Some(1), "the view survives");
        // The foreign key still holds after the reset.
        assert!(c
            .query_drop("INSERT INTO vq_mysql_reset.vq_mysql_child (parent_id) VALUES (999)")
            .is_err());
        let next_id: Option<u64> = c
            .query_first(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'vq_mysql_reset' AND TABLE_NAME = 'vq_mysql_parent'",
            )
            .unwrap();
        match strategy {
            ResetStrategy::Truncate => {
                assert_eq!(next_id, Some(1), "TRUNCATE resets AUTO_INCREMENT")
            }
            _ => assert!(
                next_id > Some(1),
                "DELETE keeps AUTO_INCREMENT (documented)"
            ),
        }
        c.query_drop("DELETE FROM vq_mysql_reset.vq_mysql_kept")
            .unwrap();
    }
}

/// reset() turns foreign key checks off, so emptying a parent whose child is not reset
/// would leave the child's rows pointing at nothing: it refuses, changing nothing.
#[test]
fn reset_refuses_to_orphan_rows_of_a_table_it_does_not_reset() {
    let (db_url, _lock) = reset_database();
    let mut c = other();
    c.query_drop(
        "CREATE TABLE vq_mysql_reset.vq_mysql_orphan (parent_id INT NOT NULL, \
         CONSTRAINT vq_mysql_orphan_fk FOREIGN KEY (parent_id) REFERENCES vq_mysql_reset.vq_mysql_parent (id)) ENGINE=InnoDB",
    )
    .unwrap();
    fill_reset_tables(&mut c);
    c.query_drop(
        "INSERT INTO vq_mysql_reset.vq_mysql_orphan (parent_id) SELECT id FROM vq_mysql_reset.vq_mysql_parent",
    )
    .unwrap();
    let before: Vec<i64> = ["vq_mysql_parent", "vq_mysql_child", "vq_mysql_orphan"]
        .iter()
        .map(|t| count(&mut c, t))
        .collect();
    let backend = || MySql::from_url(&db_url).unwrap();
    let refused = [
        backend().exclude_tables(["vq_mysql_orphan"]),
        backend().tables_to_reset(["vq_mysql_child", "vq_mysql_parent"]),
    ];
    for refused in refused {
        let mut m = standalone(refused);
        m.checkpoint("open").unwrap();
        conn(&mut m)
            .query_drop("INSERT INTO vq_mysql_kept VALUES (42)")
            .unwrap();
        let e = m.reset().unwrap_err().to_string();
        for needle in [
            "vq_mysql_orphan",
            "vq_mysql_parent",
            "vq_mysql_orphan_fk",
            "Nothing was changed",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in: {e}");
        }
        // Nothing changed: the rows, and the manager's open transaction and checkpoint.
        let after: Vec<i64> = ["vq_mysql_parent", "vq_mysql_child", "vq_mysql_orphan"]
            .iter()
            .map(|t| count(&mut c, t))
            .collect();
        assert_eq!(after, before);
        assert_eq!(m.checkpoints(), ["open"]);
        let own: Option<i64> = conn(&mut m)
            .query_first("SELECT COUNT(*) FROM vq_mysql_kept WHERE v = 42")
            .unwrap();
        assert_eq!(own, Some(1), "the open transaction is untouched");
        m.discard("open").unwrap();
    }
    // Resetting the child too is allowed.
    let mut m = standalone(backend().exclude_tables(["vq_mysql_kept"]));
    m.reset().unwrap();
    assert_eq!(count(&mut c, "vq_mysql_orphan"), 0);
    assert_eq!(count(&mut c, "vq_mysql_parent"), 0);
    c.query_drop("DROP TABLE vq_mysql_reset.vq_mysql_orphan")
        .unwrap();
}

#[test]
fn hostile_table_names_are_quoted_never_executed() {
    schema();
    let hostile = [
        "vq_mysql_a`; DROP TABLE vq_mysql_victim; --",
        "vq_mysql_q'\"; DROP TABLE vq_mysql_victim; --",
    ];
    let quoted = |t: &str| format!("`{}`", t.replace('`', "``"));
    // Another run of this file resets the same tables: take turns.
    let _lock = named_lock("vq_mysql_hostile");
    let mut c = other();
    c.query_drop("CREATE TABLE IF NOT EXISTS vq_mysql_victim (v INT) ENGINE=InnoDB")
        .unwrap();
    c.query_drop("INSERT INTO vq_mysql_victim VALUES (1)")
        .unwrap();
    for t in hostile {
        c.query_drop(format!(
            "CREATE TABLE IF NOT EXISTS {} (v INT) ENGINE=InnoDB",
            quoted(t)
        ))
        .unwrap();
        c.query_drop(format!("INSERT INTO {} VALUES (1), (2)", quoted(t)))
            .unwrap();
    }
    let mut m = standalone(MySql::from_url(&url()).unwrap().tables_to_reset(hostile));
    m.reset().unwrap();
    for t in hostile {
        let n: Option<i64> = c
            .query_first(format!("SELECT COUNT(*) FROM {}", quoted(t)))
            .unwrap();
        assert_eq!(n, Some(0), "{t} was reset");
    }
    let victim: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM vq_mysql_victim")
        .unwrap();
    assert!(victim >= Some(1), "vq_mysql_victim survives");
}

// ---------------------------------------------------------------- connections

/// The user `vq_special` with the password `p@ss:w/rd`, and its URL.
fn special_user() -> String {
    let _lock = named_lock("vq_mysql_special_user");
    let mut c = other();
    for host in ["%", "localhost"] {
        c.query_drop(format!(
            "CREATE USER IF NOT EXISTS 'vq_special'@'{host}' IDENTIFIED BY 'p@ss:w/rd'"
        ))
        .unwrap();
        c.query_drop(format!(
            "ALTER USER 'vq_special'@'{host}' IDENTIFIED BY 'p@ss:w/rd'"
        ))
        .unwrap();
        c.query_drop(format!("GRANT ALL ON test.* TO 'vq_special'@'{host}'"))
            .unwrap();
    }
    let base = driver::Opts::from_url(&url()).unwrap();
    format!(
        "mysql://vq_special:p%40ss%3Aw%2Frd@{}:{}/{}",
        base.get_ip_or_hostname(),
        base.get_tcp_port(),
        base.get_db_name().unwrap_or("test")
    )
}

#[test]
fn password_with_at_colon_and_slash() {
    schema();
    let special = special_user();
    let label = &unique("special_password");
    let mut m = standalone(MySql::from_url(&special).unwrap());
    let user: Option<String> = conn(&mut m).query_first("SELECT CURRENT_USER()").unwrap();
    assert!(user.unwrap().starts_with("vq_special@"));
    m.checkpoint("start").unwrap();
    insert(conn(&mut m), label);
    m.discard("start").unwrap();
    assert_eq!(committed(label), 0);

    // A wrong password is refused without showing it.
    let wrong = special.replace("p%40ss%3Aw%2Frd", "wr%40ng%3Apw");
    let e = MySqlStateManager::from_url(&wrong)
        .unwrap()
        .connect()
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Connect { .. }), "{text}");
    assert!(
        !text.contains("wr@ng:pw") && !text.contains("wr%40ng"),
        "{text}"
    );
    assert!(text.contains("vq_special:***@"), "{text}");
    // The driver's error is the source: the server refused the login (1045).
    match e.driver::<driver::Error>() {
        Some(driver::Error::MySqlError(server)) => assert_eq!(server.code, 1045, "{server}"),
        other => panic!("expected the server's access denied, got {other:?}"),
    }
}

/// `mariadb://` URLs, `socket` and `prefer_socket`: the URL reaches the driver's own
/// parser (after venomqa takes out the scheme and `connect_timeout_ms`).
#[test]
fn url_forms_reach_the_server() {
    schema();
    let via = |url: &str| -> String {
        let mut m = standalone(MySql::from_url(url).unwrap());
        let host: Option<String> = conn(&mut m)
            .query_first(
                "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()",
            )
            .unwrap();
        m.checkpoint("probe").unwrap();
        m.discard("probe").unwrap();
        host.unwrap()
    };
    let base = url();
    let with = |query: &str| {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{query}")
    };
    let tcp = via(&with("prefer_socket=false&connect_timeout_ms=5000"));
    assert!(
        tcp.contains(':'),
        "a TCP connection shows host:port, got {tcp:?}"
    );
    let mariadb = via(&with("prefer_socket=false").replacen("mysql://", "mariadb://", 1));
    assert!(mariadb.contains(':'), "{mariadb:?}");
    let socket: Option<String> = other().query_first("SELECT @@socket").unwrap();
    let socket = socket.expect("the server has a Unix socket");
    let encoded = socket.replace('/', "%2F");
    assert_eq!(
        via(&with(&format!("socket={encoded}&prefer_socket=false"))),
        "localhost",
        "a socket connection"
    );
}

#[test]
fn unreachable_server_fails_clearly_within_the_timeout() {
    let started = Instant::now();
    let mut m = Manager::new(
        MySql::from_url("mysql://root:s3cr%40t@127.0.0.1:1/test")
            .unwrap()
            .connect_timeout(Duration::from_secs(2)),
    );
    let e = m.connect().unwrap_err();
    let text = e.to_string();
    println!("{text} (after {:?})", started.elapsed());
    assert!(matches!(e, Error::Connect { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1"), "names host and port: {text}");
    assert!(
        !text.contains("s3cr@t") && !text.contains("s3cr%40t"),
        "no password: {text}"
    );
    assert!(text.contains("VENOMQA_MYSQL_URL"), "{text}");
    assert!(!m.is_connected());

    // A host that never answers: the connect timeout (from the URL here) applies, the
    // handshake included. The bound only guards against a hang; it is not a performance
    // assertion.
    let started = Instant::now();
    let e =
        MySqlStateManager::from_url("mysql://root@10.255.255.1:3306/test?connect_timeout_ms=300")
            .unwrap()
            .connect()
            .unwrap_err();
    let text = e.to_string();
    println!("{text} (after {:?})", started.elapsed());
    assert!(text.contains("10.255.255.1:3306"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the connect timeout was ignored: {text}"
    );
}

#[test]
fn bad_url_is_a_config_error() {
    let e = MySqlStateManager::from_url("mysql://u:pw@h/db?nonsense=1").unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Config { .. }), "{text}");
    assert!(text.contains("nonsense") && !text.contains("pw@"), "{text}");
}

#[test]
fn killed_connection_fails_the_test_and_the_next_test_gets_a_fresh_connection() {
    schema();
    let label = &unique("killed_connection");
    let kill = || private("mysql_kill");
    let mut db = kill().name("killed").open().unwrap();
    insert(db.conn(), label);
    let victim = db.conn().connection_id();
    other().query_drop(format!("KILL {victim}")).unwrap();
    let e = db
        .exec(&format!("INSERT INTO {ITEMS} (label) VALUES ('{label}')"))
        .unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    let e = db.finish().unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{text}");
    assert!(
        text.contains("connection was lost") && text.contains("rolled back"),
        "{text}"
    );
    assert_eq!(
        committed(label),
        0,
        "the server rolled the dead connection's transaction back"
    );

    // The next test on the same pool gets a new, working connection.
    let mut db = kill().name("after_kill").open().unwrap();
    assert_ne!(db.conn().connection_id(), victim);
    insert(db.conn(), label);
    assert_eq!(visible(db.conn(), label), 1);
    db.finish().unwrap();
    assert_eq!(committed(label), 0);
    let stats = kill().pool_stats().unwrap();
    assert_eq!((stats.opened, stats.replaced), (2, 1), "{stats:?}");

    // A connection killed while idle in the pool fails its lease check (a real round
    // trip) and is replaced at lease time.
    let idle_id = {
        let mut db = kill().name("idle").open().unwrap();
        let id = db.conn().connection_id();
        db.finish().unwrap();
        id
    };
    other().query_drop(format!("KILL {idle_id}")).unwrap();
    let mut db = kill().name("after_idle_kill").open().unwrap();
    assert_ne!(db.conn().connection_id(), idle_id);
    db.finish().unwrap();
    assert_eq!(kill().pool_stats().unwrap().replaced, 2);
}

#[test]
fn killed_connection_under_the_test_runtime() {
    schema();
    let label = &unique("killed_under_runtime");
    let outcome = catch_unwind(|| {
        test("killed_runtime").run(|db: &mut MySqlSession| {
            insert(db.conn(), label);
            let id = db.conn().connection_id();
            other().query_drop(format!("KILL {id}")).unwrap();
        })
    });
    let text = panic_text(outcome.unwrap_err());
    assert!(
        text.contains("failed (its body finished without error)")
            && text.contains("connection was lost before the rollback")
            && text.contains("rolled back the open transaction")
            && !text.contains("passed")
            && !text.contains("Error {"),
        "{text}"
    );
    assert_eq!(committed(label), 0);
    // The following tests pass: a fresh session works.
    test("after_killed_runtime").run(|db: &mut MySqlSession| {
        insert(db.conn(), label);
        assert_eq!(visible(db.conn(), label), 1);
    });
    assert_eq!(committed(label), 0);
}

// ---------------------------------------------------------------- implicit commits

#[test]
fn create_table_mid_test_is_reported_as_an_implicit_commit() {
    schema();
    let label = &unique("implicit_commit_create_table");
    let table = &unique("vq_mysql_ddl_mid_test");
    let mut c = other();
    c.exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (label,))
        .unwrap();
    c.query_drop(format!("DROP TABLE IF EXISTS {table}"))
        .unwrap();
    let outcome = catch_unwind(|| {
        test("ddl").run(|db: &mut MySqlSession| {
            insert(db.conn(), label);
            db.conn()
                .query_drop(format!("CREATE TABLE {table} (v INT)"))
                .unwrap();
        })
    });
    let text = panic_text(outcome.unwrap_err());
    for needle in [
        "the rollback at its end failed",
        "committed",
        "PERMANENT",
        "nothing was rolled back",
        "setup",
        "DELETE",
        "postgres",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in: {text}");
    }
    assert!(!text.contains("rolled back to"), "{text}");
    // The error told the truth: the row was committed by the CREATE TABLE.
    assert_eq!(committed(label), 1);
    c.exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (label,))
        .unwrap();
    c.query_drop(format!("DROP TABLE IF EXISTS {table}"))
        .unwrap();

    // The following test is unaffected.
    test("after_ddl").run(|db: &mut MySqlSession| insert(db.conn(), label));
    assert_eq!(committed(label), 0);
}

#[test]
fn implicit_commit_inside_a_nested_block_fails_the_block() {
    schema();
    let label = &unique("implicit_commit_nested");
    let table = &unique("vq_mysql_truncate_me");
    let mut c = other();
    c.exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (label,))
        .unwrap();
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {table} (v INT) ENGINE=InnoDB"
    ))
    .unwrap();
    let mut db = MySqlSession::start("mysql").unwrap();
    insert(db.conn(), label);
    let block = db.checkpoint("inner", |db| {
        db.conn()
            .query_drop(format!("TRUNCATE TABLE {table}"))
            .unwrap()
    });
    assert!(matches!(block, Err(Error::StateLost { .. })), "{block:?}");
    // A nested checkpoint now notices the lost transaction instead of a silent no-op.
    let again = db.create_checkpoint("again");
    assert!(matches!(again, Err(Error::StateLost { .. })), "{again:?}");
    assert!(matches!(db.finish(), Err(Error::StateLost { .. })));
    assert_eq!(committed(label), 1, "the TRUNCATE committed the row");
    c.exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (label,))
        .unwrap();
    c.query_drop(format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn exec_refuses_implicit_commits_before_they_run() {
    schema();
    let label = &unique("exec_refuses");
    let mut c = other();
    c.query_drop("DROP TABLE IF EXISTS vq_mysql_never_created")
        .unwrap();
    test("exec_refuses").run(|db: &mut MySqlSession| {
        insert(db.conn(), label);
        for sql in [
            "CREATE TABLE vq_mysql_never_created (v INT)",
            "INSERT INTO vq_mysql_items (label) VALUES ('x'); TRUNCATE vq_mysql_items",
            "COMMIT",
        ] {
            let e = db.exec(sql).unwrap_err().to_string();
            assert!(e.contains("NOT run") && e.contains("commit"), "{e}");
        }
        db.exec("CREATE TEMPORARY TABLE vq_mysql_scratch (v INT); INSERT INTO vq_mysql_scratch VALUES (1)").unwrap();
        assert_eq!(visible(db.conn(), label), 1);
    });
    assert_eq!(committed(label), 0);
    assert_eq!(committed("x"), 0);
    let exists: Option<i64> = c
        .query_first("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'vq_mysql_never_created'")
        .unwrap();
    assert_eq!(exists, Some(0));
}

/// The bypasses a reviewer found: executable comments (mysqldump writes them), `--`
/// without a space, a string that ends early under NO_BACKSLASH_ESCAPES, and statements
/// whose text hides what they run. Each is refused, and the table survives.
#[test]
fn exec_reads_sql_as_the_server_does() {
    schema();
    let label = &unique("exec_reads_sql");
    let target = &unique("vq_mysql_exec_target");
    let mut c = other();
    c.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS {target} (v INT) ENGINE=InnoDB"
    ))
    .unwrap();
    let tricky = format!("{label}\\'; DROP TABLE {target}; -- ");
    test("exec_reads_sql").run(|db: &mut MySqlSession| {
        insert(db.conn(), label);
        for sql in [
            format!("/*!40000 ALTER TABLE {target} DISABLE KEYS */"),
            format!("/*M!100000 DROP TABLE {target} */"),
            format!("SELECT 1--1; DROP TABLE {target}"),
            format!("SET STATEMENT max_statement_time = 10 FOR DROP TABLE {target}"),
        ] {
            let e = db.exec(&sql).unwrap_err().to_string();
            assert!(e.contains("NOT run") && e.contains("commit"), "{sql}: {e}");
        }
        for sql in [
            format!("PREPARE s FROM 'DROP TABLE {target}'"),
            format!("EXECUTE IMMEDIATE 'DROP TABLE {target}'"),
            "CALL vq_mysql_no_such_procedure()".to_owned(),
            format!("IF 1 THEN DROP TABLE {target}; END IF"),
        ] {
            let e = db.exec(&sql).unwrap_err().to_string();
            assert!(e.contains("NOT run") && e.contains("conn()"), "{sql}: {e}");
        }
        // By default the backslash escapes the quote: one string, a harmless INSERT.
        let ambiguous = format!("INSERT INTO {ITEMS} (label) VALUES ('{tricky}')");
        db.exec(&ambiguous).unwrap();
        let inserted: Option<i64> = db
            .conn()
            .exec_first(
                format!("SELECT COUNT(*) FROM {ITEMS} WHERE label = ?"),
                (tricky.replace("\\'", "'"),),
            )
            .unwrap();
        assert_eq!(inserted, Some(1));
        // Under NO_BACKSLASH_ESCAPES the string ends at the backslash: the DROP would run.
        db.conn()
            .query_drop("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            .unwrap();
        let e = db.exec(&ambiguous).unwrap_err().to_string();
        assert!(e.contains("DROP TABLE"), "{e}");
        assert_eq!(visible(db.conn(), label), 1);
    });
    assert_eq!(committed(label), 0, "nothing was committed");
    let exists: Option<i64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (target,),
        )
        .unwrap();
    assert_eq!(exists, Some(1), "{target} was never dropped");
    c.query_drop(format!("DROP TABLE {target}")).unwrap();
}

// ---------------------------------------------------------------- session state

/// A test's session state (temporary tables, user and session variables, named locks,
/// the selected database) must not reach the next test on the same pooled connection.
#[test]
fn session_state_does_not_leak_into_the_next_test_on_the_same_connection() {
    schema();
    let state = || private("mysql_session_state");
    let lock = unique("vq_mysql_session_lock");
    let database: Option<String> = other().query_first("SELECT DATABASE()").unwrap();

    // Test A leaves everything behind it can.
    let mut db = state().name("leaves_state").open().unwrap();
    let first = db.conn().connection_id();
    db.conn()
        .query_drop(format!(
            "CREATE TEMPORARY TABLE {ITEMS} (shadow INT); INSERT INTO {ITEMS} VALUES (1)"
        ))
        .unwrap();
    db.conn()
        .query_drop("SET @vq_left_over = 'A', FOREIGN_KEY_CHECKS = 0, SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        .unwrap();
    let got: Option<i64> = db
        .conn()
        .exec_first("SELECT GET_LOCK(?, 0)", (&lock,))
        .unwrap();
    assert_eq!(got, Some(1));
    db.conn().query_drop("USE mysql").unwrap();
    db.finish().unwrap();

    // Test B, on the same connection, sees none of it.
    let mut db = state().name("sees_none").open().unwrap();
    assert_eq!(
        db.conn().connection_id(),
        first,
        "the same pooled connection"
    );
    let current: Option<String> = db.conn().query_first("SELECT DATABASE()").unwrap();
    assert_eq!(current, database, "the URL's database is selected again");
    db.conn()
        .query_drop(format!("SELECT label FROM {ITEMS} LIMIT 0"))
        .expect("the real table, not A's temporary table");
    let (variable, checks, mode): (Option<String>, i64, String) = db
        .conn()
        .query_first("SELECT @vq_left_over, @@FOREIGN_KEY_CHECKS, @@SESSION.sql_mode")
        .unwrap()
        .unwrap();
    assert_eq!(variable, None, "A's user variable is gone");
    assert_eq!(checks, 1, "foreign key checks are on again");
    assert!(!mode.contains("NO_BACKSLASH_ESCAPES"), "{mode}");
    match db
        .conn()
        .query_drop("INSERT INTO vq_mysql_fk_child (parent_id) VALUES (-1)")
    {
        Err(driver::Error::MySqlError(e)) => assert_eq!(e.code, 1452, "{e}"),
        other => panic!("a foreign key violation must fail: {other:?}"),
    }
    // A's named lock was released: an independent connection takes it at once.
    let mut c = other();
    let got: Option<i64> = c.exec_first("SELECT GET_LOCK(?, 0)", (&lock,)).unwrap();
    assert_eq!(got, Some(1), "A's GET_LOCK is still held");
    c.exec_drop("DO RELEASE_LOCK(?)", (&lock,)).unwrap();
    db.finish().unwrap();
    let stats = state().pool_stats().unwrap();
    assert_eq!((stats.opened, stats.replaced), (1, 0), "{stats:?}");
}

/// A `setup:` script that turns foreign key checks off (as a mysqldump header does,
/// `tests/sql/mysql_setup_state/`) runs on the pool's first connection, which then goes to
/// the first test: that test must still have them on.
#[test]
fn setup_script_session_state_does_not_reach_the_first_test() {
    schema();
    let setup_state = || private("mysql_setup_state");
    let mut db = setup_state().name("first").open().unwrap();
    let (checks, variable): (i64, Option<i64>) = db
        .conn()
        .query_first("SELECT @@FOREIGN_KEY_CHECKS, @vq_setup")
        .unwrap()
        .unwrap();
    assert_eq!((checks, variable), (1, None));
    assert!(db
        .conn()
        .query_drop("INSERT INTO vq_mysql_fk_child (parent_id) VALUES (-1)")
        .is_err());
    db.finish().unwrap();
    assert_eq!(setup_state().pool_stats().unwrap().opened, 1);
}

// ---------------------------------------------------------------- scripts and health

#[test]
fn execute_script_runs_every_statement_and_reports_a_later_error() {
    let table = &unique("vq_mysql_script");
    let mut m = standalone(MySql::from_url(&url()).unwrap());
    m.execute_script(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (v INT) ENGINE=InnoDB;\n\
         DELETE FROM {table};\n\
         INSERT INTO {table} VALUES (1), (2);"
    ))
    .unwrap();
    let n: Option<i64> = other()
        .query_first(format!("SELECT COUNT(*) FROM {table}"))
        .unwrap();
    assert_eq!(n, Some(2));
    let e = m
        .execute_script(&format!(
            "DELETE FROM {table}; SELECT * FROM vq_mysql_no_such_table"
        ))
        .unwrap_err();
    assert!(e.to_string().contains("vq_mysql_no_such_table"), "{e}");
    // The session state a script leaves (as a dump's header does) does not outlive it.
    m.execute_script("SET FOREIGN_KEY_CHECKS = 0, @vq_script = 1; CREATE TEMPORARY TABLE vq_mysql_script_tmp (v INT)")
        .unwrap();
    let (checks, variable): (i64, Option<i64>) = conn(&mut m)
        .query_first("SELECT @@FOREIGN_KEY_CHECKS, @vq_script")
        .unwrap()
        .unwrap();
    assert_eq!((checks, variable), (1, None));
    assert!(conn(&mut m)
        .query_drop("SELECT * FROM vq_mysql_script_tmp")
        .is_err());
    m.execute_script(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn health_check_is_a_real_round_trip() {
    let mut m = MySqlStateManager::from_url(&url()).unwrap();
    assert!(!m.health_check());
    m.connect().unwrap();
    assert!(m.health_check());
    let id = conn(&mut m).connection_id();
    other().query_drop(format!("KILL {id}")).unwrap();
    assert!(!m.health_check(), "a killed connection fails the reset");
    m.disconnect().unwrap();
}

/// Debug output of a connected manager (whose driver options hold the password) and of
/// its session never shows the password.
#[test]
fn debug_output_never_shows_the_password() {
    let special = special_user();
    let mut m = standalone(MySql::from_url(&special).unwrap());
    m.checkpoint("open").unwrap();
    let text = format!("{m:?} {m:#?} {:?} {:#?}", m.backend(), m.backend());
    for secret in ["p@ss:w/rd", "p%40ss%3Aw%2Frd", "p@ss"] {
        assert!(!text.contains(secret), "{secret:?} in {text}");
    }
    assert!(text.contains("vq_special:***@"), "{text}");
    assert!(text.contains("\"open\""), "{text}");
    m.discard("open").unwrap();

    let debug = || MySqlSession::builder().entry("mysql_debug").url(&special);
    let db = debug().name("debug").open().unwrap();
    let text = format!(
        "{db:?} {:?} {:?} {:?} {:?}",
        db.backend(),
        db.config(),
        debug(),
        debug().pool_stats().unwrap()
    );
    assert!(!text.contains("p@ss") && !text.contains("p%40ss"), "{text}");
    assert!(text.contains("vq_special:***@"), "{text}");
    db.finish().unwrap();
}

/// connect() on a manager whose connection died reconnects once the manager has noticed
/// the death: a failed operation, or a failed health check (which the pool runs before
/// every lease). A live connection is kept.
#[test]
fn connect_again_after_the_connection_was_killed() {
    schema();
    let label = &unique("reconnect");
    let mut m = standalone(MySql::from_url(&url()).unwrap());
    let first = conn(&mut m).connection_id();
    other().query_drop(format!("KILL {first}")).unwrap();
    let e = m.checkpoint("dead").unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    assert!(!m.is_connected());
    m.connect().unwrap();
    let second = conn(&mut m).connection_id();
    assert_ne!(second, first);
    assert!(m.is_connected() && m.checkpoints().is_empty());

    // Killed while idle: the health check notices (a real round trip); connect()
    // reconnects.
    other().query_drop(format!("KILL {second}")).unwrap();
    assert!(!m.health_check());
    m.connect().unwrap();
    assert_ne!(conn(&mut m).connection_id(), second);
    m.checkpoint("alive").unwrap();
    insert(conn(&mut m), label);
    assert_eq!(visible(conn(&mut m), label), 1);
    m.discard("alive").unwrap();
    assert_eq!(committed(label), 0);

    // A live connection is kept.
    let third = conn(&mut m).connection_id();
    m.connect().unwrap();
    assert_eq!(conn(&mut m).connection_id(), third);
    m.disconnect().unwrap();
}

#[test]
fn session_type_is_checked() {
    let e = Session::<venomqa::memory::MemoryStateManager>::start("mysql").unwrap_err();
    assert!(matches!(e, Error::SessionType { .. }), "{e}");
}

// ---------------------------------------------------------------- XA mode

#[test]
fn xa_mode_makes_the_server_refuse_implicit_commits_before_they_run() {
    schema();
    let label = &unique("xa_refuses");
    let mut c = other();
    c.query_drop("DROP TABLE IF EXISTS vq_mysql_xa_never")
        .unwrap();
    let xa = || private("mysql_xa");
    assert_eq!(
        xa().config()
            .unwrap()
            .options::<venomqa::mysql::MySqlOptions>()
            .unwrap()
            .transaction,
        TransactionMode::Xa
    );
    let mut db = xa().name("xa").open().unwrap();
    insert(db.conn(), label);
    for sql in [
        "CREATE TABLE vq_mysql_xa_never (v INT)",
        "TRUNCATE TABLE vq_mysql_items",
        "COMMIT",
        "START TRANSACTION",
        "LOCK TABLES vq_mysql_items WRITE",
    ] {
        match db.conn().query_drop(sql) {
            Err(driver::Error::MySqlError(e)) => assert_eq!(e.code, 1399, "{sql}: {e}"),
            other => panic!("{sql}: expected XAER_RMFAIL, got {other:?}"),
        }
    }
    // Savepoints work inside the XA transaction.
    db.checkpoint("inner", |db| insert(db.conn(), label))
        .unwrap();
    assert_eq!(visible(db.conn(), label), 1);
    db.create_checkpoint("explicit").unwrap();
    insert(db.conn(), label);
    db.rollback("explicit").unwrap();
    assert_eq!(visible(db.conn(), label), 1);
    assert_eq!(committed(label), 0);
    db.finish().unwrap();
    assert_eq!(committed(label), 0, "rolled back");
    let exists: Option<i64> = c
        .query_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'vq_mysql_xa_never'",
        )
        .unwrap();
    assert_eq!(exists, Some(0), "the CREATE TABLE never ran");

    // commit() and the outermost release commit XA transactions too.
    let kept = &unique("xa_commit_kept");
    c.exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (kept,))
        .unwrap();
    let mut db = xa().name("xa_commit").open().unwrap();
    insert(db.conn(), kept);
    db.commit().unwrap();
    insert(db.conn(), label);
    db.finish().unwrap();
    assert_eq!((committed(kept), committed(label)), (1, 0));
    let mut m = standalone(
        MySql::from_url(&url())
            .unwrap()
            .transaction_mode(TransactionMode::Xa),
    );
    m.checkpoint("outer").unwrap();
    conn(&mut m)
        .exec_drop(format!("DELETE FROM {ITEMS} WHERE label = ?"), (kept,))
        .unwrap();
    m.release("outer").unwrap();
    assert_eq!(committed(kept), 0);
    assert_eq!(xa().pool_stats().unwrap().replaced, 0);
}

// ---------------------------------------------------------------- errors

/// A driver error reaches the test as the error's source: a duplicate key (1062) from
/// `exec`, matched through `Error::driver` and through `source()` + downcast.
#[test]
fn a_duplicate_key_error_is_the_drivers_own() {
    test("duplicate_key").run(|db: &mut MySqlSession| {
        db.exec("CREATE TEMPORARY TABLE vq_mysql_unique (k INT PRIMARY KEY)")
            .unwrap();
        db.exec("INSERT INTO vq_mysql_unique VALUES (1)").unwrap();
        let e = db
            .exec("INSERT INTO vq_mysql_unique VALUES (1)")
            .unwrap_err();
        assert!(matches!(e, Error::Backend { .. }), "{e}");
        match e.driver::<driver::Error>() {
            Some(driver::Error::MySqlError(server)) => assert_eq!(server.code, 1062, "{server}"),
            other => panic!("expected the server's duplicate key error, got {other:?}"),
        }
        let source = e.source().expect("the driver's error is the source");
        match source.downcast_ref::<driver::Error>() {
            Some(driver::Error::MySqlError(server)) => assert_eq!(server.code, 1062, "{server}"),
            other => panic!("expected the driver's error as the source, got {other:?}"),
        }
        check_shape(&e.to_string());
        // The failed statement did not end the test's transaction.
        db.exec("INSERT INTO vq_mysql_unique VALUES (2)").unwrap();
        assert_eq!(db.checkpoints(), [venomqa::ROOT_CHECKPOINT]);
    });
}

/// One line, at most 300 characters, no runs of spaces.
fn check_shape(text: &str) {
    println!("{} chars: {text}", text.len());
    assert!(!text.contains('\n') && !text.contains("  "), "{text}");
    assert!(text.len() <= 300, "{} chars: {text}", text.len());
}

/// The backend's main errors, each produced for real, are one short line.
#[test]
fn main_error_messages_are_one_short_line() {
    schema();
    let mut texts = Vec::new();
    // An implicit commit inside a test, found at the next checkpoint operation.
    let table = unique("vq_mysql_shape_ddl");
    let mut db = test("shape").open().unwrap();
    db.conn()
        .query_drop(format!("CREATE TABLE IF NOT EXISTS {table} (v INT)"))
        .unwrap();
    let e = db.create_checkpoint("after_ddl").unwrap_err();
    assert!(matches!(e, Error::StateLost { .. }), "{e}");
    texts.push(e.to_string());
    let e = db.finish().unwrap_err();
    assert!(matches!(e, Error::StateLost { .. }), "{e}");
    texts.push(e.to_string());
    other().query_drop(format!("DROP TABLE {table}")).unwrap();
    // exec() refusals, of both kinds.
    test("shape_exec").run(|db: &mut MySqlSession| {
        for sql in [
            "TRUNCATE TABLE vq_mysql_items",
            "CALL vq_mysql_no_such_procedure()",
        ] {
            let e = db.exec(sql).unwrap_err();
            assert!(matches!(e, Error::Unsupported { .. }), "{e}");
            texts.push(e.to_string());
        }
    });
    // A killed connection.
    let mut m = standalone(MySql::from_url(&url()).unwrap());
    m.checkpoint("venomqa_root").unwrap();
    let id = conn(&mut m).connection_id();
    other().query_drop(format!("KILL {id}")).unwrap();
    let e = m.discard("venomqa_root").unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    texts.push(e.to_string());
    // A server that refuses the connection, and a URL that is not one.
    let e = MySqlStateManager::from_url("mysql://root:s3cret@127.0.0.1:1/test")
        .unwrap()
        .connect()
        .unwrap_err();
    texts.push(e.to_string());
    texts.push(
        MySqlStateManager::from_url("mysql://root:s3cret@127.0.0.1/test?conect_timeout_ms=1")
            .unwrap_err()
            .to_string(),
    );
    for text in &texts {
        check_shape(text);
        assert!(!text.contains("s3cret"), "{text}");
    }
}

// ---------------------------------------------------------------- conformance

/// The checkpoint-semantics suite sees the data through `vq_mysql_probe`, a table of one
/// BIGINT column that the `mysql` entry's setup creates.
struct Probe;

fn probe_conn(m: &mut dyn StateManager) -> venomqa::Result<&mut Conn> {
    Ok(m.connection::<MySql>()?.driver())
}

impl venomqa::conformance::Probe for Probe {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
        probe_conn(m)?
            .exec_drop("INSERT INTO vq_mysql_probe (v) VALUES (?)", (value,))
            .map_err(|e| Error::backend("mysql", "probe insert", e))
    }

    fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
        probe_conn(m)?
            .query("SELECT v FROM vq_mysql_probe")
            .map_err(|e| Error::backend("mysql", "probe read", e))
    }
}

#[test]
fn conformance() {
    venomqa::conformance::run("mysql", Probe);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    venomqa::conformance::faults(MySql::from_url(&url()).unwrap());
}
