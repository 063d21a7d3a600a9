//! Capture isolation: what a checkpoint and a rollback cost when ANOTHER connection made
//! the changes, against what users do today to get back to a state an app server wrote
//! over (a copy of every table restored, a database re-created from a template), and
//! what the triggers add to the app's own writes. All in one run.
//!
//! Five tables (accounts, products, orders with a cascading foreign key to accounts,
//! order_lines with foreign keys to orders and products, and a keyless events table), each
//! with `n` rows, n = 1,000 and 100,000. The app is a raw driver connection of its own;
//! venomqa's manager is another connection.

#![cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))]

use std::time::Duration;

use venomqa::{BackendConfig, StateManager};

use crate::harness::{fmt_us, measure, timed, Budget};
use crate::report::{Report, Verdict};
use crate::sql::{Dialect, RawSql};

const SECTION: &str = "capture";

/// The statements making `k` changes on keyed tables: updates of accounts, inserts of
/// orders, deletes of order lines (a third each; one update for k = 1).
fn changes(k: usize) -> Vec<String> {
    if k == 1 {
        return vec!["UPDATE accounts SET balance = balance + 1 WHERE id = 1".to_owned()];
    }
    let (u, i) = (k.div_ceil(3), k / 3);
    let d = k - u - i;
    vec![
        format!("UPDATE accounts SET balance = balance + 1 WHERE id <= {u}"),
        format!(
            "INSERT INTO orders (account_id, total) SELECT id, 1 FROM accounts WHERE id <= {i}"
        ),
        format!("DELETE FROM order_lines WHERE order_id <= {d}"),
    ]
}

/// The tables, parents first.
const TABLES: [&str; 5] = ["accounts", "products", "orders", "order_lines", "events"];

fn schema(dialect: Dialect) -> Vec<String> {
    let (serial, engine) = match dialect {
        Dialect::MySql => ("INT AUTO_INCREMENT PRIMARY KEY", " ENGINE=InnoDB"),
        _ => ("serial PRIMARY KEY", ""),
    };
    vec![
        format!("CREATE TABLE accounts (id {serial}, email VARCHAR(100) NOT NULL UNIQUE, balance DECIMAL(12, 2) NOT NULL DEFAULT 0){engine}"),
        format!("CREATE TABLE products (id INT PRIMARY KEY, name VARCHAR(100), price DECIMAL(10, 2), stock INT){engine}"),
        format!("CREATE TABLE orders (id {serial}, account_id INT NOT NULL, total DECIMAL(12, 2), FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE){engine}"),
        format!("CREATE TABLE order_lines (order_id INT NOT NULL, line INT NOT NULL, product_id INT NOT NULL, qty INT, PRIMARY KEY (order_id, line), FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE, FOREIGN KEY (product_id) REFERENCES products (id)){engine}"),
        format!("CREATE TABLE events (account_id INT, kind VARCHAR(20), at INT){engine}"),
    ]
}

/// Statements loading `n` rows into each table.
fn load(dialect: Dialect, n: usize) -> Vec<String> {
    let numbers = match dialect {
        Dialect::Postgres => format!("(SELECT generate_series(1, {n}) AS n) s"),
        _ => format!(
            "(SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 1 AS n FROM vq_digits a, vq_digits b, vq_digits c, vq_digits e, vq_digits f) s WHERE s.n <= {n}"
        ),
    };
    let mut out = Vec::new();
    if dialect != Dialect::Postgres {
        out.push("CREATE TABLE vq_digits (d INT)".to_owned());
        out.push("INSERT INTO vq_digits VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)".to_owned());
    }
    let concat = |a: &str, b: &str| match dialect {
        Dialect::MySql => format!("CONCAT({a}, {b})"),
        _ => format!("{a} || {b}"),
    };
    out.push(format!(
        "INSERT INTO accounts (id, email, balance) SELECT n, {}, n FROM {numbers}",
        concat("'user'", &concat("n", "'@example.com'"))
    ));
    out.push(format!(
        "INSERT INTO products (id, name, price, stock) SELECT n, {}, n, 100 FROM {numbers}",
        concat("'product '", "n")
    ));
    out.push(format!(
        "INSERT INTO orders (id, account_id, total) SELECT n, n, n FROM {numbers}"
    ));
    out.push(format!("INSERT INTO order_lines (order_id, line, product_id, qty) SELECT n, 1, n, 1 FROM {numbers}"));
    out.push(format!(
        "INSERT INTO events (account_id, kind, at) SELECT n, 'login', n FROM {numbers}"
    ));
    if dialect == Dialect::Postgres {
        for t in ["accounts", "orders"] {
            out.push(format!("SELECT setval('{t}_id_seq', {n})"));
        }
        out.push("ANALYZE".to_owned());
    }
    out
}

