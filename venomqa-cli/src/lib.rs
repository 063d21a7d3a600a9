//! `venomqa report`: sums up the cost report venomqa writes when `VENOMQA_REPORT` names a
//! file (one JSON line per test; the format is described in `venomqa::report`).
//!
//! ```
//! let lines = r#"{"test":"a::t","backend":"mysql","entry":"mysql","isolation":"transaction","outcome":"ok","rolled_back":true,"test_us":9000,"lease_us":6000,"lease_wait_us":500,"connect_us":5500,"checkpoints":1,"checkpoint_us":200,"rollbacks":1,"rollback_us":300,"session_us":2900,"pid":1,"at_ms":0}"#;
//! let report = venomqa_cli::Report::parse(lines)?;
//! let text = report.render("report.jsonl");
//! assert!(text.contains("1 test in 1 process: 1 ok"), "{text}");
//! assert!(text.contains("connect"), "{text}");
//! # Ok::<(), String>(())
//! ```

mod command;

pub use command::run;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One test's line of the report: venomqa's own [`Record`](venomqa::report::Record), the
/// type the runtime writes the line from (its fields, and `body_us`, `setup_us`,
/// `isolation_us` and `dominated_by`, are documented there).
pub use venomqa::report::Record as Line;

/// A parsed report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The lines, in file order.
    pub lines: Vec<Line>,
}

impl Report {
    /// Parses the file's text: one JSON object per line, blank lines skipped. An error
    /// names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let line: Line = serde_json::from_str(raw).map_err(|e| {
                format!(
                    "line {}: not a venomqa report line ({e}); was the file written by another program, or cut short?",
                    n + 1
                )
            })?;
            lines.push(line);
        }
        Ok(Report { lines })
    }

    /// The summary `venomqa report` prints: totals, isolation time against test time,
    /// and the 10 slowest tests with the part that dominated each.
    pub fn render(&self, source: &str) -> String {
        let mut out = String::new();
        let lines = &self.lines;
        let _ = writeln!(out, "venomqa report: {source}");
        if lines.is_empty() {
            let _ = writeln!(out, "no tests recorded");
            return out;
        }
        let processes = lines.iter().map(|l| l.pid).collect::<BTreeSet<_>>().len();
        let _ = writeln!(
            out,
            "{} in {}: {}",
            plural(lines.len(), "test"),
            plural(processes, "process"),
            counts(lines.iter().map(|l| l.outcome.as_str()))
        );
        let failed = lines.iter().filter(|l| !l.rolled_back).count();
        if failed > 0 {
            let _ = writeln!(out, "rollback FAILED in {}", plural(failed, "test"));
        }
        let mut backends: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for l in lines {
            backends
                .entry(l.backend.clone())
                .or_default()
                .push(&l.isolation);
        }
        let backends: Vec<String> = backends
            .into_iter()
            .map(|(name, isolations)| {
                format!(
                    "{name} {} ({})",
                    isolations.len(),
                    counts(isolations.into_iter())
                )
            })
            .collect();
        let _ = writeln!(out, "backends: {}", backends.join(", "));

        let sum = |f: fn(&Line) -> u64| lines.iter().map(f).sum::<u64>();
        let total = sum(|l| l.test_us);
        let isolation = sum(Line::isolation_us);
        let connects = lines.iter().filter(|l| l.connect_us.is_some()).count();
        let share = |us: u64| {
            if total == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", us as f64 * 100.0 / total as f64)
            }
        };
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<22}{:>12}{:>9}{:>14}",
            "time", "total", "share", "median/test"
        );
        let mut row = |name: &str, us: u64, median: Option<u64>, note: String| {
            let median = median.map(duration).unwrap_or_default();
            let row = format!(
                "{name:<22}{:>12}{:>9}{median:>14}{note}",
                duration(us),
                share(us)
            );
            let _ = writeln!(out, "{}", row.trim_end());
        };
        row(
            "tests",
            total,
            Some(median(lines.iter().map(|l| l.test_us))),
            String::new(),
        );
        row(
            "isolation",
            isolation,
            Some(median(lines.iter().map(Line::isolation_us))),
            String::new(),
        );
        row("  set-up", sum(Line::setup_us), None, String::new());
        row(
            "  lease wait",
            sum(|l| l.lease_wait_us),
            None,
            String::new(),
        );
        row(
            "  connect",
            sum(|l| l.connect_us.unwrap_or(0)),
            None,
            format!("  {}", plural(connects, "new connection")),
        );
        row(
            "  checkpoints",
            sum(|l| l.checkpoint_us),
            None,
            format!("  {} created", sum(|l| l.checkpoints)),
        );
        row(
            "  rollbacks",
            sum(|l| l.rollback_us),
            None,
            format!("  {} done", sum(|l| l.rollbacks)),
        );
        row(
            "test bodies",
            sum(Line::body_us),
            Some(median(lines.iter().map(Line::body_us))),
            String::new(),
        );

        let mut slowest: Vec<&Line> = lines.iter().collect();
        slowest.sort_by(|a, b| b.test_us.cmp(&a.test_us).then(a.test.cmp(&b.test)));
        slowest.truncate(10);
        let _ = writeln!(out);
        let _ = writeln!(out, "{} slowest tests", slowest.len());
        let _ = writeln!(
            out,
            "{:>10}{:>11}  {:<26}test",
            "time", "isolation", "dominated by"
        );
        for l in slowest {
            let (part, us) = l.dominated_by();
            let why = format!("{part} {}", duration(us));
            let _ = writeln!(
                out,
                "{:>10}{:>11}  {why:<26}{} ({}, {})",
                duration(l.test_us),
                duration(l.isolation_us()),
                l.test,
                l.backend,
                l.outcome
            );
        }
        out
    }
}

