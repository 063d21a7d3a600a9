//! Writing the reports to files: `<journey>.xml` (JUnit), `<journey>.json` and
//! `<journey>.html` in a directory (the runner's `report_dir`, or
//! `VENOMQA_JOURNEY_REPORTS`).

use std::path::Path as FsPath;

use serde_json::Value;

use super::journey_result::JourneyResult;
use crate::html::{self, Kind};

impl JourneyResult {
    /// Writes `<dir>/<journey>.xml`, `<dir>/<journey>.json` and `<dir>/<journey>.html`.
    pub fn write_reports(&self, dir: &FsPath) -> std::io::Result<()> {
        let json = self.to_json();
        let html = html::page(
            Kind::Journey,
            &format!("journey {}", self.journey_name),
            &json,
        );
        write_report_files(dir, "", &self.journey_name, &self.to_junit(), &json, &html)
    }

    /// The report as one self-contained HTML page (no network: its stylesheet, script
    /// and data are inline): the journey > branch > path > step tree, collapsible, with
    /// each step's requests and responses (redacted as in every report), its time and
    /// each failed path's database changes; failures first, with a filter. The data is
    /// [`to_json`](Self::to_json)'s, so the two cannot disagree.
    pub fn to_html(&self) -> String {
        html::page(
            Kind::Journey,
            &format!("journey {}", self.journey_name),
            &self.to_json(),
        )
    }
}

/// Writes `<prefix><name>.xml`, `.json` and `.html` into `dir`, creating it; the name
/// becomes a file name (anything but ASCII letters, digits, `-` and `_` becomes `_`).
pub(crate) fn write_report_files(
    dir: &FsPath,
    prefix: &str,
    name: &str,
    junit: &str,
    json: &Value,
    html: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    std::fs::write(dir.join(format!("{prefix}{stem}.xml")), junit)?;
    std::fs::write(
        dir.join(format!("{prefix}{stem}.json")),
        serde_json::to_string_pretty(json).unwrap_or_default(),
    )?;
    std::fs::write(dir.join(format!("{prefix}{stem}.html")), html)
}