struct Db {
    dialect: Dialect,
    /// The server's URL with no database.
    server: String,
    connect: fn(&str) -> Result<Box<dyn RawSql>, String>,
}

impl Db {
    fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.server)
    }

    fn admin(&self) -> Result<Box<dyn RawSql>, String> {
        let db = match self.dialect {
            Dialect::Postgres => "postgres",
            _ => "test",
        };
        (self.connect)(&self.url(db))
    }

    fn run_all(&self, conn: &mut dyn RawSql, statements: &[String]) -> Result<(), String> {
        for s in statements {
            conn.batch(s).map_err(|e| format!("{s}: {e}"))?;
        }
        Ok(())
    }

    /// A new database `name` holding the five tables with `n` rows each.
    fn create(&self, name: &str, n: usize) -> Result<(), String> {
        let mut admin = self.admin()?;
        if self.dialect == Dialect::Postgres {
            admin.batch(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
        } else {
            admin.batch(&format!("DROP DATABASE IF EXISTS {name}"))?;
        }
        admin.batch(&format!("CREATE DATABASE {name}"))?;
        let mut c = (self.connect)(&self.url(name))?;
        self.run_all(c.as_mut(), &schema(self.dialect))?;
        self.run_all(c.as_mut(), &load(self.dialect, n))
    }

    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::MySql => "mysql",
            _ => "postgres",
        }
    }

    fn capture(&self, database: &str) -> Result<Box<dyn StateManager>, String> {
        let config = BackendConfig::new(self.backend())
            .with_url(self.url(database))
            .with_option("isolation", "capture");
        venomqa::registry::connect(&config).map_err(|e| e.to_string())
    }
}

fn slow(quick: bool) -> Budget {
    Budget {
        warmup: 2,
        min_iters: if quick { 7 } else { 15 },
        max_iters: if quick { 15 } else { 40 },
        max_time: Duration::from_millis(if quick { 1_500 } else { 5_000 }),
    }
}

fn err(e: venomqa::Error) -> String {
    e.to_string()
}

/// Runs the capture rows of one server, if it answers.
pub fn run(
    report: &mut Report,
    dialect: Dialect,
    server: &str,
    connect: fn(&str) -> Result<Box<dyn RawSql>, String>,
    quick: bool,
) {
    let db = Db {
        dialect,
        server: server.to_owned(),
        connect,
    };
    let name = db.backend();
    if let Err(e) = db.admin() {
        report.skip(
            name,
            SECTION,
            "capture",
            format!("the server did not answer: {e}"),
        );
        return;
    }
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 100_000]
    };
    for &n in sizes {
        if let Err(e) = sizes_run(report, &db, n, quick) {
            report.skip(name, SECTION, format!("capture, {n} rows"), e);
        }
    }
    judge(report, name, *sizes.last().expect("sizes"));
}

fn case(what: &str, n: usize) -> String {
    format!("{what} ({n} rows/table)")
}

