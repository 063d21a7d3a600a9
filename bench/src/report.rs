//! Collected results: the stdout table, the CSV, the targets, the curves for the chart.

use std::fmt::Write as _;
use std::path::Path;

use crate::harness::{fmt_us, Stats};

/// One measured (or skipped) case.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend: String,
    pub section: &'static str,
    pub case: String,
    pub stats: Option<Stats>,
    /// A ratio or a comparison, already worded ("3.1 round trips", "84x venomqa").
    pub note: String,
}

/// met / missed / not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    NotMeasured,
}

/// One target of the issue, judged.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
}

/// A curve of the scaling chart: x (rows/keys/documents, or percent changed) against
/// microseconds.
#[derive(Debug, Clone)]
pub struct Series {
    pub chart: Chart,
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Which panel of the chart a series belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chart {
    /// Cost against the total data size, one row/key/document changed.
    Size,
    /// Cost against the share of 10,000 changed.
    Share,
}

#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
    pub series: Vec<Series>,
    pub notes: Vec<String>,
}

impl Report {
    /// Records a measurement and prints it at once (so a long run shows progress).
    pub fn add(
        &mut self,
        backend: &str,
        section: &'static str,
        case: impl Into<String>,
        stats: Stats,
        note: impl Into<String>,
    ) {
        let row = Row {
            backend: backend.to_owned(),
            section,
            case: case.into(),
            stats: Some(stats),
            note: note.into(),
        };
        eprintln!(
            "  {:<10} {:<34} {:>10} (p90 {:>10}, n={}) {}",
            row.backend,
            row.case,
            fmt_us(stats.median_us()),
            fmt_us(stats.p90_us()),
            stats.n,
            row.note
        );
        self.rows.push(row);
    }

    /// Records a case that could not be measured, and why.
    pub fn skip(
        &mut self,
        backend: &str,
        section: &'static str,
        case: impl Into<String>,
        why: impl Into<String>,
    ) {
        let row = Row {
            backend: backend.to_owned(),
            section,
            case: case.into(),
            stats: None,
            note: why.into(),
        };
        eprintln!(
            "  {:<10} {:<34} not measured: {}",
            row.backend, row.case, row.note
        );
        self.rows.push(row);
    }

    /// Prints a line saying a whole backend is skipped.
    /// Records the per-test rows of a backend: the round trip measured on the test's own
    /// connection (`floor_case`), and the venomqa test with an empty body and with one write
    /// (`write_case`), each in round trips of that floor. `measured` is the outcome of
    /// measuring them (under `catch_unwind`); on failure both test rows say why. Returns the
    /// floor measured, if any.
    pub fn per_test(
        &mut self,
        backend: &str,
        section: &'static str,
        floor_case: &str,
        write_case: &str,
        measured: std::thread::Result<Result<(Stats, Stats, Stats), String>>,
    ) -> Option<Stats> {
        let empty_case = "venomqa test, empty body";
        let measured =
            measured.unwrap_or_else(|_| Err("the venomqa test panicked (see above)".to_owned()));
        match measured {
            Ok((floor, empty, write)) => {
                let in_rt =
                    |s: &Stats| format!("{:.1} round trips", s.median_us() / floor.median_us());
                self.add(backend, section, floor_case, floor, "the floor");
                self.add(backend, section, empty_case, empty, in_rt(&empty));
                self.add(backend, section, write_case, write, in_rt(&write));
                Some(floor)
            }
            Err(why) => {
                self.skip(backend, section, empty_case, why.clone());
                self.skip(backend, section, write_case, why);
                None
            }
        }
    }

    pub fn note(&mut self, line: impl Into<String>) {
        let line = line.into();
        println!("{line}");
        self.notes.push(line);
    }

    pub fn target(&mut self, name: impl Into<String>, verdict: Verdict, detail: impl Into<String>) {
        self.targets.push(Target {
            name: name.into(),
            verdict,
            detail: detail.into(),
        });
    }

    pub fn series(&mut self, chart: Chart, label: impl Into<String>, points: Vec<(f64, f64)>) {
        if !points.is_empty() {
            self.series.push(Series {
                chart,
                label: label.into(),
                points,
            });
        }
    }

    /// The median of the row `backend` / `case`, if measured.
    pub fn median_us(&self, backend: &str, case: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.backend == backend && r.case == case)
            .and_then(|r| r.stats)
            .map(|s| s.median_us())
    }

    /// The results as a Markdown table (readable on a terminal too).
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| backend | section | case | median | p90 | n | note |"
        );
        let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|");
        for r in &self.rows {
            match r.stats {
                Some(s) => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | {} | {} | {} |",
                        r.backend,
                        r.section,
                        r.case,
                        fmt_us(s.median_us()),
                        fmt_us(s.p90_us()),
                        s.n,
                        r.note
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | - | - | - | not measured: {} |",
                        r.backend, r.section, r.case, r.note
                    );
                }
            }
        }
        out
    }

    /// The targets as a Markdown table.
    pub fn targets_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| target | verdict | numbers |");
        let _ = writeln!(out, "|---|---|---|");
        for t in &self.targets {
            let verdict = match t.verdict {
                Verdict::Met => "met",
                Verdict::Missed => "**missed**",
                Verdict::NotMeasured => "not measured",
            };
            let _ = writeln!(out, "| {} | {} | {} |", t.name, verdict, t.detail);
        }
        out
    }

    /// Writes every row as CSV.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        let mut out = String::from("backend,section,case,median_us,p90_us,iterations,note\n");
        for r in &self.rows {
            let (median, p90, n) = match r.stats {
                Some(s) => (
                    format!("{:.2}", s.median_us()),
                    format!("{:.2}", s.p90_us()),
                    s.n.to_string(),
                ),
                None => (String::new(), String::new(), String::new()),
            };
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                csv(&r.backend),
                csv(r.section),
                csv(&r.case),
                median,
                p90,
                n,
                csv(&r.note)
            );
        }
        for t in &self.targets {
            let verdict = format!("{:?}", t.verdict);
            let _ = writeln!(
                out,
                "target,{},{},,,,{}",
                csv(&verdict),
                csv(&t.name),
                csv(&t.detail)
            );
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, out)
    }
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `a / b` as "12.3x" (or "-" when either is missing).
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}
