//! What a journey run produced: [`JourneyResult`] and its parts (the result model), shown
//! as a tree in the terminal (`Display`), as JUnit XML and as JSON for CI, and written to
//! files.

mod files;
mod issue;
mod journey_result;
mod json;
mod junit;
mod markdown;
mod model;
mod text;

pub use issue::{Issue, Severity};
pub use journey_result::{JourneyFailed, JourneyResult};
pub use junit::junit_xml;
pub(crate) use markdown::append_step_summary;
pub(crate) use model::Place;
pub use model::{
    BranchResult, FailureKind, ItemResult, PathResult, Status, StepFailure, StepResult,
};

// What the explorer's reports share with these.
#[cfg(feature = "explore")]
pub(crate) use files::write_report_files;
#[cfg(feature = "explore")]
pub(crate) use json::{diff_json, exchange_json, ms};
#[cfg(feature = "explore")]
pub(crate) use junit::xml;
#[cfg(feature = "explore")]
pub(crate) use markdown::{code as markdown_code, one_line};
#[cfg(feature = "explore")]
pub(crate) use text::diff_details;

#[cfg(test)]
mod tests;