fn sizes_run(report: &mut Report, db: &Db, n: usize, quick: bool) -> Result<(), String> {
    let name = db.backend();
    let database = format!("vq_bench_capture_{n}");
    db.create(&database, n)?;
    let mut app = (db.connect)(&db.url(&database))?;
    let mut m = db.capture(&database)?;
    // The first checkpoint installs capture.
    let install = timed(|| m.checkpoint("root").map_err(err))?;
    report.note(format!(
        "{name}: capture installed on 5 tables of {n} rows in {}",
        fmt_us(install.as_secs_f64() * 1e6)
    ));

    let stats = measure(slow(quick), || {
        let t = timed(|| m.checkpoint("c").map_err(err))?;
        m.release("c").map_err(err)?;
        Ok::<_, String>(t)
    })?;
    report.add(
        name,
        SECTION,
        case("capture checkpoint", n),
        stats,
        "log positions, counters, schema fingerprint",
    );

    for k in [1, 10, 1_000] {
        let statements = changes(k);
        let stats = measure(slow(quick), || {
            m.checkpoint("c").map_err(err)?;
            for s in &statements {
                app.batch(s)?;
            }
            let t = timed(|| m.rollback("c").map_err(err))?;
            m.release("c").map_err(err)?;
            Ok::<_, String>(t)
        })?;
        report.add(
            name,
            SECTION,
            case(&format!("capture rollback, {k} changed"), n),
            stats,
            "another connection's changes, keyed tables",
        );
    }
    let stats = measure(slow(quick), || {
        m.checkpoint("c").map_err(err)?;
        app.batch("INSERT INTO events (account_id, kind, at) SELECT id, 'extra', 0 FROM accounts WHERE id <= 10")?;
        let t = timed(|| m.rollback("c").map_err(err))?;
        m.release("c").map_err(err)?;
        Ok::<_, String>(t)
    })?;
    report.add(
        name,
        SECTION,
        case("capture rollback, 10 rows of a keyless table", n),
        stats,
        "10 rows inserted",
    );
    // Churn in the keyless table: 10 changes of every kind, among them rows that
    // appeared after the checkpoint and went again (the case a net multiset restores).
    let churn = keyless_churn(db.dialect);
    let stats = measure(slow(quick), || {
        m.checkpoint("c").map_err(err)?;
        for s in &churn {
            app.batch(s)?;
        }
        let t = timed(|| m.rollback("c").map_err(err))?;
        m.release("c").map_err(err)?;
        Ok::<_, String>(t)
    })?;
    report.add(
        name,
        SECTION,
        case("capture rollback, 10 changes churning a keyless table", n),
        stats,
        "3 inserted, 2 updated twice, 2 deleted, 1 inserted then deleted",
    );
    m.discard("root").map_err(err)?;

    // What the triggers add to the app's writes: the same single-row UPDATE on this
    // database (triggers installed) and on a copy without them.
    let plain = format!("vq_bench_plain_{n}");
    db.create(&plain, n)?;
    let mut plain_app = (db.connect)(&db.url(&plain))?;
    let mut app_write = |statement: &str, on: &str, off: &str, what: &str| {
        let with = measure(Budget::fast(quick), || timed(|| app.batch(statement)))?;
        let without = measure(Budget::fast(quick), || timed(|| plain_app.batch(statement)))?;
        report.add(
            name,
            SECTION,
            case(on, n),
            with,
            format!(
                "{:.2}x the {what} without",
                with.median_us() / without.median_us()
            ),
        );
        report.add(name, SECTION, case(off, n), without, "the baseline");
        Ok::<_, String>(())
    };
    app_write(
        "UPDATE accounts SET balance = balance + 1 WHERE id = 7",
        "app write, capture triggers on",
        "app write, no triggers",
        "write",
    )?;
    app_write(
        "INSERT INTO orders (account_id, total) VALUES (3, 1)",
        "app insert, capture triggers on",
        "app insert, no triggers",
        "insert",
    )?;
    // The keyless table: its writes also maintain capture's row-hash index (PostgreSQL)
    // or its invisible row id (MySQL).
    app_write(
        "INSERT INTO events (account_id, kind, at) VALUES (3, 'app', 1)",
        "app insert into the keyless table, capture on",
        "app insert into the keyless table, no capture",
        "insert",
    )?;

    // Baseline 1: a copy of every table, restored after the app's 10 changes.
    let copy = copy_statements(db.dialect);
    db.run_all(plain_app.as_mut(), &copy.0)?;
    let statements = changes(10);
    let stats = measure(slow(quick), || {
        for s in &statements {
            plain_app.batch(s)?;
        }
        timed(|| db.run_all(plain_app.as_mut(), &copy.1))
    })?;
    report.add(
        name,
        SECTION,
        case("baseline: restore a copy of every table", n),
        stats,
        "after 10 changes",
    );

    // Baseline 2: the database re-created from a template (PostgreSQL) or from a copy
    // (MySQL has no templates); the app must reconnect to it.
    drop(plain_app);
    drop(app);
    let stats = measure(slow(quick), || timed(|| fresh_from_template(db, &plain, n)))?;
    report.add(
        name,
        SECTION,
        case("baseline: re-create the database from a template", n),
        stats,
        match db.dialect {
            Dialect::Postgres => "CREATE DATABASE .. TEMPLATE",
            _ => "CREATE DATABASE + CREATE TABLE .. LIKE + INSERT .. SELECT",
        },
    );
    let mut admin = db.admin()?;
    for d in [&plain, &format!("{plain}_fresh")] {
        let _ = admin.batch(&format!("DROP DATABASE IF EXISTS {d}"));
    }
    Ok(())
}

