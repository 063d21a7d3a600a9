//! The SQL backends (SQLite, MySQL/MariaDB, PostgreSQL), measured the same way: the raw
//! round trip, venomqa's per-test cost, the baselines users use today, and scaling.
//!
//! venomqa is driven only through its public, backend-neutral API (`run_test` with a
//! `TestSpec`, exactly what `#[venom_test]` expands to, and a `dyn StateManager` whose
//! `execute_script` runs SQL on the test's connection), so every SQL backend is measured
//! by the same code.

use std::time::{Duration, Instant};

use venomqa::{BackendConfig, Session, SessionBuilder, StateManager, ROOT_CHECKPOINT};

use crate::harness::{
    fmt_us, interleaved, measure, measure_op, measure_parts, timed, Budget, Stats,
};
use crate::report::{ratio, Chart, Report};

/// A raw connection of the backend's driver, for the baselines.
pub trait RawSql {
    /// Runs one or more statements (one round trip where the driver allows).
    fn batch(&mut self, sql: &str) -> Result<(), String>;
    /// `SELECT 1`: the round-trip floor.
    fn select1(&mut self) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(all(feature = "mysql", feature = "postgres")), allow(dead_code))]
pub enum Dialect {
    Sqlite,
    MySql,
    Postgres,
}

/// Case names shared with the target checks in main.
pub const FLOOR: &str = "round trip on the test's connection (SELECT 1)";
pub const RAW_FLOOR: &str = "round trip, separate connection (SELECT 1)";
pub const VQ_EMPTY: &str = "venomqa test, empty body";
pub const VQ_WRITE: &str = "venomqa test, writes 1 row";
pub const RAW_WRITE: &str = "raw INSERT of 1 row (autocommit)";
pub const TRUNCATE: &str = "test writing 1 row + truncate 5 tables";
pub const TRUNCATE_ONLY: &str = "truncate 5 tables (isolation only)";
pub const FRESH_DB: &str = "test writing 1 row in a fresh database";
pub const FRESH_DB_ONLY: &str = "fresh database: create 5 tables + drop (isolation only)";

pub struct SqlBench {
    /// venomqa's backend name.
    pub backend: &'static str,
    /// The venomqa / driver URL.
    pub url: &'static str,
    pub dialect: Dialect,
    /// Opens a raw driver connection to a URL.
    pub connect: fn(&str) -> Result<Box<dyn RawSql>, String>,
}

const TABLES: usize = 5;

pub fn schema(d: Dialect) -> String {
    let pk = match d {
        Dialect::Sqlite => "INTEGER PRIMARY KEY",
        Dialect::MySql => "BIGINT AUTO_INCREMENT PRIMARY KEY",
        Dialect::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    let mut sql = String::new();
    for i in 1..=TABLES {
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS vq_bench_t{i} (id {pk}, name VARCHAR(64) NOT NULL, n INT NOT NULL);\n"
        ));
    }
    sql.push_str("CREATE TABLE IF NOT EXISTS vq_bench_scale (id INT PRIMARY KEY, n INT NOT NULL, name VARCHAR(64) NOT NULL);\n");
    sql
}

const INSERT_ONE: &str = "INSERT INTO vq_bench_t1 (name, n) VALUES ('ann@example.com', 1)";

fn truncate_sql(d: Dialect) -> String {
    let tables: Vec<String> = (1..=TABLES).map(|i| format!("vq_bench_t{i}")).collect();
    match d {
        // No TRUNCATE in SQLite: DELETE without WHERE is its truncate optimization.
        Dialect::Sqlite => tables.iter().map(|t| format!("DELETE FROM {t};")).collect(),
        // The reference document's reset(): FK checks off, TRUNCATE each table, FK checks on.
        Dialect::MySql => {
            let mut s = String::from("SET FOREIGN_KEY_CHECKS = 0;");
            for t in &tables {
                s.push_str(&format!(" TRUNCATE TABLE {t};"));
            }
            s.push_str(" SET FOREIGN_KEY_CHECKS = 1");
            s
        }
        // One statement for all five, as database cleaners do on PostgreSQL.
        Dialect::Postgres => format!(
            "TRUNCATE TABLE {} RESTART IDENTITY CASCADE",
            tables.join(", ")
        ),
    }
}

