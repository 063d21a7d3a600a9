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
fn check(entry: &str, probe: impl Probe, cases: u32) {
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
        let m = m
            .downcast_mut::<venomqa::memory::MemoryStateManager>()
            .unwrap();
        m.connection()?.set(format!("p:{value}"), "");
        Ok(())
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        let m = m
            .downcast_mut::<venomqa::memory::MemoryStateManager>()
            .unwrap();
        Ok(m.connection()?
            .data()
            .keys()
            .filter_map(|k| k.strip_prefix("p:")?.parse().ok())
            .collect())
    }
}

struct SqliteItems;

impl Probe for SqliteItems {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
        let conn = m
            .downcast_mut::<venomqa::sqlite::SqliteStateManager>()
            .unwrap()
            .connection()?;
        conn.execute(
            "INSERT INTO items (marker) VALUES (?1)",
            [format!("prop_{value}")],
        )
        .map_err(|e| Error::backend("sqlite", "probe insert", e))?;
        Ok(())
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        let conn = m
            .downcast_mut::<venomqa::sqlite::SqliteStateManager>()
            .unwrap()
            .connection()?;
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
    use venomqa::mysql::MySqlStateManager;

    struct Table(&'static str);

    impl Probe for Table {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            m.downcast_mut::<MySqlStateManager>()
                .unwrap()
                .exec(&format!("INSERT INTO {} (v) VALUES ({value})", self.0))
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            let conn = m
                .downcast_mut::<MySqlStateManager>()
                .unwrap()
                .connection()?;
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
    use venomqa::postgres::PostgresStateManager;

    venomqa::register_setup!("postgres", |m: &mut dyn StateManager| {
        m.execute_script("CREATE TABLE IF NOT EXISTS vq_pg_probe (v bigint NOT NULL)")
    });

    struct Table(&'static str);

    impl Probe for Table {
        fn insert(&self, m: &mut dyn StateManager, value: i64) -> Result<()> {
            let client = m
                .downcast_mut::<PostgresStateManager>()
                .unwrap()
                .connection()?;
            client
                .execute(
                    &format!("INSERT INTO {} (v) VALUES ($1)", self.0),
                    &[&value],
                )
                .map(drop)
                .map_err(|e| Error::backend("postgres", "probe insert", e))
        }
        fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
            let client = m
                .downcast_mut::<PostgresStateManager>()
                .unwrap()
                .connection()?;
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
        use venomqa::redis::{redis, RedisStateManager};
        let m = m.downcast_mut::<RedisStateManager>().unwrap();
        redis::cmd("SET")
            .arg(format!("vq_prop:{value}"))
            .arg("")
            .exec(m.try_conn()?)
            .map_err(|e| Error::backend("redis", "probe insert", e))
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        use venomqa::redis::{redis, RedisStateManager};
        let m = m.downcast_mut::<RedisStateManager>().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("vq_prop:*")
            .query(m.try_conn()?)
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
        use venomqa::mongodb::{bson::doc, bson::Document, MongoDbStateManager};
        let m = m.downcast_mut::<MongoDbStateManager>().unwrap();
        m.try_database()?
            .collection::<Document>("prop")
            .insert_one(doc! { "v": value })
            .run()
            .map(drop)
            .map_err(|e| Error::backend("mongodb", "probe insert", e))
    }
    fn values(&self, m: &mut dyn StateManager) -> Result<Vec<i64>> {
        use venomqa::mongodb::{bson::doc, bson::Document, MongoDbStateManager};
        let m = m.downcast_mut::<MongoDbStateManager>().unwrap();
        let docs: Vec<Document> = m
            .try_database()?
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