/// Ten changes to the keyless `events` table: 3 rows inserted, 2 existing rows updated
/// twice, 2 existing rows deleted, 1 row inserted then deleted.
fn keyless_churn(dialect: Dialect) -> Vec<String> {
    let one = |condition: &str| match dialect {
        Dialect::MySql => format!("DELETE FROM events WHERE {condition} LIMIT 1"),
        _ => format!(
            "DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE {condition} LIMIT 1)"
        ),
    };
    vec![
        "INSERT INTO events (account_id, kind, at) VALUES (1, 'churn', 1), (2, 'churn', 2), (3, 'churn', 3)".to_owned(),
        "UPDATE events SET at = at + 1 WHERE account_id IN (20, 21) AND kind = 'login'".to_owned(),
        "UPDATE events SET at = at + 1 WHERE account_id IN (20, 21) AND kind = 'login'".to_owned(),
        "DELETE FROM events WHERE account_id IN (30, 31) AND kind = 'login'".to_owned(),
        "INSERT INTO events (account_id, kind, at) VALUES (4, 'gone', 4)".to_owned(),
        one("kind = 'gone'"),
    ]
}

/// Statements making a shadow copy of every table, and restoring every table from it.
fn copy_statements(dialect: Dialect) -> (Vec<String>, Vec<String>) {
    let mut make = Vec::new();
    let mut restore = Vec::new();
    for t in TABLES {
        make.push(format!("DROP TABLE IF EXISTS shadow_{t}"));
        make.push(format!("CREATE TABLE shadow_{t} AS SELECT * FROM {t}"));
    }
    match dialect {
        Dialect::Sqlite => {
            for t in TABLES {
                restore.push(format!("DELETE FROM {t}"));
                restore.push(format!("INSERT INTO {t} SELECT * FROM shadow_{t}"));
            }
        }
        Dialect::Postgres => {
            restore.push(format!("TRUNCATE {}", TABLES.join(", ")));
            for t in TABLES {
                restore.push(format!("INSERT INTO {t} SELECT * FROM shadow_{t}"));
            }
        }
        _ => {
            restore.push("SET FOREIGN_KEY_CHECKS = 0".to_owned());
            for t in TABLES {
                restore.push(format!("DELETE FROM {t}"));
                restore.push(format!("INSERT INTO {t} SELECT * FROM shadow_{t}"));
            }
            restore.push("SET FOREIGN_KEY_CHECKS = 1".to_owned());
        }
    }
    (make, restore)
}

fn fresh_from_template(db: &Db, template: &str, _n: usize) -> Result<(), String> {
    let fresh = format!("{template}_fresh");
    let mut admin = db.admin()?;
    match db.dialect {
        Dialect::Postgres => {
            admin.batch(&format!("DROP DATABASE IF EXISTS {fresh}"))?;
            admin.batch(&format!("CREATE DATABASE {fresh} TEMPLATE {template}"))
        }
        _ => {
            admin.batch(&format!("DROP DATABASE IF EXISTS {fresh}"))?;
            admin.batch(&format!("CREATE DATABASE {fresh}"))?;
            for t in TABLES {
                admin.batch(&format!("CREATE TABLE {fresh}.{t} LIKE {template}.{t}"))?;
            }
            admin.batch("SET FOREIGN_KEY_CHECKS = 0")?;
            for t in TABLES {
                admin.batch(&format!(
                    "INSERT INTO {fresh}.{t} SELECT * FROM {template}.{t}"
                ))?;
            }
            admin.batch("SET FOREIGN_KEY_CHECKS = 1")
        }
    }
}