/// `url` with its database (path) replaced by `db`.
fn with_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

/// A test as `#[venom_test(backend = .., url = ..)]` runs it.
fn spec(backend: &'static str, url: &'static str) -> impl Fn() -> SessionBuilder<dyn StateManager> {
    move || {
        Session::builder()
            .backend(backend)
            .url(url)
            .name("venomqa_bench::per_test")
    }
}

impl SqlBench {
    pub fn run(&self, report: &mut Report, quick: bool) {
        let name = self.backend;
        let mut raw = match (self.connect)(self.url) {
            Ok(raw) => raw,
            Err(e) => {
                report.note(format!(
                    "{name}: skipped, the server is not running or refuses connections ({e})"
                ));
                return;
            }
        };
        println!("{name}: measuring");
        if let Err(e) = raw.batch(&schema(self.dialect)) {
            report.note(format!(
                "{name}: skipped, could not create the vq_bench_* tables: {e}"
            ));
            return;
        }
        let section = "per test";

        // One round trip on a connection of the driver's own.
        match measure_op(quick, || raw.select1()) {
            Ok(s) => report.add(name, section, RAW_FLOOR, s, ""),
            Err(e) => report.skip(name, section, RAW_FLOOR, e),
        }

        // venomqa, exactly as #[venom_test] runs a test, and the floor on its connection.
        self.venomqa_per_test(report, quick);
        let floor = report
            .median_us(name, FLOOR)
            .or(report.median_us(name, RAW_FLOOR));
        let in_rt = |us: f64| floor.map_or(String::new(), |f| format!("{:.1} round trips", us / f));

        // The test's own work, alone.
        match measure_op(quick, || raw.batch(INSERT_ONE)) {
            Ok(s) => {
                let note = in_rt(s.median_us());
                report.add(name, section, RAW_WRITE, s, note)
            }
            Err(e) => report.skip(name, section, RAW_WRITE, e),
        }

        if let Ok(mut m) = venomqa::registry::connect(&BackendConfig::new(name).with_url(self.url))
        {
            crate::harness::breakdown(report, name, m.as_mut(), floor, quick);
        }

        // Baseline 1: truncate 5 tables after each test. The isolation part (the truncate)
        // and the whole test (write + truncate) are timed in the same samples.
        let truncate = truncate_sql(self.dialect);
        let result = measure_parts(quick, || {
            let write = timed(|| raw.batch(INSERT_ONE))?;
            let clean = timed(|| raw.batch(&truncate))?;
            Ok((write, clean))
        });
        self.add_baseline(report, result, TRUNCATE_ONLY, TRUNCATE);

        // Baseline 2: a fresh database per test (what #[sqlx::test] does).
        let result = self.fresh_database(raw.as_mut(), quick);
        self.add_baseline(report, result, FRESH_DB_ONLY, FRESH_DB);
        let _ = raw.batch(&truncate);

        self.scaling(report, quick);
    }

    fn venomqa_per_test(&self, report: &mut Report, quick: bool) {
        let name = self.backend;
        let section = "per test";
        // A backend that is not available yet (or cannot connect) is reported, not fatal.
        let probe = venomqa::registry::connect(&BackendConfig::new(name).with_url(self.url));
        if let Err(e) = probe {
            let why = format!(
                "venomqa backend unavailable: {}",
                first_line(&e.to_string())
            );
            report.skip(name, section, VQ_EMPTY, why.clone());
            report.skip(name, section, VQ_WRITE, why);
            return;
        }
        let spec = spec(name, self.url);
        let outcome = std::panic::catch_unwind(|| {
            // An empty test, alternating with a test that times one SELECT 1 on the very
            // connection the tests get: the floor, under the same conditions.
            let (empty, floor) = interleaved(
                quick,
                || -> Result<Duration, String> {
                    let t = Instant::now();
                    spec().run(|_db: &mut Session| {});
                    Ok(t.elapsed())
                },
                || {
                    let mut d = Duration::ZERO;
                    spec().run(|db: &mut Session| {
                        let t = Instant::now();
                        db.state_manager()
                            .execute_script("SELECT 1")
                            .expect("SELECT 1");
                        d = t.elapsed();
                    });
                    Ok(d)
                },
            )
            .expect("infallible");
            let write = measure_op(quick, || -> Result<(), String> {
                spec().run(|db: &mut Session| {
                    db.state_manager()
                        .execute_script(INSERT_ONE)
                        .expect("insert");
                });
                Ok(())
            })
            .expect("infallible");
            (floor, empty, write)
        });
        report.per_test(name, section, FLOOR, VQ_WRITE, outcome.map(Ok));
    }

