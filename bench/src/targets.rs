//! The targets, judged from the measured rows.

use crate::harness::fmt_us;
use crate::report::{Report, Verdict};
use crate::sql::{FLOOR, FRESH_DB, FRESH_DB_ONLY, TRUNCATE, TRUNCATE_ONLY, VQ_EMPTY, VQ_WRITE};

pub const REDIS_60MS: &str = "Redis: 10,000 mixed keys checkpoint + rollback <= 60 ms";
pub const REDIS_20X: &str = "Redis: >= 20x faster than the per-key method (10,000 keys)";
pub const MONGO_FASTER: &str = "MongoDB: snapshot faster than the JSON method";
pub const MONGO_EXACT: &str = "MongoDB: snapshot type-exact";
pub const SUITE_SQLITE: &str = "1,000-test suite on SQLite <= 1.3x unwrapped";
pub const SUITE_MYSQL: &str = "1,000-test suite on MySQL <= 1.3x unwrapped";
pub const SUITE_MYSQL_TX: &str =
    "1,000-test suite on MySQL <= 1.1x a hand-written transaction per test";
pub const NEXTEST_MYSQL: &str =
    "nextest on MySQL: per-test overhead over a hand-written transaction <= 0.2 ms";
pub const MYSQL_RT: &str = "MySQL: <= 2 round trips per empty test (counted)";
pub const POSTGRES_RT: &str = "PostgreSQL: <= 2 round trips per empty test (counted)";

/// Adds the SQL targets, and "not measured" for every target no module judged.
pub fn judge(report: &mut Report) {
    for (backend, label) in [("mysql", "MySQL"), ("postgres", "PostgreSQL")] {
        let floor = report.median_us(backend, FLOOR);
        let empty = report.median_us(backend, VQ_EMPTY);
        let write = report.median_us(backend, VQ_WRITE);
        let name = format!("{label}: per-test overhead <= 4 round trips");
        match (floor, empty) {
            (Some(f), Some(e)) => {
                let rt = e / f;
                let detail = format!(
                    "lease + root checkpoint + rollback = {} = {rt:.1} x the {} round trip",
                    fmt_us(e),
                    fmt_us(f)
                );
                let (verdict, detail) = if rt <= 4.0 {
                    (Verdict::Met, detail)
                } else {
                    (
                        Verdict::Missed,
                        format!("{detail}; missed by {:.0}%", (rt / 4.0 - 1.0) * 100.0),
                    )
                };
                report.target(name, verdict, detail);
            }
            _ => report.target(
                name,
                Verdict::NotMeasured,
                "the venomqa backend or the server was not available",
            ),
        }
        for (only, whole, times, what) in [
            (TRUNCATE_ONLY, TRUNCATE, 50.0, "truncating 5 tables"),
            (FRESH_DB_ONLY, FRESH_DB, 100.0, "a fresh database"),
        ] {
            let name = format!("{label}: >= {times:.0}x faster than {what}");
            let (iso, test) = (
                report.median_us(backend, only),
                report.median_us(backend, whole),
            );
            match (empty, iso) {
                (Some(e), Some(b)) => {
                    let x = b / e;
                    let mut detail = format!(
                        "isolation: {} vs venomqa's overhead (empty test) {} = {x:.0}x",
                        fmt_us(b),
                        fmt_us(e)
                    );
                    if let (Some(t), Some(w)) = (test, write) {
                        detail.push_str(&format!(
                            "; whole test writing 1 row: {} vs {} = {:.0}x",
                            fmt_us(t),
                            fmt_us(w),
                            t / w
                        ));
                    }
                    if x >= times {
                        report.target(name, Verdict::Met, detail);
                    } else {
                        report.target(
                            name,
                            Verdict::Missed,
                            format!("{detail}; short by {:.0}%", (1.0 - x / times) * 100.0),
                        );
                    }
                }
                _ => report.target(
                    name,
                    Verdict::NotMeasured,
                    "the venomqa backend or the server was not available",
                ),
            }
        }
    }
    for name in [
        REDIS_60MS,
        REDIS_20X,
        MONGO_FASTER,
        MONGO_EXACT,
        SUITE_SQLITE,
        SUITE_MYSQL,
        SUITE_MYSQL_TX,
        NEXTEST_MYSQL,
        MYSQL_RT,
        POSTGRES_RT,
    ] {
        if !report.targets.iter().any(|t| t.name == name) {
            report.target(
                name,
                Verdict::NotMeasured,
                "the venomqa backend or the server was not available (see the notes)",
            );
        }
    }
}