fn judge(report: &mut Report, name: &str, n: usize) {
    let label = if name == "mysql" {
        "MySQL"
    } else {
        "PostgreSQL"
    };
    let get = |report: &Report, what: &str| report.median_us(name, &case(what, n));
    let checkpoint = get(report, "capture checkpoint");
    let rollback10 = get(report, "capture rollback, 10 changed");
    let copy = get(report, "baseline: restore a copy of every table");
    let template = get(report, "baseline: re-create the database from a template");
    let write_with = get(report, "app write, capture triggers on");
    let write_without = get(report, "app write, no triggers");
    let keyless = get(
        report,
        "capture rollback, 10 changes churning a keyless table",
    );
    let keyless_with = get(report, "app insert into the keyless table, capture on");
    let keyless_without = get(report, "app insert into the keyless table, no capture");
    let target = |report: &mut Report,
                  title: String,
                  value: Option<f64>,
                  limit: f64,
                  higher_is_better: bool,
                  detail: &dyn Fn(f64) -> String| {
        match value {
            Some(v) => {
                let met = if higher_is_better {
                    v >= limit
                } else {
                    v <= limit
                };
                report.target(
                    title,
                    if met { Verdict::Met } else { Verdict::Missed },
                    detail(v),
                );
            }
            None => report.target(title, Verdict::NotMeasured, "not measured in this run"),
        }
    };
    target(
        report,
        format!("{label} capture: checkpoint <= 2 ms ({n} rows/table)"),
        checkpoint,
        2_000.0,
        false,
        &|v| fmt_us(v),
    );
    target(
        report,
        format!("{label} capture: rollback of 10 changes <= 15 ms ({n} rows/table)"),
        rollback10,
        15_000.0,
        false,
        &|v| fmt_us(v),
    );
    let slower = match (copy, template) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let ratio = match (slower, rollback10) {
        (Some(s), Some(r)) => Some(s / r),
        _ => None,
    };
    target(
        report,
        format!("{label} capture: >= 50x faster than the copy/template restore ({n} rows/table)"),
        ratio,
        50.0,
        true,
        &|v| {
            format!(
                "{v:.0}x: the faster baseline {} vs the rollback of 10 changes {}",
                slower.map_or("-".into(), fmt_us),
                rollback10.map_or("-".into(), fmt_us)
            )
        },
    );
    let overhead = match (write_with, write_without) {
        (Some(a), Some(b)) => Some(a / b),
        _ => None,
    };
    target(
        report,
        format!("{label} capture: app write overhead <= 1.5x"),
        overhead,
        1.5,
        false,
        &|v| format!("{v:.2}x a single-row UPDATE"),
    );
    target(
        report,
        format!(
            "{label} capture: rollback of 10 changes to a keyless table <= 15 ms ({n} rows/table)"
        ),
        keyless,
        15_000.0,
        false,
        &|v| fmt_us(v),
    );
    let keyless_overhead = match (keyless_with, keyless_without) {
        (Some(a), Some(b)) => Some(a / b),
        _ => None,
    };
    target(
        report,
        format!("{label} capture: app insert into a keyless table <= 1.5x ({n} rows/table)"),
        keyless_overhead,
        1.5,
        false,
        &|v| format!("{v:.2}x a single-row INSERT"),
    );
}

/// SQLite files: capture by the online backup API (venomqa's), against the alternative
/// the issue asked to weigh, an undo log filled by triggers (built here only to measure
/// it), and against the copy-of-every-table baseline.
pub fn run_sqlite(report: &mut Report, workspace: &std::path::Path, quick: bool) {
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 100_000]
    };
    for &n in sizes {
        if let Err(e) = sqlite_size(report, workspace, n, quick) {
            report.skip("sqlite", SECTION, format!("capture, {n} rows"), e);
        }
    }
    let n = *sizes.last().expect("sizes");
    let get = |what: &str| report.median_us("sqlite", &case(what, n));
    if let (Some(backup), Some(triggers)) = (
        get("capture rollback (backup API), 10 changed"),
        get("capture rollback (triggers), 10 changed"),
    ) {
        report.note(format!(
            "sqlite: at {n} rows per table a rollback of 10 changes costs {} with the backup API and {} with triggers. venomqa uses the backup API: it restores everything in the file (schema and AUTOINCREMENT counters too), installs nothing, and costs the app's writes nothing; its cost grows with the file, the triggers' with the changes",
            fmt_us(backup),
            fmt_us(triggers)
        ));
    }
}

