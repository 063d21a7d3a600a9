//! Property tests of the checkpoint rules: random programs of checkpoint, rollback,
//! release, discard, nested blocks (some panicking), hostile names and writes, ending by
//! returning, returning `Err` or panicking, run against a model on every backend this
//! build has (server backends under their cargo features).
//!
//! The case count and the seed are fixed, so CI runs the same programs every time; a
//! failure prints the seed and the shrunk program. Set `VENOMQA_PROPTEST_SEED` and
//! `VENOMQA_PROPTEST_CASES` to explore other programs.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use venomqa::conformance::{run_program, Ending, Op, Probe};
use venomqa::{Error, Result, StateManager};

fn op() -> impl Strategy<Value = Op> {
    let leaf = prop_oneof![
        4 => Just(Op::Insert),
        3 => (0..4usize).prop_map(Op::Checkpoint),
        2 => (0..4usize).prop_map(Op::Rollback),
        2 => (0..4usize).prop_map(Op::Release),
        1 => (0..4usize).prop_map(Op::Discard),
        1 => (0..13usize).prop_map(Op::Hostile),
    ];
    leaf.prop_recursive(2, 24, 6, |inner| {
        (0..4usize, prop::collection::vec(inner, 0..6), any::<bool>())
            .prop_map(|(name, body, panics)| Op::Block { name, body, panics })
    })
}

