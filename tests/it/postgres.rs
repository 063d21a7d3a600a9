#![cfg(feature = "postgres")]
//! PostgreSQL backend tests against the real server (default
//! postgres://postgres@127.0.0.1:5432/test, or VENOMQA_POSTGRES_URL).
//!
//! Every claim about the database is read back through a second, independent connection
//! (`verifier()`), never through the session's own. Tests whose pool statistics or
//! connection state matter run on a pool of their own: pools are keyed by URL, so a URL
//! with its own `application_name` gets one. The checkpoint rules themselves (nesting,
//! rollback after pass / Err / panic, hostile names, parallel isolation) are checked by
//! `venomqa::conformance` at the end of the file.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use venomqa::pool::PoolStats;
use venomqa::postgres::driver::error::SqlState;
use venomqa::postgres::driver::{self, Client, NoTls};
use venomqa::postgres::{Postgres, PostgresSession, PostgresStateManager, DEFAULT_URL};
use venomqa::{
    venom_test, BackendConfig, Error, Manager, SessionBuilder, StateManager, TestOutcome,
    ROOT_CHECKPOINT,
};

/// The shared tables of the session tests, and the conformance suite's probe table (one
/// BIGINT column). Created once per process by the `postgres` entry's setup, under an
/// advisory lock, because other test processes (nextest) create them at the same time.
const SCHEMA: &str = "BEGIN; SELECT pg_advisory_xact_lock(7345001); \
    CREATE TABLE IF NOT EXISTS vq_pg_items (id bigserial PRIMARY KEY, label text NOT NULL, note text); \
    CREATE TABLE IF NOT EXISTS vq_pg_ddl_target (v int); \
    CREATE TABLE IF NOT EXISTS vq_pg_probe (v bigint NOT NULL); \
    COMMIT";

venomqa::register_setup!("postgres", |m: &mut dyn StateManager| m
    .execute_script(SCHEMA));

fn url() -> String {
    std::env::var("VENOMQA_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// The URL with an `application_name` of its own, so its pool is the test's own.
fn own_url(app: &str) -> String {
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}application_name={app}")
}

/// A second, independent connection that sees only committed data.
fn verifier() -> Client {
    static SCHEMA_READY: OnceLock<()> = OnceLock::new();
    let mut client = Client::connect(&url(), NoTls).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL server at {} is needed for these tests: {e}",
            url()
        )
    });
    SCHEMA_READY.get_or_init(|| client.batch_execute(SCHEMA).expect("creating vq_pg_items"));
    client
}

fn unique(what: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn count(client: &mut Client, label: &str) -> i64 {
    client
        .query_one(
            "SELECT COUNT(*) FROM vq_pg_items WHERE label = $1",
            &[&label],
        )
        .unwrap()
        .get(0)
}

fn count_like(client: &mut Client, prefix: &str) -> i64 {
    client
        .query_one(
            "SELECT COUNT(*) FROM vq_pg_items WHERE label LIKE $1 || '%'",
            &[&prefix],
        )
        .unwrap()
        .get(0)
}

fn insert(client: &mut Client, label: &str) {
    client
        .execute("INSERT INTO vq_pg_items (label) VALUES ($1)", &[&label])
        .unwrap();
}

fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

/// The server-side state of connection `pid` (`idle`, `idle in transaction`, ...), or
/// `None` when it no longer exists.
/// The state of backend `pid`, once it has settled: a backend sends an error to its client
/// before it reports itself idle, so right after an error it may still read "active".
fn state(verifier: &mut Client, pid: i32) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let state: Option<String> = verifier
            .query_opt("SELECT state FROM pg_stat_activity WHERE pid = $1", &[&pid])
            .unwrap()
            .map(|r| r.get(0));
        if state.as_deref() != Some("active") || std::time::Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

fn terminate(verifier: &mut Client, pid: i32) {
    let killed: bool = verifier
        .query_one("SELECT pg_terminate_backend($1, 5000)", &[&pid])
        .unwrap()
        .get(0);
    assert!(killed, "pg_terminate_backend({pid})");
}

fn table_exists(verifier: &mut Client, name: &str) -> bool {
    verifier
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .unwrap()
        .get(0)
}

/// A test on the pool of `app`, as `#[venom_test(backend = "postgres", url = ..)]` runs it.
fn test(app: &str) -> SessionBuilder<PostgresStateManager> {
    PostgresSession::builder()
        .backend("postgres")
        .url(own_url(app))
        .name(app)
}

/// Runs `body` exactly as `#[venom_test(backend = "postgres")]` does, on the pool of `app`.
fn run<R: TestOutcome>(app: &str, body: impl FnOnce(&mut PostgresSession) -> R) -> R {
    test(app).run(body)
}

/// The counters of the pool `run(app, ..)` leases from.
fn stats(app: &str) -> PoolStats {
    test(app).pool_stats().unwrap()
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The backend for the test server, default options.
fn pg() -> Postgres {
    Postgres::from_url(&url()).unwrap()
}

/// A standalone manager of `backend`, connected.
fn connected(backend: Postgres) -> PostgresStateManager {
    Manager::open(backend).unwrap()
}

fn client(m: &mut PostgresStateManager) -> &mut Client {
    m.connection().unwrap()
}

/// The SQLSTATE of the `postgres::Error` behind a venomqa error.
fn sqlstate(e: &Error) -> Option<&SqlState> {
    e.driver::<driver::Error>().and_then(driver::Error::code)
}

/// `e`'s message, after checking it is one line of at most 300 characters without runs
/// of spaces.
fn shape(e: &Error) -> String {
    let text = e.to_string();
    assert!(
        !text.contains('\n') && !text.contains("  "),
        "not one line: {text:?}"
    );
    assert!(text.len() <= 300, "{} characters: {text}", text.len());
    text
}

// ---------------------------------------------------------------------------------------
// Rollback after pass, Err and panic, proven from a second connection.

#[test]
fn rollback_after_a_passing_test() {
    let mut v = verifier();
    let label = unique("pass");
    let mut pid = 0;
    run("vq_pg_pass", |db: &mut PostgresSession| {
        pid = backend_pid(db.client());
        insert(db.client(), &label);
        assert_eq!(count(db.client(), &label), 1);
        assert_eq!(
            count(&mut v, &label),
            0,
            "uncommitted, so invisible to others"
        );
        assert_eq!(state(&mut v, pid).as_deref(), Some("idle in transaction"));
    });
    assert_eq!(count(&mut v, &label), 0);
    // The transaction really ended (not left open): the pooled connection is idle.
    assert_eq!(state(&mut v, pid).as_deref(), Some("idle"));
}

#[test]
fn rollback_after_a_test_returning_err() {
    let mut v = verifier();
    let label = unique("err");
    let mut pid = 0;
    let outcome = run(
        "vq_pg_err",
        |db: &mut PostgresSession| -> Result<(), String> {
            pid = backend_pid(db.client());
            insert(db.client(), &label);
            assert_eq!(count(db.client(), &label), 1);
            Err("the test failed".into())
        },
    );
    assert_eq!(outcome, Err("the test failed".to_owned()));
    assert_eq!(count(&mut v, &label), 0);
    assert_eq!(state(&mut v, pid).as_deref(), Some("idle"));
}

#[test]
fn rollback_after_a_panicking_test() {
    let mut v = verifier();
    let label = unique("panic");
    let mut pid = 0;
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run::<()>("vq_pg_panic", |db: &mut PostgresSession| {
            pid = backend_pid(db.client());
            insert(db.client(), &label);
            assert_eq!(count(db.client(), &label), 1);
            panic!("boom in the test body");
        })
    }));
    let payload = caught.expect_err("the panic must reach the caller");
    assert_eq!(panic_text(payload.as_ref()), "boom in the test body");
    assert_eq!(count(&mut v, &label), 0);
    assert_eq!(state(&mut v, pid).as_deref(), Some("idle"));
    // The manager went back to the pool healthy: the next test reuses the connection.
    let mut again = 0;
    run("vq_pg_panic", |db: &mut PostgresSession| {
        again = backend_pid(db.client())
    });
    assert_eq!(again, pid);
    assert_eq!(stats("vq_pg_panic").replaced, 0);
}