    fn add_baseline(
        &self,
        report: &mut Report,
        result: Result<(Stats, Stats), String>,
        only: &'static str,
        whole: &'static str,
    ) {
        let name = self.backend;
        let (empty, write) = (
            report.median_us(name, VQ_EMPTY),
            report.median_us(name, VQ_WRITE),
        );
        match result {
            Ok((isolation, test)) => {
                let note = ratio(Some(isolation.median_us()), empty).map_or(String::new(), |r| {
                    format!("{r:.0}x the venomqa overhead (empty test)")
                });
                report.add(name, "baseline", only, isolation, note);
                let note = ratio(Some(test.median_us()), write).map_or(String::new(), |r| {
                    format!("{r:.0}x the venomqa test writing 1 row")
                });
                report.add(name, "baseline", whole, test, note);
            }
            Err(e) => {
                report.skip(name, "baseline", only, e.clone());
                report.skip(name, "baseline", whole, e);
            }
        }
    }

    /// Returns (the write, the isolation: create + schema + drop) per sample.
    fn fresh_database(&self, raw: &mut dyn RawSql, quick: bool) -> Result<(Stats, Stats), String> {
        let schema = schema(self.dialect);
        let db = format!("vq_bench_fresh_{}", std::process::id());
        match self.dialect {
            Dialect::Sqlite => measure_parts(quick, || {
                let t = Instant::now();
                let mut fresh = (self.connect)(":memory:")?;
                fresh.batch(&schema)?;
                let setup = t.elapsed();
                let write = timed(|| fresh.batch(INSERT_ONE))?;
                let t = Instant::now();
                drop(fresh);
                Ok((write, setup + t.elapsed()))
            }),
            // On the same connection (USE), which is kinder than #[sqlx::test], which also
            // opens new connections to the new database.
            Dialect::MySql => {
                let current = self
                    .url
                    .rsplit('/')
                    .next()
                    .unwrap_or("test")
                    .split('?')
                    .next()
                    .unwrap_or("test")
                    .to_owned();
                let _ = raw.batch(&format!("DROP DATABASE IF EXISTS {db}"));
                measure_parts(quick, || {
                    let t = Instant::now();
                    raw.batch(&format!("CREATE DATABASE {db}; USE {db}"))?;
                    raw.batch(&schema)?;
                    let setup = t.elapsed();
                    let write = timed(|| raw.batch(INSERT_ONE))?;
                    let drop = timed(|| raw.batch(&format!("USE {current}; DROP DATABASE {db}")))?;
                    Ok((write, setup + drop))
                })
            }
            // PostgreSQL cannot switch databases: a new connection is part of the method.
            Dialect::Postgres => {
                let _ = raw.batch(&format!("DROP DATABASE IF EXISTS {db}"));
                let url = with_db(self.url, &db);
                measure_parts(quick, || {
                    let t = Instant::now();
                    raw.batch(&format!("CREATE DATABASE {db}"))?;
                    let mut fresh = (self.connect)(&url)?;
                    fresh.batch(&schema)?;
                    let setup = t.elapsed();
                    let write = timed(|| fresh.batch(INSERT_ONE))?;
                    let t = Instant::now();
                    drop(fresh);
                    raw.batch(&format!("DROP DATABASE {db}"))?;
                    Ok((write, setup + t.elapsed()))
                })
            }
        }
    }