fn ending() -> impl Strategy<Value = Ending> {
    prop_oneof![Just(Ending::Return), Just(Ending::Err), Just(Ending::Panic)]
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` random programs on `entry`; the seed is fixed unless overridden.
pub(crate) fn check(entry: &str, probe: impl Probe, cases: u32) {
    let seed = env_u64("VENOMQA_PROPTEST_SEED", 20_261_130);
    let cases = env_u64("VENOMQA_PROPTEST_CASES", u64::from(cases)) as u32;
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    // The panics of the programs' own panicking blocks are expected: keep them quiet.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = TestRunner::new(config).run(
        &(prop::collection::vec(op(), 0..14), ending()),
        |(ops, ending)| run_program(entry, &probe, &ops, ending).map_err(TestCaseError::fail),
    );
    std::panic::set_hook(hook);
    if let Err(e) = result {
        panic!("{entry}: a program broke the checkpoint rules (seed {seed}, VENOMQA_PROPTEST_SEED={seed} reproduces it): {e}");
    }
}

struct MemoryKeys;

impl Probe for MemoryKeys {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
        let store = m.connection::<venomqa::memory::Memory>()?;
        store.set(format!("p:{value}"), "");
        Ok(())
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        let store = m.connection::<venomqa::memory::Memory>()?;
        Ok(store
            .data()
            .keys()
            .filter_map(|k| k.strip_prefix("p:")?.parse().ok())
            .collect())
    }
}

struct SqliteItems;

impl Probe for SqliteItems {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
        let conn = m.connection::<venomqa::sqlite::Sqlite>()?;
        conn.execute(
            "INSERT INTO items (marker) VALUES (?1)",
            [format!("prop_{value}")],
        )
        .map_err(|e| Error::backend("sqlite", "probe insert", e))?;
        Ok(())
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        let conn = m.connection::<venomqa::sqlite::Sqlite>()?;
        let mut stmt = conn
            .prepare("SELECT marker FROM items WHERE marker LIKE 'prop\\_%' ESCAPE '\\'")
            .map_err(|e| Error::backend("sqlite", "probe read", e))?;
        let markers = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| Error::backend("sqlite", "probe read", e))?;
        Ok(markers
            .iter()
            .filter_map(|m| m.strip_prefix("prop_")?.parse().ok())
            .collect())
    }
}

#[test]
fn memory_keeps_the_rules() {
    check("memory", MemoryKeys, 256);
}

#[test]
fn sqlite_in_memory_keeps_the_rules() {
    check("sqlite", SqliteItems, 256);
}

#[test]
fn sqlite_file_keeps_the_rules() {
    check("sqlite_file", SqliteItems, 96);
}

#[test]
fn sqlite_capture_keeps_the_rules() {
    check("sqlite_capture", SqliteItems, 96);
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use venomqa::mysql::driver::prelude::Queryable;
    use venomqa::mysql::MySql;

    struct Table(&'static str);

    impl Probe for Table {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            // The connection of either MySQL backend (the capture one shares its type).
            m.connection::<MySql>()?
                .query_drop(format!("INSERT INTO {} (v) VALUES ({value})", self.0))
                .map_err(|e| Error::backend("mysql", "probe insert", e))
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            let conn = m.connection::<MySql>()?;
            conn.query(format!("SELECT v FROM {}", self.0))
                .map_err(|e| Error::backend("mysql", "probe read", e))
        }
    }

    #[test]
    fn mysql_keeps_the_rules() {
        check("mysql", Table("vq_mysql_probe"), 48);
    }

    #[test]
    fn mysql_capture_keeps_the_rules() {
        let url = std::env::var("VENOMQA_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
        venomqa::mysql::driver::Conn::new(venomqa::mysql::driver::Opts::from_url(&url).unwrap())
            .unwrap()
            .query_drop("CREATE DATABASE IF NOT EXISTS vq_capture_props")
            .unwrap();
        check("mysql_capture_props", Table("vq_capture_probe"), 24);
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use venomqa::postgres::Postgres;

    // The table `vq_pg_probe` comes from the setup of the `postgres` entry that
    // `postgres.rs` registers (one binary: one setup per entry).

    struct Table(&'static str);

    impl Probe for Table {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            let client = m.connection::<Postgres>()?;
            client
                .execute(
                    &format!("INSERT INTO {} (v) VALUES ($1)", self.0),
                    &[&value],
                )
                .map(drop)
                .map_err(|e| Error::backend("postgres", "probe insert", e))
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            let client = m.connection::<Postgres>()?;
            Ok(client
                .query(&format!("SELECT v FROM {}", self.0), &[])
                .map_err(|e| Error::backend("postgres", "probe read", e))?
                .iter()
                .map(|r| r.get(0))
                .collect())
        }
    }

    #[test]
    fn postgres_keeps_the_rules() {
        check("postgres", Table("vq_pg_probe"), 48);
    }

    #[test]
    fn postgres_capture_keeps_the_rules() {
        let mut admin = venomqa::postgres::driver::Client::connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
            venomqa::postgres::driver::NoTls,
        )
        .unwrap();
        let exists = admin
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = 'vq_capture_props'",
                &[],
            )
            .unwrap()
            .is_some();
        if !exists {
            let _ = admin.batch_execute("CREATE DATABASE vq_capture_props");
        }
        check("postgres_capture_props", Table("vq_capture_probe"), 24);
    }
}
/// Keys `vq_prop:<value>` of a captured Redis database.
#[cfg(feature = "redis")]
struct RedisKeys;

#[cfg(feature = "redis")]
impl Probe for RedisKeys {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
        use venomqa::redis::{redis, Redis};
        let m = m.connection::<Redis>()?;
        redis::cmd("SET")
            .arg(format!("vq_prop:{value}"))
            .arg("")
            .exec(m.conn())
            .map_err(|e| Error::backend("redis", "probe insert", e))
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        use venomqa::redis::{redis, Redis};
        let m = m.connection::<Redis>()?;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("vq_prop:*")
            .query(m.conn())
            .map_err(|e| Error::backend("redis", "probe read", e))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix("vq_prop:")?.parse().ok())
            .collect())
    }
}

#[cfg(feature = "redis")]
#[test]
fn redis_capture_keeps_the_rules() {
    check("redis_capture", RedisKeys, 96);
}

/// Documents `{v: <value>}` in collection `prop` of a captured MongoDB database.
#[cfg(feature = "mongodb")]
struct MongoDocs;

#[cfg(feature = "mongodb")]
impl Probe for MongoDocs {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
        use venomqa::mongodb::{bson::doc, bson::Document, MongoDb};
        let m = m.connection::<MongoDb>()?;
        m.database()
            .collection::<Document>("prop")
            .insert_one(doc! { "v": value })
            .run()
            .map(drop)
            .map_err(|e| Error::backend("mongodb", "probe insert", e))
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        use venomqa::mongodb::{bson::doc, bson::Document, MongoDb};
        let m = m.connection::<MongoDb>()?;
        let docs: Vec<Document> = m
            .database()
            .collection::<Document>("prop")
            .find(doc! {})
            .run()
            .and_then(|c| c.collect())
            .map_err(|e| Error::backend("mongodb", "probe read", e))?;
        Ok(docs.iter().filter_map(|d| d.get_i64("v").ok()).collect())
    }
}

#[cfg(feature = "mongodb")]
#[test]
fn mongodb_capture_keeps_the_rules() {
    check("mongodb_capture", MongoDocs, 48);
}

/// Capture exactness on MySQL/MariaDB, PostgreSQL and SQLite: `conformance::capture`'s
/// named checks and the differential property test (Redis and MongoDB have theirs in
/// their own test files).
use crate::support::capture_exact;

#[cfg(feature = "postgres")]
mod postgres_capture_exact {
    use super::capture_exact::check_capture;
    use super::*;
    use std::sync::Mutex;
    use venomqa::conformance::capture::{self, Dialect, Write};
    use venomqa::postgres::driver::{Client, NoTls, SimpleQueryMessage};

    /// Another connection to the database, as the app's own would be.
    struct Pg(Mutex<Client>);

    fn connect(database: &str, user: &str) -> Client {
        Client::connect(
            &format!("host=127.0.0.1 port=5432 user={user} dbname={database}"),
            NoTls,
        )
        .unwrap_or_else(|e| panic!("PostgreSQL at 127.0.0.1:5432 is needed: {e}"))
    }

    impl Pg {
        /// A fresh database `name` owned by `owner`, with the suite's tables, and a
        /// connection to it. Dropped first, so no earlier run's state is used.
        fn fresh(name: &str, owner: &str) -> Self {
            let mut admin = connect("postgres", "postgres");
            let _ = admin.batch_execute(&format!("CREATE ROLE {owner} LOGIN"));
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .unwrap();
            admin
                .batch_execute(&format!("CREATE DATABASE {name} OWNER {owner}"))
                .unwrap();
            let mut client = connect(name, owner);
            for ddl in capture::schema(Dialect::PostgreSQL) {
                client.batch_execute(&ddl).unwrap();
            }
            // The app's own trigger, as a real app has (`updated_at`): it must not fire
            // while a rollback restores rows. ENABLE ALWAYS fires even in replica mode.
            client
                .batch_execute(
                    "ALTER TABLE vq_cc_parent ADD COLUMN touched bigint NOT NULL DEFAULT 0;
                     CREATE SEQUENCE vq_cc_clock;
                     CREATE FUNCTION vq_cc_touch() RETURNS trigger LANGUAGE plpgsql AS
                       $$ BEGIN NEW.touched := nextval('vq_cc_clock'); RETURN NEW; END $$;
                     CREATE TRIGGER vq_cc_touch BEFORE INSERT OR UPDATE ON vq_cc_parent
                       FOR EACH ROW EXECUTE FUNCTION vq_cc_touch();
                     ALTER TABLE vq_cc_parent ENABLE ALWAYS TRIGGER vq_cc_touch;",
                )
                .unwrap();
            Pg(Mutex::new(client))
        }

        fn rows(client: &mut Client, sql: &str) -> Result<Vec<String>> {
            Ok(client
                .simple_query(sql)
                .map_err(|e| Error::backend("postgres", "probe dump", e))?
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                            .collect::<Vec<_>>()
                            .join(" | "),
                    ),
                    _ => None,
                })
                .collect())
        }
    }

    impl capture::CaptureProbe for Pg {
        fn write(&self, write: &Write) -> Result<()> {
            let mut client = self.0.lock().unwrap();
            for statement in capture::sql(Dialect::PostgreSQL, write) {
                if let Err(e) = client.batch_execute(&statement) {
                    let _ = client.batch_execute("ROLLBACK");
                    return Err(Error::backend("postgres", "probe write", e));
                }
            }
            Ok(())
        }

        fn dump(&self) -> Result<Vec<String>> {
            let mut client = self.0.lock().unwrap();
            let mut out = Vec::new();
            for (table, query) in capture::dump_queries() {
                for row in Pg::rows(&mut client, &query)? {
                    out.push(format!("{table}: {row}"));
                }
            }
            for row in Pg::rows(
                &mut client,
                "SELECT id, touched FROM vq_cc_parent ORDER BY id",
            )? {
                out.push(format!("touched: {row}"));
            }
            for seq in ["vq_cc_kc_id_seq", "vq_cc_kn_id_seq", "vq_cc_clock"] {
                for row in Pg::rows(
                    &mut client,
                    &format!("SELECT last_value, is_called FROM {seq}"),
                )? {
                    out.push(format!("{seq}: {row}"));
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn postgres_capture_is_exact_as_a_superuser() {
        check_capture(
            "postgres_capture_cc",
            &Pg::fresh("vq_capture_cc", "postgres"),
            256,
        );
    }

    #[test]
    fn postgres_capture_is_exact_as_a_plain_role_in_foreign_key_order() {
        check_capture(
            "postgres_capture_cc_plain",
            &Pg::fresh("vq_capture_cc_plain", "vq_plain"),
            256,
        );
    }

    #[test]
    fn postgres_capture_is_exact_with_the_digest_proof() {
        check_capture(
            "postgres_capture_cc_digest",
            &Pg::fresh("vq_capture_cc_digest", "postgres"),
            64,
        );
    }
}

#[cfg(feature = "mysql")]
mod mysql_capture_exact {
    use super::capture_exact::check_capture;
    use super::*;
    use std::sync::Mutex;
    use venomqa::conformance::capture::{self, Dialect, Write};
    use venomqa::mysql::driver::prelude::Queryable;
    use venomqa::mysql::driver::{Conn, Opts, Row, Value};

    struct My(Mutex<Conn>);

    fn server() -> String {
        std::env::var("VENOMQA_MYSQL_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
    }

    impl My {
        /// A fresh database `name` with the suite's tables, and a connection to it.
        fn fresh(name: &str) -> Self {
            let mut admin = Conn::new(Opts::from_url(&server()).unwrap())
                .unwrap_or_else(|e| panic!("MySQL/MariaDB at 127.0.0.1:3306 is needed: {e}"));
            admin
                .query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
                .unwrap();
            admin
                .query_drop(format!("CREATE DATABASE `{name}`"))
                .unwrap();
            admin.query_drop(format!("USE `{name}`")).unwrap();
            for ddl in capture::schema(Dialect::MySQL) {
                admin.query_drop(ddl).unwrap();
            }
            // MySQL 8 caches information_schema's AUTO_INCREMENT; MariaDB has no such cache.
            let _ = admin.query_drop("SET SESSION information_schema_stats_expiry = 0");
            My(Mutex::new(admin))
        }
    }

    fn text(v: &Value) -> String {
        match v {
            Value::NULL => "NULL".to_owned(),
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            other => other.as_sql(true),
        }
    }

    impl capture::CaptureProbe for My {
        fn write(&self, write: &Write) -> Result<()> {
            let mut conn = self.0.lock().unwrap();
            for statement in capture::sql(Dialect::MySQL, write) {
                if let Err(e) = conn.query_drop(&statement) {
                    let _ = conn.query_drop("ROLLBACK");
                    return Err(Error::backend("mysql", "probe write", e));
                }
            }
            Ok(())
        }

        fn dump(&self) -> Result<Vec<String>> {
            let mut conn = self.0.lock().unwrap();
            let mut out = Vec::new();
            let mut queries = capture::dump_queries();
            queries.push((
                "auto_increment".to_owned(),
                "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('vq_cc_kc', 'vq_cc_kn') ORDER BY 1".to_owned(),
            ));
            for (table, query) in queries {
                let rows: Vec<Row> = conn
                    .query(query)
                    .map_err(|e| Error::backend("mysql", "probe dump", e))?;
                for row in rows {
                    let cells: Vec<String> = row.unwrap().iter().map(text).collect();
                    out.push(format!("{table}: {}", cells.join(" | ")));
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn mysql_capture_is_exact() {
        check_capture("mysql_capture_cc", &My::fresh("vq_capture_cc"), 256);
    }
}

mod sqlite_capture_exact {
    use super::capture_exact::check_capture;
    use super::*;
    use std::sync::Mutex;
    use venomqa::conformance::capture::{self, Dialect, Write};

    struct Lite(Mutex<rusqlite::Connection>);

    /// The entry's file, relative to this crate's directory (where tests run).
    const FILE: &str = "target/venomqa-capture-cc.sqlite";

    impl Lite {
        /// A fresh file with the suite's tables, and a connection to it.
        fn fresh() -> Self {
            std::fs::create_dir_all("target").unwrap();
            for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
                let _ = std::fs::remove_file(format!("{FILE}{suffix}"));
            }
            let conn = rusqlite::Connection::open(FILE).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10))
                .unwrap();
            conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
            for ddl in capture::schema(Dialect::SQLite) {
                conn.execute_batch(&ddl).unwrap();
            }
            Lite(Mutex::new(conn))
        }
    }

    impl capture::CaptureProbe for Lite {
        fn write(&self, write: &Write) -> Result<()> {
            let conn = self.0.lock().unwrap();
            for statement in capture::sql(Dialect::SQLite, write) {
                if let Err(e) = conn.execute_batch(&statement) {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    return Err(Error::backend("sqlite", "probe write", e));
                }
            }
            Ok(())
        }

        fn dump(&self) -> Result<Vec<String>> {
            let conn = self.0.lock().unwrap();
            let mut out = Vec::new();
            let mut queries = capture::dump_queries();
            queries.push((
                "sqlite_sequence".to_owned(),
                "SELECT name, seq FROM sqlite_sequence ORDER BY name".to_owned(),
            ));
            for (table, query) in queries {
                let mut stmt = conn
                    .prepare(&query)
                    .map_err(|e| Error::backend("sqlite", "probe dump", e))?;
                let n = stmt.column_count();
                let rows = stmt
                    .query_map([], |r| {
                        (0..n)
                            .map(|i| {
                                r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                                    rusqlite::types::Value::Null => "NULL".to_owned(),
                                    rusqlite::types::Value::Integer(i) => i.to_string(),
                                    rusqlite::types::Value::Real(f) => f.to_string(),
                                    rusqlite::types::Value::Text(t) => t,
                                    rusqlite::types::Value::Blob(b) => format!("{b:?}"),
                                })
                            })
                            .collect::<rusqlite::Result<Vec<String>>>()
                    })
                    .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Vec<String>>>>())
                    .map_err(|e| Error::backend("sqlite", "probe dump", e))?;
                for row in rows {
                    out.push(format!("{table}: {}", row.join(" | ")));
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn sqlite_capture_is_exact() {
        check_capture("sqlite_capture_cc", &Lite::fresh(), 256);
    }
}