/// `n thing(s)`.
fn plural(n: usize, thing: &str) -> String {
    match (n, thing.ends_with('s')) {
        (1, _) => format!("1 {thing}"),
        (_, true) => format!("{n} {thing}es"),
        _ => format!("{n} {thing}s"),
    }
}

/// `a 3, b 1`, most frequent first.
fn counts<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .into_iter()
        .map(|(v, n)| format!("{n} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median(values: impl Iterator<Item = u64>) -> u64 {
    let mut values: Vec<u64> = values.collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// A duration given in microseconds, to three significant digits.
fn duration(us: u64) -> String {
    let us = us as f64;
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.1} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line with 100 µs of set-up and 10 µs of checkpoints.
    fn line(
        test: &str,
        outcome: &str,
        wait: u64,
        connect: Option<u64>,
        rollback: u64,
        body: u64,
    ) -> String {
        let lease = wait + connect.unwrap_or(0);
        let session = 10 + rollback + body;
        let test_us = 100 + lease + session;
        let connect = connect.map_or("null".to_owned(), |c| c.to_string());
        format!(
            r#"{{"test":"{test}","backend":"sqlite","entry":"sqlite","isolation":"transaction","outcome":"{outcome}","rolled_back":true,"test_us":{test_us},"lease_us":{lease},"lease_wait_us":{wait},"connect_us":{connect},"checkpoints":2,"checkpoint_us":10,"rollbacks":2,"rollback_us":{rollback},"session_us":{session},"pid":{pid},"at_ms":0}}"#,
            pid = test.len()
        )
    }

    #[test]
    fn totals_shares_and_the_slowest_with_why() {
        let text = [
            line("a::waits", "ok", 40_000, None, 100, 9_790),
            line("a::connects", "err", 10, Some(25_000), 100, 4_780),
            line("a::rolls_back", "panic", 10, None, 15_000, 4_880),
            line("a::works", "ok", 10, None, 100, 9_780),
            String::new(),
        ]
        .join("\n");
        let report = Report::parse(&text).unwrap();
        assert_eq!(report.lines.len(), 4);
        let out = report.render("r.jsonl");
        for expected in [
            "4 tests in 3 processes: 2 ok, 1 err, 1 panic",
            "backends: sqlite 4 (4 transaction)",
            // Each test takes 50, 30, 20 and 10 ms.
            "tests                     110.0 ms   100.0%       30.0 ms",
            // Isolation: set-up 0.4 ms, leases 65.03, checkpoints 0.04, rollbacks 15.3.
            "isolation                  80.8 ms    73.4%       25.2 ms",
            "  set-up                    400 µs     0.4%",
            "  lease wait               40.0 ms    36.4%",
            "  connect                  25.0 ms    22.7%                1 new connection",
            "  checkpoints                40 µs     0.0%                8 created",
            "  rollbacks                15.3 ms    13.9%                8 done",
            "test bodies                29.2 ms    26.6%        9.8 ms",
        ] {
            assert!(out.contains(expected), "{expected:?} in:\n{out}");
        }
        for (test, why) in [
            ("a::waits", "lease wait 40.0 ms"),
            ("a::connects", "connect 25.0 ms"),
            ("a::rolls_back", "rollbacks 15.0 ms"),
            ("a::works", "the test body 9.8 ms"),
        ] {
            let row = out.lines().find(|l| l.contains(test)).unwrap();
            assert!(row.contains(why), "{test}: {row}");
        }
        let order: Vec<usize> = ["a::waits", "a::connects", "a::rolls_back", "a::works"]
            .iter()
            .map(|t| out.find(t).unwrap())
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "slowest first: {out}"
        );
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = Report::parse("\n{\"test\": 1}\n").unwrap_err();
        assert!(e.starts_with("line 2: not a venomqa report line"), "{e}");
    }

    #[test]
    fn at_most_ten_slowest() {
        let text: Vec<String> = (0..25)
            .map(|i| line(&format!("t::n{i:02}"), "ok", 1, None, 1, 1000 + i))
            .collect();
        let out = Report::parse(&text.join("\n")).unwrap().render("x");
        assert!(out.contains("\n10 slowest tests\n"), "{out}");
        assert!(
            out.contains("t::n24") && out.contains("t::n15") && !out.contains("t::n14 "),
            "{out}"
        );
    }
}