#[test]
fn ddl_is_rolled_back() {
    let mut v = verifier();
    let table = format!("vq_pg_ddl_{}", std::process::id());
    let schema = format!("vq_pg_ddl_schema_{}", std::process::id());
    run("vq_pg_ddl", |db: &mut PostgresSession| {
        let c = db.client();
        c.batch_execute(&format!(
            "CREATE TABLE {table} (id serial PRIMARY KEY, v text); CREATE INDEX ON {table} (v); \
             INSERT INTO {table} (v) VALUES ('x'); CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (v int); \
             ALTER TABLE vq_pg_ddl_target ADD COLUMN vq_pg_ddl_extra int"
        ))
        .unwrap();
        let n: i64 = c
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 1);
        assert!(!table_exists(&mut v, &table), "not visible before commit");
    });
    assert!(!table_exists(&mut v, &table));
    assert!(!table_exists(&mut v, &format!("{schema}.t")));
    let schemas: i64 = v
        .query_one(
            "SELECT COUNT(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .unwrap()
        .get(0);
    assert_eq!(schemas, 0);
    let extra: i64 = v
        .query_one(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = 'vq_pg_ddl_target' AND column_name = 'vq_pg_ddl_extra'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(extra, 0);
}

// ---------------------------------------------------------------------------------------
// Checkpoints inside a test.

#[test]
fn standalone_manager_release_of_the_outermost_checkpoint_commits() {
    let mut v = verifier();
    let label = unique("commit");
    let mut m = connected(pg());
    m.checkpoint("a").unwrap();
    insert(client(&mut m), &label);
    m.checkpoint("b").unwrap();
    insert(client(&mut m), &label);
    m.release("b").unwrap();
    assert_eq!(
        count(&mut v, &label),
        0,
        "releasing an inner checkpoint does not commit"
    );
    m.release("a").unwrap();
    assert_eq!(
        count(&mut v, &label),
        2,
        "releasing the outermost one commits"
    );
    assert!(m.checkpoints().is_empty());
    v.execute("DELETE FROM vq_pg_items WHERE label = $1", &[&label])
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// An aborted transaction (a failed statement).

#[venom_test(backend = "postgres")]
fn a_failed_statement_inside_a_checkpoint_block_leaves_the_test_usable(db: &mut PostgresSession) {
    let mut v = verifier();
    let label = unique("aborted-block");
    insert(db.client(), &label);
    db.checkpoint("risky", |db| {
        let e = db
            .client()
            .execute("INSERT INTO vq_pg_no_such_table VALUES (1)", &[])
            .unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE));
        // PostgreSQL's own rule: the transaction is aborted until a rollback.
        let e = db.client().execute("SELECT 1", &[]).unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    })
    .expect("ending the block rolls back to its savepoint, which clears the aborted state");
    insert(db.client(), &label);
    assert_eq!(
        count(db.client(), &label),
        2,
        "the test's earlier work survived"
    );
    db.checkpoint("after", |db| insert(db.client(), &label))
        .unwrap();
    assert_eq!(count(&mut v, &label), 0);
}