    /// Checkpoint + rollback as the table grows (one row changed) and as the changed
    /// share of 10,000 rows grows; only venomqa's two calls are timed.
    fn scaling(&self, report: &mut Report, quick: bool) {
        let name = self.backend;
        let section = "scaling";
        let mut manager =
            match venomqa::registry::connect(&BackendConfig::new(name).with_url(self.url)) {
                Ok(m) => m,
                Err(e) => {
                    report.skip(
                        name,
                        section,
                        "checkpoint + rollback",
                        format!(
                            "venomqa backend unavailable: {}",
                            first_line(&e.to_string())
                        ),
                    );
                    return;
                }
            };
        let m = manager.as_mut();
        if let Err(e) = m.execute_script(&schema(self.dialect)) {
            report.skip(name, section, "checkpoint + rollback", e.to_string());
            return;
        }
        let sizes: &[usize] = if quick {
            &[100, 1_000, 10_000]
        } else {
            &[100, 1_000, 10_000, 100_000]
        };
        let mut size_points = Vec::new();
        for &size in sizes {
            let case = format!("{size} rows, 1 changed");
            match fill(m, size).and_then(|()| cycle(m, 1, quick)) {
                Ok(s) => {
                    size_points.push((size as f64, s.median_us()));
                    report.add(name, section, case, s, "checkpoint + rollback only")
                }
                Err(e) => report.skip(name, section, case, e),
            }
        }
        let mut share_points = Vec::new();
        if fill(m, 10_000).is_ok() {
            for changed in [100usize, 1_000, 10_000] {
                let pct = changed as f64 / 100.0;
                let case = format!("10000 rows, {pct}% changed");
                match cycle(m, changed, quick) {
                    Ok(s) => {
                        share_points.push((pct, s.median_us()));
                        report.add(name, section, case, s, "checkpoint + rollback only")
                    }
                    Err(e) => report.skip(name, section, case, e),
                }
            }
        }
        let _ = m.execute_script("DELETE FROM vq_bench_scale");
        let growth = describe_growth(&size_points);
        report.note(format!(
            "{name}: checkpoint + rollback with 1 row changed, 100 -> {} rows: {growth}",
            sizes.last().unwrap()
        ));
        if let (Some(first), Some(last)) = (share_points.first(), share_points.last()) {
            report.note(format!(
                "{name}: 10,000 rows, 1% -> 100% changed: {} -> {} ({:.1}x for 100x the changed rows)",
                fmt_us(first.1),
                fmt_us(last.1),
                last.1 / first.1
            ));
        }
        report.series(Chart::Size, format!("{name} (venomqa)"), size_points);
        report.series(Chart::Share, format!("{name} (venomqa)"), share_points);
    }
}

/// "flat (1.2x for 1000x the data)" or "grows 850x for 1000x the data".
pub fn describe_growth(points: &[(f64, f64)]) -> String {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return "not measured".into();
    };
    let data = last.0 / first.0;
    let cost = last.1 / first.1;
    let shape = if cost < 2.0 {
        "flat"
    } else if cost < data.sqrt() {
        "sub-linear"
    } else {
        "roughly linear in the data size"
    };
    format!(
        "{} -> {} ({cost:.1}x for {data:.0}x the data: {shape})",
        fmt_us(first.1),
        fmt_us(last.1)
    )
}

/// Replaces vq_bench_scale's rows by `size` committed rows, through the manager's
/// connection (outside any checkpoint).
fn fill(m: &mut dyn StateManager, size: usize) -> Result<(), String> {
    let mut script = String::from("DELETE FROM vq_bench_scale;\n");
    let mut id = 1;
    while id <= size {
        let end = (id + 999).min(size);
        let values: Vec<String> = (id..=end)
            .map(|i| format!("({i}, {i}, 'row {i}')"))
            .collect();
        script.push_str(&format!(
            "INSERT INTO vq_bench_scale (id, n, name) VALUES {};\n",
            values.join(", ")
        ));
        id = end + 1;
    }
    m.execute_script(&script).map_err(|e| e.to_string())
}