fn sqlite_file(
    workspace: &std::path::Path,
    name: &str,
) -> Result<(std::path::PathBuf, rusqlite::Connection), String> {
    let dir = workspace.join("target/venomqa-bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let conn = rusqlite::Connection::open(&path).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(|e| e.to_string())?;
    Ok((path, conn))
}

fn sqlite_load(conn: &rusqlite::Connection, n: usize) -> Result<(), String> {
    let mut sql = String::from(
        "CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, balance NUMERIC NOT NULL DEFAULT 0);
         CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price NUMERIC, stock INT);
         CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, account_id INT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE, total NUMERIC);
         CREATE TABLE order_lines (order_id INT NOT NULL REFERENCES orders (id) ON DELETE CASCADE, line INT NOT NULL, product_id INT NOT NULL REFERENCES products (id), qty INT, PRIMARY KEY (order_id, line));
         CREATE TABLE events (account_id INT, kind TEXT, at INT);
         BEGIN;",
    );
    let numbers = format!("(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n}) SELECT n FROM s)");
    sql.push_str(&format!(
        " INSERT INTO accounts (id, email, balance) SELECT n, 'user' || n || '@example.com', n FROM {numbers};
          INSERT INTO products SELECT n, 'product ' || n, n, 100 FROM {numbers};
          INSERT INTO orders (id, account_id, total) SELECT n, n, n FROM {numbers};
          INSERT INTO order_lines SELECT n, 1, n, 1 FROM {numbers};
          INSERT INTO events SELECT n, 'login', n FROM {numbers};
          COMMIT;"
    ));
    conn.execute_batch(&sql).map_err(|e| e.to_string())
}

/// The trigger-based undo log measured against the backup API: per table an undo table
/// and AFTER INSERT/UPDATE/DELETE triggers logging the old row by rowid.
fn sqlite_triggers(conn: &rusqlite::Connection) -> Result<(), String> {
    let mut sql = String::new();
    for t in TABLES {
        let cols: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| e.to_string())?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| e.to_string())?
        };
        let list = cols.join(", ");
        let of = |row: &str| {
            cols.iter()
                .map(|c| format!("{row}.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        sql.push_str(&format!(
            "CREATE TABLE _vq_u_{t} (_vq_seq INTEGER PRIMARY KEY AUTOINCREMENT, _vq_op TEXT, _vq_rowid INT, {list});
             CREATE INDEX _vq_u_{t}_rowid ON _vq_u_{t} (_vq_rowid);
             CREATE TRIGGER _vq_{t}_ai AFTER INSERT ON {t} BEGIN INSERT INTO _vq_u_{t} (_vq_op, _vq_rowid, {list}) VALUES ('I', NEW.rowid, {}); END;
             CREATE TRIGGER _vq_{t}_au AFTER UPDATE ON {t} BEGIN INSERT INTO _vq_u_{t} (_vq_op, _vq_rowid, {list}) VALUES ('U', OLD.rowid, {}); END;
             CREATE TRIGGER _vq_{t}_ad AFTER DELETE ON {t} BEGIN INSERT INTO _vq_u_{t} (_vq_op, _vq_rowid, {list}) VALUES ('D', OLD.rowid, {}); END;",
            of("NEW"),
            of("OLD"),
            of("OLD"),
        ));
    }
    conn.execute_batch(&sql).map_err(|e| e.to_string())
}

fn sqlite_trigger_rollback(conn: &rusqlite::Connection, marks: &[i64]) -> Result<(), String> {
    let mut sql = String::from("PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE; DROP TABLE IF EXISTS temp.vq_replay; CREATE TEMP TABLE vq_replay (on_off INT); ");
    for (t, m) in TABLES.iter().zip(marks) {
        let cols: Vec<String> = {
            let mut stmt = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| e.to_string())?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| e.to_string())?
        };
        let list = cols.join(", ");
        sql.push_str(&format!(
            "DELETE FROM {t} WHERE rowid IN (SELECT _vq_rowid FROM _vq_u_{t} WHERE _vq_seq > {m});
             INSERT INTO {t} (rowid, {list}) SELECT _vq_rowid, {list} FROM _vq_u_{t} u WHERE _vq_seq > {m} AND _vq_op IN ('U', 'D')
               AND _vq_seq = (SELECT MIN(_vq_seq) FROM _vq_u_{t} e WHERE e._vq_rowid = u._vq_rowid AND e._vq_seq > {m});
             DELETE FROM _vq_u_{t} WHERE _vq_seq > {m};"
        ));
    }
    sql.push_str(" COMMIT; PRAGMA foreign_keys = ON;");
    conn.execute_batch(&sql).map_err(|e| e.to_string())
}

fn sqlite_marks(conn: &rusqlite::Connection) -> Result<Vec<i64>, String> {
    TABLES
        .iter()
        .map(|t| {
            conn.query_row(
                &format!("SELECT COALESCE(MAX(_vq_seq), 0) FROM _vq_u_{t}"),
                [],
                |r| r.get(0),
            )
            .map_err(|e| e.to_string())
        })
        .collect()
}