#[test]
fn a_test_that_ignores_a_failed_statement_gets_errors_and_is_still_rolled_back() {
    let mut v = verifier();
    let label = unique("aborted");
    let mut pid = 0;
    run("vq_pg_aborted", |db: &mut PostgresSession| {
        pid = backend_pid(db.client());
        insert(db.client(), &label);
        assert!(db.client().execute("SELECT 1/0", &[]).is_err());
        let e = db.client().execute("SELECT 1", &[]).unwrap_err();
        assert_eq!(e.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        // venomqa refuses too, and says how to recover.
        let e = db.create_checkpoint("after_failure").unwrap_err();
        assert!(
            shape(&e).contains("roll back to a checkpoint made before"),
            "{e}"
        );
        assert_eq!(sqlstate(&e), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        assert_eq!(db.checkpoints(), [ROOT_CHECKPOINT]);
        // Rolling back to a checkpoint made before the failure recovers.
        db.rollback(ROOT_CHECKPOINT).unwrap();
        insert(db.client(), &label);
        assert_eq!(count(db.client(), &label), 1);
        // And the test ends in the aborted state: the end-of-test rollback still works.
        assert!(db.client().execute("SELECT 1/0", &[]).is_err());
    });
    assert_eq!(count(&mut v, &label), 0);
    assert_eq!(state(&mut v, pid).as_deref(), Some("idle"));
    assert_eq!(
        stats("vq_pg_aborted").replaced,
        0,
        "the connection was healthy again"
    );
}

#[test]
fn releasing_the_outermost_checkpoint_of_an_aborted_transaction_fails_instead_of_rolling_back_silently(
) {
    let mut v = verifier();
    let label = unique("aborted-commit");
    let mut m = connected(pg());
    m.checkpoint("a").unwrap();
    insert(client(&mut m), &label);
    assert!(client(&mut m).execute("SELECT 1/0", &[]).is_err());
    // A bare COMMIT would report success and roll back; venomqa reports the failure.
    let e = m.release("a").unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e}");
    assert!(shape(&e).contains("25P02"), "{e}");
    assert_eq!(sqlstate(&e), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    assert_eq!(m.checkpoints(), ["a"]);
    assert_eq!(count(&mut v, &label), 0);
    m.rollback("a").unwrap();
    insert(client(&mut m), &label);
    m.release("a").unwrap();
    assert_eq!(
        count(&mut v, &label),
        1,
        "after recovering, release commits"
    );
    v.execute("DELETE FROM vq_pg_items WHERE label = $1", &[&label])
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// The transaction ended behind venomqa's back.

#[test]
fn a_commit_inside_the_test_is_reported_not_hidden() {
    let mut v = verifier();
    for (app, how) in [
        ("vq_pg_commit_sql", "sql"),
        ("vq_pg_commit_txn", "transaction()"),
    ] {
        let label = unique("committed");
        let caught = catch_unwind(AssertUnwindSafe(|| {
            run(app, |db: &mut PostgresSession| {
                if how == "sql" {
                    insert(db.client(), &label);
                    db.client().batch_execute("COMMIT").unwrap();
                } else {
                    // BEGIN inside the test's transaction is a no-op; its COMMIT ends ours.
                    let mut t = db.client().transaction().unwrap();
                    t.execute("INSERT INTO vq_pg_items (label) VALUES ($1)", &[&label])
                        .unwrap();
                    t.commit().unwrap();
                }
            })
        }));
        let text = panic_text(
            caught
                .expect_err("a lost transaction must fail the test")
                .as_ref(),
        );
        assert!(
            text.contains("the rollback at its end failed"),
            "{how}: {text}"
        );
        assert!(
            text.contains("found the test's transaction gone") && text.contains("COMMIT, ROLLBACK"),
            "{how}: {text}"
        );
        assert_eq!(
            count(&mut v, &label),
            1,
            "{how}: the COMMIT really made it permanent"
        );
        v.execute("DELETE FROM vq_pg_items WHERE label = $1", &[&label])
            .unwrap();
        assert_eq!(stats(app).replaced, 1, "{how}: the manager was not reused");
    }
}

#[test]
fn an_error_on_a_nested_checkpoint_leaves_the_test_transaction_open() {
    let mut v = verifier();
    let label = unique("nested-err");
    let mut pid = 0;
    run("vq_pg_nested_err", |db: &mut PostgresSession| {
        pid = backend_pid(db.client());
        db.create_checkpoint("x").unwrap();
        insert(db.client(), &label);
        // The code under test releases a savepoint that is venomqa's checkpoint.
        db.client().batch_execute("RELEASE SAVEPOINT x").unwrap();
        let e = db.rollback("x").unwrap_err();
        // The test ignores the error and writes on: nothing may autocommit.
        let _ = db
            .client()
            .execute("INSERT INTO vq_pg_items (label) VALUES ($1)", &[&label]);
        assert_eq!(
            count(&mut v, &label),
            0,
            "a write after the failed rollback was committed"
        );
        // Not StateLost: the test's transaction is still there, so the connection stays.
        assert!(matches!(e, Error::Backend { .. }), "{e}");
        assert!(shape(&e).contains("still open"), "{e}");
        assert_eq!(sqlstate(&e), Some(&SqlState::S_E_INVALID_SPECIFICATION));
        assert_eq!(
            state(&mut v, pid).as_deref(),
            Some("idle in transaction (aborted)")
        );
        // Rolling back to the root recovers, and later writes are still the test's own.
        db.rollback(ROOT_CHECKPOINT).unwrap();
        insert(db.client(), &label);
        insert(db.client(), &label);
        assert_eq!(count(db.client(), &label), 2);
        assert_eq!(count(&mut v, &label), 0);
    });
    assert_eq!(
        count(&mut v, &label),
        0,
        "the end-of-test rollback undid everything"
    );
    assert_eq!(state(&mut v, pid).as_deref(), Some("idle"));
    assert_eq!(stats("vq_pg_nested_err").replaced, 0);
}

#[test]
fn session_state_does_not_leak_into_the_next_test_on_the_connection() {
    let mut v = verifier();
    // A pool of one, so both tests get the same connection; its URL sets a startup
    // option that the cleanup must keep.
    let app = "vq_pg_session_state";
    let url = format!("{}&options=-c%20statement_timeout%3D4321", own_url(app));
    let test = |name: &str| {
        PostgresSession::builder()
            .entry("postgres_one")
            .url(url.clone())
            .name(name)
    };
    assert_eq!(test("a").config().unwrap().pool_size, Some(1));
    let key = 7_345_000_000_i64 + i64::from(std::process::id());
    let show = |c: &mut Client, setting: &str| -> String {
        c.query_one(&format!("SHOW {setting}"), &[]).unwrap().get(0)
    };

    let mut a = test("a").open().unwrap();
    let pid = backend_pid(a.client());
    assert_eq!(show(a.client(), "statement_timeout"), "4321ms");
    let default_path = show(a.client(), "search_path");
    a.client()
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({key}); SET search_path TO pg_catalog; SET statement_timeout = 3600000; \
             SET application_name = 'changed'; CREATE TEMP TABLE vq_pg_items (label text); \
             INSERT INTO pg_temp.vq_pg_items VALUES ('shadow')"
        ))
        .unwrap();
    let held: bool = v
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get(0);
    assert!(!held, "test A holds the lock");
    a.finish().unwrap();

    let mut b = test("b").open().unwrap();
    assert_eq!(backend_pid(b.client()), pid, "the same pooled connection");
    assert_eq!(show(b.client(), "search_path"), default_path);
    assert_eq!(
        show(b.client(), "statement_timeout"),
        "4321ms",
        "the URL's option is kept"
    );
    assert_eq!(show(b.client(), "application_name"), app);
    let temp: Option<String> = b
        .client()
        .query_one("SELECT to_regclass('pg_temp.vq_pg_items')::text", &[])
        .unwrap()
        .get(0);
    assert_eq!(temp, None, "the temporary table is gone");
    assert_eq!(
        count(b.client(), "shadow"),
        0,
        "vq_pg_items is the real table"
    );
    let locks: i64 = b
        .client()
        .query_one(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(locks, 0);
    b.finish().unwrap();

    // Another connection can take the lock test A took.
    let got: bool = v
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .unwrap()
        .get(0);
    assert!(got, "the advisory lock of test A was released");
    v.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    assert_eq!(test("stats").pool_stats().unwrap().opened, 1);
}

// ---------------------------------------------------------------------------------------
// Parallel tests.

#[test]
fn thirty_two_parallel_sessions_each_see_only_their_own_row() {
    let mut v = verifier();
    let prefix = unique("parallel");
    // A pool of 32 and a barrier: all 32 transactions are open at the same time.
    let test = || {
        PostgresSession::builder()
            .entry("postgres_wide")
            .url(own_url("vq_pg_parallel"))
            .name("parallel")
    };
    assert_eq!(test().config().unwrap().pool_size, Some(32));
    let barrier = Arc::new(Barrier::new(32));
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let (barrier, prefix) = (barrier.clone(), prefix.clone());
            std::thread::spawn(move || {
                let mut db = test().open().unwrap();
                let label = format!("{prefix}-{i}");
                insert(db.client(), &label);
                barrier.wait();
                let own = count(db.client(), &label);
                let all = count_like(db.client(), &prefix);
                barrier.wait();
                db.finish().unwrap();
                (own, all)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(
            t.join().unwrap(),
            (1, 1),
            "each session sees its own row and no other"
        );
    }
    assert_eq!(count_like(&mut v, &prefix), 0);
    let stats = test().pool_stats().unwrap();
    assert_eq!((stats.opened, stats.replaced, stats.idle), (32, 0, 32));
}

#[test]
fn thirty_two_threads_starting_sessions_on_the_default_pool() {
    let mut v = verifier();
    let prefix = unique("started");
    let threads: Vec<_> = (0..32)
        .map(|i| {
            let prefix = prefix.clone();
            std::thread::spawn(move || {
                let mut db = PostgresSession::start("postgres").unwrap();
                let label = format!("{prefix}-{i}");
                insert(db.client(), &label);
                let seen = (count(db.client(), &label), count_like(db.client(), &prefix));
                db.finish().unwrap();
                seen
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), (1, 1));
    }
    assert_eq!(count_like(&mut v, &prefix), 0);
}

// ---------------------------------------------------------------------------------------
// reset()

/// Serializes the test holding it with the same test in other processes (two runs of the
/// suite against one server, CI shards): the tests below drop and recreate schemas and
/// tables with fixed names. The session advisory lock lives as long as `v`'s connection,
/// so it is released when the test ends, even by a panic.
fn exclusive(v: &mut Client, test: &str) {
    v.execute("SELECT pg_advisory_lock(7345002, hashtext($1))", &[&test])
        .unwrap();
}

/// Drops and recreates `schema` with `ddl` (committed, through the verifier).
fn fresh_schema(v: &mut Client, schema: &str, ddl: &str) {
    v.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}; {ddl}; RESET search_path"
    ))
    .unwrap();
}

fn rows(v: &mut Client, table: &str) -> i64 {
    v.query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

#[test]
fn reset_with_foreign_keys_never_empties_an_excluded_table() {
    let mut v = verifier();
    exclusive(
        &mut v,
        "reset_with_foreign_keys_never_empties_an_excluded_table",
    );
    let s = "vq_pg_reset_fk";
    let fill = "INSERT INTO vq_pg_reset_fk.parent (name) VALUES ('p1'), ('p2'); \
                INSERT INTO vq_pg_reset_fk.child (parent_id) VALUES (1), (2); \
                INSERT INTO vq_pg_reset_fk.audit (parent_id) VALUES (1); \
                INSERT INTO vq_pg_reset_fk.keep (v) VALUES ('kept')";
    fresh_schema(
        &mut v,
        s,
        "CREATE TABLE parent (id serial PRIMARY KEY, name text); \
         CREATE TABLE child (id serial PRIMARY KEY, parent_id int REFERENCES parent (id)); \
         CREATE TABLE audit (id serial PRIMARY KEY, parent_id int CONSTRAINT audit_parent_fk REFERENCES parent (id)); \
         CREATE TABLE keep (v text)",
    );
    v.batch_execute(fill).unwrap();
    let counts =
        |v: &mut Client| ["parent", "child", "audit", "keep"].map(|t| rows(v, &format!("{s}.{t}")));

    // An excluded table references a reset table: refuse, naming both, change nothing.
    let mut m = connected(pg().schemas([s]).exclude_tables(["audit", "keep"]));
    let e = shape(&m.reset().unwrap_err());
    assert!(
        e.contains("vq_pg_reset_fk.audit references vq_pg_reset_fk.parent"),
        "{e}"
    );
    assert!(
        e.contains("audit_parent_fk") && e.contains("exclude_tables"),
        "{e}"
    );
    assert!(e.contains("nothing was changed"), "{e}");
    assert_eq!(counts(&mut v), [2, 2, 1, 1]);

    // Same through tables_to_reset: audit is outside the chosen set.
    let mut m = connected(pg().schemas([s]).tables_to_reset(["parent", "child"]));
    let e = shape(&m.reset().unwrap_err());
    assert!(
        e.contains("audit") && e.contains("not in tables_to_reset"),
        "{e}"
    );
    assert_eq!(counts(&mut v), [2, 2, 1, 1]);

    // Excluding a table nothing references works; identities restart.
    let mut m = connected(pg().schemas([s]).exclude_tables(["keep"]));
    m.checkpoint("open").unwrap(); // reset ends an open transaction first
    m.reset().unwrap();
    assert!(m.checkpoints().is_empty());
    assert_eq!(counts(&mut v), [0, 0, 0, 1]);
    let id: i32 = v
        .query_one(
            "INSERT INTO vq_pg_reset_fk.parent (name) VALUES ('again') RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(id, 1, "RESTART IDENTITY");

    // Only the chosen tables (a child alone may be emptied).
    v.batch_execute("TRUNCATE vq_pg_reset_fk.parent, vq_pg_reset_fk.child, vq_pg_reset_fk.audit RESTART IDENTITY")
        .unwrap();
    v.batch_execute(fill).unwrap();
    let mut m = connected(pg().schemas([s]).tables_to_reset(["vq_pg_reset_fk.child"]));
    m.reset().unwrap();
    assert_eq!(counts(&mut v), [2, 0, 1, 2]);

    // A name that matches no table is an error, not a silent no-op.
    let mut m = connected(pg().schemas([s]).tables_to_reset(["chidl"]));
    let e = shape(&m.reset().unwrap_err());
    assert!(e.contains("\"chidl\""), "{e}");
    assert_eq!(counts(&mut v), [2, 0, 1, 2]);
    v.batch_execute(&format!("DROP SCHEMA {s} CASCADE"))
        .unwrap();
}

#[test]
fn two_schemas() {
    let mut v = verifier();
    exclusive(&mut v, "two_schemas");
    let (a, b, c) = ("vq_pg_two_a", "vq_pg_two_b", "vq_pg_two_c");
    for s in [a, b, c] {
        fresh_schema(
            &mut v,
            s,
            "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('x'), ('y')",
        );
    }
    let refill = |v: &mut Client| {
        for s in [a, b, c] {
            v.batch_execute(&format!(
                "TRUNCATE {s}.t RESTART IDENTITY; INSERT INTO {s}.t (v) VALUES ('x'), ('y')"
            ))
            .unwrap();
        }
    };
    let counts = |v: &mut Client| [a, b, c].map(|s| rows(v, &format!("{s}.t")));

    // Isolation spans schemas.
    let mut m = connected(pg().schemas([a, b]));
    m.checkpoint("t").unwrap();
    client(&mut m)
        .batch_execute(
            "DELETE FROM vq_pg_two_a.t; DELETE FROM vq_pg_two_b.t; DELETE FROM vq_pg_two_c.t",
        )
        .unwrap();
    m.discard("t").unwrap();
    assert_eq!(counts(&mut v), [2, 2, 2]);

    // reset() covers both chosen schemas (same table name in each), not the third.
    m.reset().unwrap();
    assert_eq!(counts(&mut v), [0, 0, 2]);

    // A schema-qualified name picks one of them; a bare name matches in every chosen schema.
    refill(&mut v);
    let mut m = connected(pg().schemas([a, b]).tables_to_reset(["vq_pg_two_b.t"]));
    m.reset().unwrap();
    assert_eq!(counts(&mut v), [2, 0, 2]);
    refill(&mut v);
    let mut m = connected(pg().schemas([a, b]).tables_to_reset(["t"]));
    m.reset().unwrap();
    assert_eq!(counts(&mut v), [0, 0, 2]);

    // A table in a schema reset() does not cover references a reset table: refused.
    refill(&mut v);
    v.batch_execute("CREATE TABLE vq_pg_two_c.r (a_id int REFERENCES vq_pg_two_a.t (id)); INSERT INTO vq_pg_two_c.r VALUES (1)")
        .unwrap();
    let mut m = connected(pg().schemas([a, b]));
    let e = shape(&m.reset().unwrap_err());
    assert!(
        e.contains("vq_pg_two_c.r references vq_pg_two_a.t")
            && e.contains("schema reset() does not cover"),
        "{e}"
    );
    assert_eq!(counts(&mut v), [2, 2, 2]);
    for s in [a, b, c] {
        v.batch_execute(&format!("DROP SCHEMA {s} CASCADE"))
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Hostile names.

#[test]
fn hostile_table_and_schema_names_are_quoted_never_executed() {
    let mut v = verifier();
    exclusive(
        &mut v,
        "hostile_table_and_schema_names_are_quoted_never_executed",
    );
    let schema = "vq_pg_ho\"st;ile";
    let hostile = "vq_pg_t\"; DROP TABLE vq_pg_victim; --";
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let (qs, qt) = (q(schema), q(hostile));
    v.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {qs} CASCADE; CREATE SCHEMA {qs}; \
         CREATE TABLE {qs}.{qt} (v int); INSERT INTO {qs}.{qt} VALUES (1); \
         CREATE TABLE {qs}.vq_pg_victim (v int); INSERT INTO {qs}.vq_pg_victim VALUES (1); \
         CREATE TABLE IF NOT EXISTS vq_pg_victim_public (v int)"
    ))
    .unwrap();
    let hostile_rows = |v: &mut Client| rows(v, &format!("{qs}.{qt}"));
    let victim_rows = |v: &mut Client| rows(v, &format!("{qs}.vq_pg_victim"));

    let mut m = connected(pg().schemas([schema]).tables_to_reset([hostile]));
    m.reset().unwrap();
    assert_eq!((hostile_rows(&mut v), victim_rows(&mut v)), (0, 1));
    assert!(table_exists(&mut v, "vq_pg_victim_public"));

    // A hostile name that matches nothing is refused before any SQL is built from it.
    let mut m = connected(
        pg().schemas([schema])
            .tables_to_reset(["x\"; DROP TABLE vq_pg_victim_public; --"]),
    );
    assert!(m.reset().is_err());
    assert!(table_exists(&mut v, "vq_pg_victim_public"));

    // Excluded by its hostile name: only the victim is emptied.
    v.batch_execute(&format!("INSERT INTO {qs}.{qt} VALUES (2)"))
        .unwrap();
    let mut m = connected(pg().schemas([schema]).exclude_tables([hostile]));
    m.reset().unwrap();
    assert_eq!((hostile_rows(&mut v), victim_rows(&mut v)), (1, 0));

    v.batch_execute(&format!(
        "DROP SCHEMA {qs} CASCADE; DROP TABLE vq_pg_victim_public"
    ))
    .unwrap();
}

// ---------------------------------------------------------------------------------------
// Lost connections, health checks, unreachable servers.

#[test]
fn a_terminated_connection_fails_the_test_clearly_and_the_pool_heals() {
    let mut v = verifier();
    let app = "vq_pg_terminate";
    let label = unique("terminated");
    let mut first = 0;
    let caught = catch_unwind(AssertUnwindSafe(|| {
        run(app, |db: &mut PostgresSession| -> Result<(), String> {
            first = backend_pid(db.client());
            insert(db.client(), &label);
            terminate(&mut v, first);
            db.client()
                .execute("INSERT INTO vq_pg_items (label) VALUES ($1)", &[&label])
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }));
    let text = panic_text(caught.expect_err("the test must fail").as_ref());
    assert!(
        text.contains("returned Err(") && text.contains("connection was lost before the rollback"),
        "{text}"
    );
    assert!(
        text.contains(
            "postgres: the connection was lost during rollback of checkpoint \"venomqa_root\""
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "the server rolled back the open transaction, so nothing of this test was committed"
        ),
        "{text}"
    );
    assert_eq!(
        count(&mut v, &label),
        0,
        "PostgreSQL discarded the open transaction"
    );
    let after = stats(app);
    assert_eq!(
        (after.replaced, after.live),
        (1, 0),
        "the broken manager was dropped"
    );

    // The next test gets a fresh connection.
    let mut second = 0;
    run(app, |db: &mut PostgresSession| {
        second = backend_pid(db.client());
        insert(db.client(), &label);
    });
    assert_ne!(second, first);
    assert_eq!(count(&mut v, &label), 0);

    // An idle pooled connection killed between tests fails its health check and is replaced.
    terminate(&mut v, second);
    let mut third = 0;
    run(app, |db: &mut PostgresSession| {
        third = backend_pid(db.client())
    });
    assert_ne!(third, second);
    let after = stats(app);
    assert_eq!((after.opened, after.replaced, after.live), (3, 2, 1));
}

#[test]
fn a_connection_lost_under_a_checkpoint_operation_is_connection_lost_and_reconnects() {
    let mut v = verifier();
    let mut m = connected(pg());
    assert!(
        m.health_check(),
        "the health check passes on a live connection"
    );
    let pid = backend_pid(client(&mut m));

    // Killed while idle: the health check's round trip notices.
    terminate(&mut v, pid);
    assert!(!m.health_check());
    assert!(!m.is_connected());
    m.connect().unwrap();
    let pid = backend_pid(client(&mut m));

    // Killed under an open checkpoint: the next operation says what it means.
    m.checkpoint("held").unwrap();
    terminate(&mut v, pid);
    let e = m.rollback("held").unwrap_err();
    assert!(matches!(e, Error::ConnectionLost { .. }), "{e}");
    assert!(e.is_connection_lost());
    assert!(
        shape(&e).contains("nothing of this test was committed"),
        "{e}"
    );
    assert!(
        e.driver::<driver::Error>().is_some(),
        "the driver error is the source"
    );
    assert!(!m.is_connected());
    m.connect().unwrap();
    assert!(
        m.checkpoints().is_empty(),
        "the dead connection's checkpoints died with it"
    );
    assert!(m.health_check());
    assert_ne!(backend_pid(client(&mut m)), pid);
    m.checkpoint("held").unwrap();
    m.discard("held").unwrap();
}

#[test]
fn an_unreachable_server_is_a_clear_error_without_the_password() {
    for url in [
        "postgres://postgres:s3cr%40t@127.0.0.1:1/test",
        "postgresql://postgres:s3cr%40t@127.0.0.1:1/test",
    ] {
        let backend = Postgres::from_url(url)
            .unwrap()
            .connect_timeout(Duration::from_millis(2000));
        let mut m = Manager::new(backend);
        let e = m.connect().unwrap_err();
        let text = shape(&e);
        assert!(matches!(e, Error::Connect { .. }), "{text}");
        assert!(text.contains("@127.0.0.1:1/test"), "{text}");
        assert!(text.contains("connect timeout 2000 ms"), "{text}");
        assert!(!text.contains("s3cr") && !text.contains("%40t"), "{text}");
        assert!(text.contains("VENOMQA_POSTGRES_URL"), "{text}");
        assert!(
            e.driver::<driver::Error>().is_some(),
            "the driver error is the source"
        );
        assert!(!m.is_connected());
    }
    // Through a test: the attribute's runtime reports it the same way.
    let caught = catch_unwind(|| {
        PostgresSession::builder()
            .backend("postgres")
            .url("postgres://postgres:s3cr%40t@127.0.0.1:1/test")
            .name("vq_pg_unreachable")
            .run(|_: &mut PostgresSession| ())
    });
    let text = panic_text(caught.unwrap_err().as_ref());
    assert!(
        text.contains("could not connect to postgres at postgres://postgres:***@127.0.0.1:1/test"),
        "{text}"
    );
    assert!(!text.contains("s3cr"), "{text}");
}

#[test]
fn a_server_that_never_answers_the_handshake_times_out() {
    // Accepts connections (the kernel completes the TCP handshake) and never writes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("postgres://postgres:s3cr%40t@127.0.0.1:{port}/test");
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let backend = Postgres::from_url(&url)
            .unwrap()
            .connect_timeout(Duration::from_millis(500));
        let mut m = Manager::new(backend);
        let _ = sender.send((m.connect(), m.is_connected()));
    });
    // A guard against the hang this test is about, not a performance assertion.
    let (result, connected) = receiver
        .recv_timeout(Duration::from_secs(120))
        .expect("connect() hung on a server that never answers");
    drop(listener);
    let e = result.unwrap_err();
    let text = shape(&e);
    assert!(matches!(e, Error::Connect { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        text.contains("handshake within the connect timeout (500 ms)"),
        "{text}"
    );
    assert!(!text.contains("s3cr") && !text.contains("%40t"), "{text}");
    assert!(!connected);
}

// ---------------------------------------------------------------------------------------
// Sequences.

#[test]
fn sequences_are_not_rolled_back_by_default() {
    let mut v = verifier();
    let mut id = 0;
    run("vq_pg_seq_default", |db: &mut PostgresSession| {
        id = db
            .client()
            .query_one(
                "INSERT INTO vq_pg_items (label) VALUES ('seq') RETURNING id",
                &[],
            )
            .unwrap()
            .get(0);
    });
    let last: i64 = v
        .query_one("SELECT last_value FROM vq_pg_items_id_seq", &[])
        .unwrap()
        .get(0);
    assert!(
        last >= id,
        "PostgreSQL keeps the advanced sequence: {last} < {id}"
    );
}

#[test]
fn restore_sequences_puts_back_the_sequences_a_rolled_back_test_advanced() {
    let mut v = verifier();
    exclusive(
        &mut v,
        "restore_sequences_puts_back_the_sequences_a_rolled_back_test_advanced",
    );
    let s = "vq_pg_seq";
    fresh_schema(
        &mut v,
        s,
        "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('a'), ('b'); \
         CREATE SEQUENCE fresh START 100",
    );
    let seq = |v: &mut Client, name: &str| -> (i64, bool) {
        let r = v
            .query_one(
                &format!("SELECT last_value, is_called FROM vq_pg_seq.{name}"),
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let mut m = connected(pg().schemas([s]).restore_sequences(true));

    m.checkpoint("test").unwrap();
    client(&mut m)
        .batch_execute("INSERT INTO vq_pg_seq.t (v) VALUES ('c'), ('d'), ('e'); SELECT nextval('vq_pg_seq.fresh')")
        .unwrap();
    assert_eq!(
        seq(&mut v, "t_id_seq"),
        (5, true),
        "sequences move outside the transaction"
    );
    assert_eq!(seq(&mut v, "fresh"), (100, true));
    m.discard("test").unwrap();
    assert_eq!(seq(&mut v, "t_id_seq"), (2, true));
    assert_eq!(seq(&mut v, "fresh"), (100, false), "never called again");

    // A sequence dropped after the manager listed them: the list is read again.
    v.batch_execute("DROP SEQUENCE vq_pg_seq.fresh").unwrap();

    // Rolling back to the outermost checkpoint restores them too; releasing it keeps them.
    m.checkpoint("test").unwrap();
    client(&mut m)
        .batch_execute("INSERT INTO vq_pg_seq.t (v) VALUES ('c')")
        .unwrap();
    m.rollback("test").unwrap();
    assert_eq!(seq(&mut v, "t_id_seq"), (2, true));
    let id: i32 = client(&mut m)
        .query_one("INSERT INTO vq_pg_seq.t (v) VALUES ('c') RETURNING id", &[])
        .unwrap()
        .get(0);
    assert_eq!(id, 3);
    m.release("test").unwrap();
    assert_eq!(seq(&mut v, "t_id_seq"), (3, true));
    assert_eq!(rows(&mut v, "vq_pg_seq.t"), 3);
    v.batch_execute(&format!("DROP SCHEMA {s} CASCADE"))
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Configuration and setup scripts.

#[test]
fn configuration_entries_are_honoured() {
    let entry = || BackendConfig::new("postgres").with_url(own_url("vq_pg_config"));
    // A key of the entry, typed: a bad value or a misspelt key names the key.
    let e = PostgresStateManager::from_config(&entry().with_option("restore_sequences", "maybe"))
        .unwrap_err();
    assert!(
        shape(&e).contains("backends.postgres.restore_sequences"),
        "{e}"
    );
    let e =
        PostgresStateManager::from_config(&entry().with_option("schema", "public")).unwrap_err();
    assert!(shape(&e).contains("backends.postgres.schema"), "{e}");

    // The legacy `options:` map, whose values are strings, still works (tests/venomqa.yaml).
    let legacy = PostgresSession::builder()
        .entry("postgres_legacy_options")
        .config()
        .unwrap();
    let m = PostgresStateManager::from_config(&legacy).unwrap();
    assert!(m.backend().options().restore_sequences);
    assert_eq!(m.backend().options().exclude_tables, ["vq_pg_none"]);

    let mut config = entry()
        .with_option("restore_sequences", true)
        .with_option("schemas", vec!["vq_pg_cfg_a", "vq_pg_cfg_b"])
        .with_option("tables_to_reset", vec!["x"]);
    config.connect_timeout = Some(Duration::from_millis(1500));
    let m = PostgresStateManager::from_config(&config).unwrap();
    let options = m.backend().options();
    assert_eq!(options.schemas, ["vq_pg_cfg_a", "vq_pg_cfg_b"]);
    assert_eq!(options.tables_to_reset, ["x"]);
    assert!(options.restore_sequences);
    let shown = format!("{:?}", m.backend());
    assert!(shown.contains("connect_timeout: Some(1.5s)"), "{shown}");

    let m = PostgresStateManager::from_config(
        &BackendConfig::new("postgres").with_url("postgres://u:hunter2@h/db"),
    )
    .unwrap();
    let shown = format!("{:?} {m:?}", m.backend());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert_eq!(m.backend().options().schemas, ["public"], "default schema");

    // An entry of tests/venomqa.yaml: its keys are the backend's options.
    let config = PostgresSession::builder()
        .entry("postgres_one")
        .config()
        .unwrap();
    assert_eq!(
        (
            config.backend.as_str(),
            config.pool_size,
            config.connect_timeout
        ),
        ("postgres", Some(1), Some(Duration::from_millis(5000)))
    );
    let m = PostgresStateManager::from_config(&config).unwrap();
    assert_eq!(m.backend().options().schemas, ["public"]);
}

#[test]
fn execute_script_runs_a_setup_file() {
    let mut v = verifier();
    exclusive(&mut v, "execute_script_runs_a_setup_file");
    let mut m = connected(pg());
    m.execute_script(
        "CREATE TABLE IF NOT EXISTS vq_pg_script (v int); TRUNCATE vq_pg_script; INSERT INTO vq_pg_script VALUES (1), (2);",
    )
    .unwrap();
    assert_eq!(rows(&mut v, "vq_pg_script"), 2);
    let e = m
        .execute_script("INSERT INTO vq_pg_script VALUES (3); SELEC broken")
        .unwrap_err();
    assert!(shape(&e).contains("syntax error"), "{e}");
    assert_eq!(sqlstate(&e), Some(&SqlState::SYNTAX_ERROR));
    assert_eq!(
        rows(&mut v, "vq_pg_script"),
        2,
        "a failing script is all or nothing"
    );
    v.batch_execute("DROP TABLE vq_pg_script").unwrap();
}

// ---------------------------------------------------------------------------------------
// Driver errors through venomqa, and the shape of the messages.

#[test]
fn a_unique_violation_is_matched_through_the_driver_error() {
    let mut v = verifier();
    let duplicate = "CREATE TABLE vq_pg_unique (v int CONSTRAINT vq_pg_unique_key PRIMARY KEY); \
                     INSERT INTO vq_pg_unique VALUES (1), (1)";
    // A standalone manager's setup script (the script is all or nothing).
    let mut m = connected(pg());
    let e = m.execute_script(duplicate).unwrap_err();
    assert_eq!(sqlstate(&e), Some(&SqlState::UNIQUE_VIOLATION), "{e}");
    let server = e
        .driver::<driver::Error>()
        .and_then(driver::Error::as_db_error)
        .unwrap();
    assert_eq!(server.constraint(), Some("vq_pg_unique_key"));
    assert!(shape(&e).contains("23505"), "{e}");
    assert!(!table_exists(&mut v, "vq_pg_unique"));

    // Inside a test, through the session's manager, in a checkpoint block that recovers
    // the aborted transaction when it ends.
    run("vq_pg_unique", |db: &mut PostgresSession| {
        insert(db.client(), "before the duplicate");
        db.checkpoint("duplicate", |db| {
            let e = db.state_manager().execute_script(duplicate).unwrap_err();
            assert_eq!(sqlstate(&e), Some(&SqlState::UNIQUE_VIOLATION), "{e}");
            // The std::error::Error chain reaches it too.
            let mut source = std::error::Error::source(&e);
            let mut found = false;
            while let Some(s) = source {
                found |= s.downcast_ref::<driver::Error>().is_some();
                source = s.source();
            }
            assert!(found, "the postgres::Error is in the source chain");
        })
        .unwrap();
        assert_eq!(count(db.client(), "before the duplicate"), 1);
    });
    assert!(!table_exists(&mut v, "vq_pg_unique"));
}

#[test]
fn error_messages_are_one_short_line() {
    let mut v = verifier();
    exclusive(&mut v, "error_messages_are_one_short_line");
    let mut seen = Vec::new();
    let mut keep = |e: Error| seen.push(shape(&e));

    keep(Postgres::from_url("postgres://u:s3cret@h:notaport/db").unwrap_err());
    keep(Postgres::from_url("host=h user=u password=s3cret").unwrap_err());
    let refused = Postgres::from_url("postgres://u:s3cret@127.0.0.1:1/db").unwrap();
    keep(Manager::new(refused).connect().unwrap_err());

    let mut m = connected(pg());
    m.checkpoint("a").unwrap();
    assert!(client(&mut m).execute("SELECT 1/0", &[]).is_err());
    keep(m.checkpoint("b").unwrap_err()); // 25P02, aborted
    keep(m.release("a").unwrap_err()); // 25P02 at the outermost release
    m.rollback("a").unwrap();
    m.checkpoint("b").unwrap();
    client(&mut m).batch_execute("RELEASE SAVEPOINT b").unwrap();
    keep(m.rollback("b").unwrap_err()); // 3B001, released behind venomqa's back
    m.rollback("a").unwrap();
    client(&mut m).batch_execute("COMMIT").unwrap();
    keep(m.discard("a").unwrap_err()); // the transaction is gone
    m.connect().unwrap();
    keep(
        m.execute_script("CREATE TEMP TABLE u (v int PRIMARY KEY); INSERT INTO u VALUES (1), (1)")
            .unwrap_err(),
    );
    let pid = backend_pid(client(&mut m));
    m.checkpoint("a").unwrap();
    terminate(&mut v, pid);
    keep(m.checkpoint("b").unwrap_err()); // the connection is lost

    fresh_schema(
        &mut v,
        "vq_pg_messages",
        "CREATE TABLE customer (id serial PRIMARY KEY); \
         CREATE TABLE invoice (id serial PRIMARY KEY, customer_id int CONSTRAINT invoice_customer_fk REFERENCES customer (id))",
    );
    let mut m = connected(pg().schemas(["vq_pg_messages"]).exclude_tables(["invoice"]));
    keep(m.reset().unwrap_err());
    let mut m = connected(
        pg().schemas(["vq_pg_messages"])
            .tables_to_reset(["customer"]),
    );
    keep(m.reset().unwrap_err());
    let mut m = connected(
        pg().schemas(["vq_pg_messages"])
            .tables_to_reset(["custmer"]),
    );
    keep(m.reset().unwrap_err());
    v.batch_execute("DROP SCHEMA vq_pg_messages CASCADE")
        .unwrap();

    for text in &seen {
        assert!(!text.contains("s3cret"), "{text}");
    }
    assert_eq!(seen.len(), 12);
}

// ---------------------------------------------------------------------------------------
// The checkpoint-semantics suite.

/// The conformance suite's view of the data: the BIGINT column of `vq_pg_probe`, created
/// empty by the `postgres` entry's setup.
struct Probe;

impl venomqa::conformance::Probe for Probe {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
        let client = m.connection::<Postgres>()?;
        client
            .execute("INSERT INTO vq_pg_probe (v) VALUES ($1)", &[&value])
            .map_err(|e| Error::backend("postgres", "the probe's insert", e))?;
        Ok(())
    }

    fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
        let client = m.connection::<Postgres>()?;
        let rows = client
            .query("SELECT v FROM vq_pg_probe", &[])
            .map_err(|e| Error::backend("postgres", "the probe's read", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}

#[test]
fn conformance() {
    venomqa::conformance::run("postgres", Probe);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    venomqa::conformance::faults(pg());
    venomqa::conformance::faults(pg().restore_sequences(true));
}

// ---------------------------------------------------------------------------------------
// create_database: true makes a missing database; without it, the error says how.

#[test]
fn create_database_makes_a_missing_database_once_and_without_it_the_error_says_how() {
    let name = format!("vq_created_{}", std::process::id());
    let mut admin = verifier();
    let drop_it = |admin: &mut Client| {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .unwrap()
    };
    drop_it(&mut admin);
    let base = url();
    let server = base.rsplit_once('/').map_or(base.as_str(), |(b, _)| b);
    let config = BackendConfig::new("postgres").with_url(format!("{server}/{name}"));
    let exists = |admin: &mut Client| {
        admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .unwrap()
            .is_some()
    };

    let e = Manager::<Postgres>::from_config(&config)
        .and_then(|mut m| m.connect())
        .unwrap_err();
    assert_eq!(sqlstate(&e), Some(&SqlState::INVALID_CATALOG_NAME), "{e}");
    assert!(
        shape(&e).contains("does not exist (connect timeout ")
            && e.to_string()
                .contains(" ms); create it, or set create_database: true"),
        "{e}"
    );
    assert!(!exists(&mut admin), "nothing created without the option");

    let config = config.with_option("create_database", true);
    // Four creators at once (processes of a nextest run): one creates, the others find it.
    let barrier = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (config, barrier) = (config.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut m = Manager::<Postgres>::from_config(&config).unwrap();
                barrier.wait();
                m.connect().map(|()| m)
            })
        })
        .collect();
    let mut managers: Vec<_> = racers
        .into_iter()
        .map(|r| r.join().unwrap().unwrap())
        .collect();
    assert!(exists(&mut admin));
    let first = managers.pop().unwrap();
    // Another manager finds it there; its connection works in it.
    let mut second = Manager::<Postgres>::from_config(&config).unwrap();
    second.connect().unwrap();
    let db: String = second
        .connection()
        .unwrap()
        .query_one("SELECT current_database()", &[])
        .unwrap()
        .get(0);
    assert_eq!(db, name);
    drop((first, second, managers));
    drop_it(&mut admin);
}
