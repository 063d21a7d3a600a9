//! Writing the reports to files: `<journey>.xml` (JUnit) and `<journey>.json` in a
//! directory (the runner's `report_dir`, or `VENOMQA_JOURNEY_REPORTS`).

use std::path::Path as FsPath;

use serde_json::Value;

use super::journey_result::JourneyResult;

impl JourneyResult {
    /// Writes `<dir>/<journey>.xml` and `<dir>/<journey>.json`.
    pub fn write_reports(&self, dir: &FsPath) -> std::io::Result<()> {
        write_report_files(
            dir,
            "",
            &self.journey_name,
            &self.to_junit(),
            &self.to_json(),
        )
    }
}

/// (anything but ASCII letters, digits, `-` and `_` becomes `_`).
pub(crate) fn write_report_files(
    dir: &FsPath,
    prefix: &str,
    name: &str,
    junit: &str,
    json: &Value,
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
    )
}