/// One test's cycle: checkpoint, change `changed` rows, discard the checkpoint (what a
/// session does at the end). Only the checkpoint and the discard are timed.
fn cycle(
    m: &mut dyn StateManager,
    changed: usize,
    quick: bool,
) -> Result<crate::harness::Stats, String> {
    let update =
        format!("UPDATE vq_bench_scale SET n = n + 1, name = 'changed' WHERE id <= {changed}");
    let mut one = || -> Result<Duration, String> {
        let t = Instant::now();
        m.checkpoint(ROOT_CHECKPOINT).map_err(|e| e.to_string())?;
        let cp = t.elapsed();
        m.execute_script(&update).map_err(|e| e.to_string())?;
        let t = Instant::now();
        m.discard(ROOT_CHECKPOINT).map_err(|e| e.to_string())?;
        Ok(cp + t.elapsed())
    };
    let t = Instant::now();
    one()?;
    let probe = t.elapsed();
    measure(
        Budget::for_probe(probe.max(Duration::from_micros(600)), quick),
        one,
    )
}

pub fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(160).collect()
}

// ---- drivers ----

pub fn connect_sqlite(url: &str) -> Result<Box<dyn RawSql>, String> {
    let conn = if url.contains(":memory:") {
        rusqlite::Connection::open_in_memory()
    } else {
        rusqlite::Connection::open(url.trim_start_matches("sqlite://"))
    }
    .map_err(|e| e.to_string())?;
    Ok(Box::new(conn))
}

impl RawSql for rusqlite::Connection {
    fn batch(&mut self, sql: &str) -> Result<(), String> {
        self.execute_batch(sql).map_err(|e| e.to_string())
    }
    fn select1(&mut self) -> Result<(), String> {
        self.query_row("SELECT 1", [], |_| Ok(()))
            .map_err(|e| e.to_string())
    }
}

#[cfg(feature = "mysql")]
pub fn connect_mysql(url: &str) -> Result<Box<dyn RawSql>, String> {
    let opts = mysql::Opts::from_url(url).map_err(|e| e.to_string())?;
    let opts =
        mysql::OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(Duration::from_secs(2)));
    Ok(Box::new(mysql::Conn::new(opts).map_err(|e| e.to_string())?))
}

#[cfg(feature = "mysql")]
impl RawSql for mysql::Conn {
    fn batch(&mut self, sql: &str) -> Result<(), String> {
        use mysql::prelude::Queryable;
        self.query_drop(sql).map_err(|e| e.to_string())
    }
    fn select1(&mut self) -> Result<(), String> {
        use mysql::prelude::Queryable;
        self.query_drop("SELECT 1").map_err(|e| e.to_string())
    }
}

#[cfg(feature = "postgres")]
pub fn connect_postgres(url: &str) -> Result<Box<dyn RawSql>, String> {
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| e.to_string())?;
    config.connect_timeout(Duration::from_secs(2));
    // Notices ("table already exists, skipping") are not worth printing.
    config.notice_callback(|_| {});
    Ok(Box::new(
        config.connect(postgres::NoTls).map_err(|e| e.to_string())?,
    ))
}

#[cfg(feature = "postgres")]
impl RawSql for postgres::Client {
    fn batch(&mut self, sql: &str) -> Result<(), String> {
        self.batch_execute(sql).map_err(|e| e.to_string())
    }
    fn select1(&mut self) -> Result<(), String> {
        // The simple query protocol: one round trip (a prepared query would take two).
        self.simple_query("SELECT 1")
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_db_replaces_the_database() {
        assert_eq!(
            with_db("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_db("postgres://h/test?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(with_db("postgres://h", "x"), "postgres://h/x");
    }
}

#[cfg(test)]
mod growth_tests {
    use super::describe_growth;

    #[test]
    fn words_the_growth() {
        assert!(describe_growth(&[(100.0, 10.0), (100_000.0, 11.0)]).contains("flat"));
        assert!(describe_growth(&[(100.0, 10.0), (100_000.0, 9_000.0)]).contains("linear"));
        assert_eq!(describe_growth(&[]), "not measured");
    }
}
