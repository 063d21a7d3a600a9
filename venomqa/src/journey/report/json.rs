//! The report as JSON for CI: serde views of the result model (every item, step,
//! exchange, failure and diff), with the field names and shapes the reports have always
//! had. `serde_json` writes them.

use serde::Serialize;
use serde_json::Value;

use super::issue::Issue;
use super::journey_result::JourneyResult;
use super::model::{ItemResult, PathResult, Status, StepResult};
use crate::capture::{ChangeKind, Diff, TableDiff};
use crate::journey::client::{Exchange, RecordedResponse};

/// A duration in milliseconds, to the microsecond.
pub(crate) fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

impl JourneyResult {
    /// The report as JSON: every item, step, exchange (redacted), failure and diff.
    pub fn to_json(&self) -> Value {
        to_value(JourneyJson::new(self))
    }
}

/// A database diff (or why it could not be read) as JSON.
#[cfg(feature = "explore")]
pub(crate) fn diff_json(diff: &Result<Diff, String>) -> Value {
    to_value(DiffJson::new(diff))
}

/// One recorded exchange (already redacted) as JSON.
#[cfg(feature = "explore")]
pub(crate) fn exchange_json(e: &Exchange) -> Value {
    to_value(ExchangeJson::new(e))
}

/// The views hold strings, numbers, sequences and string-keyed maps only, which always
/// convert.
fn to_value(view: impl Serialize) -> Value {
    serde_json::to_value(view).expect("a report view converts to JSON")
}

// The fields of each view are in the order the report's JSON has always listed them.

#[derive(Serialize)]
struct JourneyJson<'a> {
    journey: &'a str,
    description: Option<&'a str>,
    success: bool,
    duration_ms: f64,
    paths: PathCounts,
    rollbacks: usize,
    rollback_ms: f64,
    cleanup_ms: f64,
    main_diff: Option<DiffJson<'a>>,
    items: Vec<ItemJson<'a>>,
    issues: Vec<IssueJson<'a>>,
}

impl<'a> JourneyJson<'a> {
    fn new(r: &'a JourneyResult) -> Self {
        let (passed, failed, skipped) = r.path_counts();
        JourneyJson {
            journey: &r.journey_name,
            description: r.description.as_deref(),
            success: r.passed(),
            duration_ms: ms(r.duration),
            paths: PathCounts {
                passed,
                failed,
                skipped,
            },
            rollbacks: r.rollbacks(),
            rollback_ms: ms(r.rollback_time()),
            cleanup_ms: ms(r.cleanup_time()),
            main_diff: r.main_diff.as_ref().map(DiffJson::new),
            items: r.items.iter().map(ItemJson::new).collect(),
            issues: r.issues.iter().map(IssueJson::new).collect(),
        }
    }
}

#[derive(Serialize)]
struct PathCounts {
    passed: usize,
    failed: usize,
    skipped: usize,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ItemJson<'a> {
    Step {
        step: StepJson<'a>,
    },
    Checkpoint {
        name: &'a str,
        made: bool,
    },
    Branch {
        checkpoint_name: &'a str,
        status: &'static str,
        duration_ms: f64,
        path_results: Vec<PathJson<'a>>,
    },
}

impl<'a> ItemJson<'a> {
    fn new(item: &'a ItemResult) -> Self {
        match item {
            ItemResult::Step(s) => ItemJson::Step {
                step: StepJson::new(s),
            },
            ItemResult::Checkpoint { name, made } => ItemJson::Checkpoint { name, made: *made },
            ItemResult::Branch(b) => ItemJson::Branch {
                checkpoint_name: &b.checkpoint_name,
                status: b.status().word(),
                duration_ms: ms(b.duration),
                path_results: b.path_results.iter().map(PathJson::new).collect(),
            },
        }
    }
}

#[derive(Serialize)]
struct PathJson<'a> {
    path_name: &'a str,
    status: &'static str,
    success: bool,
    duration_ms: f64,
    skip_reason: Option<&'a str>,
    diff: Option<DiffJson<'a>>,
    step_results: Vec<StepJson<'a>>,
}

impl<'a> PathJson<'a> {
    fn new(p: &'a PathResult) -> Self {
        PathJson {
            path_name: &p.path_name,
            status: p.status.word(),
            success: p.success(),
            duration_ms: ms(p.duration),
            skip_reason: p.skip_reason.as_deref(),
            diff: p.diff.as_ref().map(DiffJson::new),
            step_results: p.step_results.iter().map(StepJson::new).collect(),
        }
    }
}