fn sqlite_size(
    report: &mut Report,
    workspace: &std::path::Path,
    n: usize,
    quick: bool,
) -> Result<(), String> {
    // venomqa's capture (the backup API), the app on a connection of its own.
    let (path, app) = sqlite_file(workspace, &format!("vq_bench_capture_{n}"))?;
    sqlite_load(&app, n)?;
    let config = BackendConfig::new("sqlite")
        .with_url(format!("sqlite://{}", path.display()))
        .with_option("isolation", "capture");
    let mut m = venomqa::registry::connect(&config).map_err(err)?;
    m.checkpoint("root").map_err(err)?;
    let stats = measure(slow(quick), || {
        let t = timed(|| m.checkpoint("c").map_err(err))?;
        m.release("c").map_err(err)?;
        Ok::<_, String>(t)
    })?;
    report.add(
        "sqlite",
        SECTION,
        case("capture checkpoint (backup API)", n),
        stats,
        "a copy of the file's pages into memory",
    );
    for k in [1, 10, 1_000] {
        let statements = changes(k);
        let stats = measure(slow(quick), || {
            m.checkpoint("c").map_err(err)?;
            for s in &statements {
                app.execute_batch(s).map_err(|e| e.to_string())?;
            }
            let t = timed(|| m.rollback("c").map_err(err))?;
            m.release("c").map_err(err)?;
            Ok::<_, String>(t)
        })?;
        report.add(
            "sqlite",
            SECTION,
            case(&format!("capture rollback (backup API), {k} changed"), n),
            stats,
            "another connection's changes",
        );
    }
    m.discard("root").map_err(err)?;
    let write = "UPDATE accounts SET balance = balance + 1 WHERE id = 7";
    let plain = measure(Budget::fast(quick), || {
        timed(|| app.execute_batch(write).map_err(|e| e.to_string()))
    })?;
    report.add(
        "sqlite",
        SECTION,
        case("app write, backup API (no triggers)", n),
        plain,
        "the baseline",
    );
    drop(m);

    // The alternative: triggers.
    let (_, tr) = sqlite_file(workspace, &format!("vq_bench_triggers_{n}"))?;
    sqlite_load(&tr, n)?;
    sqlite_triggers(&tr)?;
    let stats = measure(slow(quick), || timed(|| sqlite_marks(&tr).map(drop)))?;
    report.add(
        "sqlite",
        SECTION,
        case("capture checkpoint (triggers)", n),
        stats,
        "the undo logs' positions",
    );
    for k in [1, 10, 1_000] {
        let statements = changes(k);
        let stats = measure(slow(quick), || {
            let marks = sqlite_marks(&tr)?;
            for s in &statements {
                tr.execute_batch(s).map_err(|e| e.to_string())?;
            }
            timed(|| sqlite_trigger_rollback(&tr, &marks))
        })?;
        report.add(
            "sqlite",
            SECTION,
            case(&format!("capture rollback (triggers), {k} changed"), n),
            stats,
            "same connection, same changes",
        );
    }
    let with = measure(Budget::fast(quick), || {
        timed(|| tr.execute_batch(write).map_err(|e| e.to_string()))
    })?;
    report.add(
        "sqlite",
        SECTION,
        case("app write, triggers on", n),
        with,
        format!(
            "{:.2}x the write without",
            with.median_us() / plain.median_us()
        ),
    );

    // The baseline: a copy of every table restored.
    let (_, cp) = sqlite_file(workspace, &format!("vq_bench_copy_{n}"))?;
    sqlite_load(&cp, n)?;
    let (make, restore) = copy_statements(Dialect::Sqlite);
    for s in &make {
        cp.execute_batch(s).map_err(|e| e.to_string())?;
    }
    let statements = changes(10);
    let stats = measure(slow(quick), || {
        for s in &statements {
            cp.execute_batch(s).map_err(|e| e.to_string())?;
        }
        timed(|| {
            cp.execute_batch(&format!(
                "PRAGMA foreign_keys = OFF; BEGIN; {}; COMMIT;",
                restore.join("; ")
            ))
            .map_err(|e| e.to_string())
        })
    })?;
    report.add(
        "sqlite",
        SECTION,
        case("baseline: restore a copy of every table", n),
        stats,
        "after 10 changes",
    );
    Ok(())
}