#[derive(Serialize)]
struct StepJson<'a> {
    name: &'a str,
    status: &'static str,
    duration_ms: f64,
    attempts: u32,
    /// The failure's message, skips included.
    error: Option<&'a str>,
    /// The failure's kind, for failed steps only.
    failure_kind: Option<&'static str>,
    exchanges: Vec<ExchangeJson<'a>>,
}

impl<'a> StepJson<'a> {
    fn new(s: &'a StepResult) -> Self {
        StepJson {
            name: &s.name,
            status: s.status.word(),
            duration_ms: ms(s.duration),
            attempts: s.attempts,
            error: s.failure.as_ref().map(|f| f.message.as_str()),
            failure_kind: s
                .failure
                .as_ref()
                .filter(|_| s.status == Status::Failed)
                .map(|f| f.kind.name()),
            exchanges: s.exchanges.iter().map(ExchangeJson::new).collect(),
        }
    }
}

#[derive(Serialize)]
struct ExchangeJson<'a> {
    method: &'static str,
    url: &'a str,
    /// `[name, value]` pairs.
    request_headers: &'a [(String, String)],
    request_body: &'a str,
    duration_ms: f64,
    response: ResponseJson<'a>,
}

impl<'a> ExchangeJson<'a> {
    fn new(e: &'a Exchange) -> Self {
        ExchangeJson {
            method: e.method.as_str(),
            url: &e.url,
            request_headers: &e.request_headers,
            request_body: &e.request_body,
            duration_ms: ms(e.duration),
            response: match &e.response {
                Ok(r) => ResponseJson::Recorded(RecordedJson::new(r)),
                Err(error) => ResponseJson::Failed { error },
            },
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum ResponseJson<'a> {
    Recorded(RecordedJson<'a>),
    Failed { error: &'a str },
}

#[derive(Serialize)]
struct RecordedJson<'a> {
    status: u16,
    headers: &'a [(String, String)],
    body: &'a str,
}

impl<'a> RecordedJson<'a> {
    fn new(r: &'a RecordedResponse) -> Self {
        RecordedJson {
            status: r.status,
            headers: &r.headers,
            body: &r.body,
        }
    }
}

#[derive(Serialize)]
struct IssueJson<'a> {
    journey: &'a str,
    branch: Option<&'a str>,
    path: Option<&'a str>,
    step: &'a str,
    error: &'a str,
    severity: String,
    suggestion: &'a str,
}

impl<'a> IssueJson<'a> {
    fn new(i: &'a Issue) -> Self {
        IssueJson {
            journey: &i.journey,
            branch: i.branch.as_deref(),
            path: i.path.as_deref(),
            step: &i.step,
            error: &i.error,
            severity: i.severity.to_string(),
            suggestion: &i.suggestion,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum DiffJson<'a> {
    Failed {
        error: &'a str,
    },
    Read {
        summary: String,
        tables: Vec<TableJson<'a>>,
    },
}

impl<'a> DiffJson<'a> {
    fn new(diff: &'a Result<Diff, String>) -> Self {
        match diff {
            Err(error) => DiffJson::Failed { error },
            Ok(d) => DiffJson::Read {
                summary: d.to_string(),
                tables: d.tables().iter().map(TableJson::new).collect(),
            },
        }
    }
}

#[derive(Serialize)]
struct TableJson<'a> {
    table: &'a str,
    inserted: u64,
    updated: u64,
    deleted: u64,
    rows: Vec<RowJson<'a>>,
    omitted: u64,
}

impl<'a> TableJson<'a> {
    fn new(t: &'a TableDiff) -> Self {
        TableJson {
            table: &t.table,
            inserted: t.inserted,
            updated: t.updated,
            deleted: t.deleted,
            rows: t
                .rows
                .iter()
                .map(|r| RowJson {
                    kind: match r.kind {
                        ChangeKind::Inserted => "inserted",
                        ChangeKind::Updated => "updated",
                        ChangeKind::Deleted => "deleted",
                    },
                    key: &r.key,
                    cascade: r.cascade,
                    columns: r
                        .columns
                        .iter()
                        .map(|c| ColumnJson {
                            column: &c.column,
                            old: &c.old,
                            new: &c.new,
                        })
                        .collect(),
                })
                .collect(),
            omitted: t.omitted,
        }
    }
}

#[derive(Serialize)]
struct RowJson<'a> {
    kind: &'static str,
    key: &'a str,
    cascade: bool,
    columns: Vec<ColumnJson<'a>>,
}

#[derive(Serialize)]
struct ColumnJson<'a> {
    column: &'a str,
    old: &'a str,
    new: &'a str,
}
