//! [`Exchange`]: one request and what came back, as the client records it for reports
//! (secrets redacted, bodies cut), with the status's reason phrase.

use std::fmt;
use std::time::Duration;

use super::method::Method;
use crate::journey::format::fmt_duration;

/// One request and what came back, as the report shows it: URL and headers redacted,
/// bodies cut, JSON secrets masked.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Exchange {
    /// The method.
    pub method: Method,
    /// The URL, with any password or `token=`-style query value masked.
    pub url: String,
    /// The request headers, secrets shown as `***`.
    pub request_headers: Vec<(String, String)>,
    /// The start of the request body.
    pub request_body: String,
    /// The response, or why there was none.
    pub response: Result<RecordedResponse, String>,
    /// How long the exchange took.
    pub duration: Duration,
}

/// A response as the report shows it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordedResponse {
    /// The status code.
    pub status: u16,
    /// The headers, secrets shown as `***`.
    pub headers: Vec<(String, String)>,
    /// The start of the body.
    pub body: String,
}

impl Exchange {
    /// `POST http://host/orders -> 201` or `... -> no response`.
    pub fn summary(&self) -> String {
        match &self.response {
            Ok(r) => format!(
                "{} {} -> {} {}",
                self.method,
                self.url,
                r.status,
                reason(r.status)
            )
            .trim_end()
            .to_owned(),
            Err(_) => format!("{} {} -> no response", self.method, self.url),
        }
    }
}

impl fmt::Display for Exchange {
    /// The request and the response, several lines, each indented by the formatter's
    /// width (`{:6}` indents by six spaces).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pad = " ".repeat(f.width().unwrap_or(0));
        writeln!(f, "{pad}request:  {} {}", self.method, self.url)?;
        for (k, v) in &self.request_headers {
            writeln!(f, "{pad}          {k}: {v}")?;
        }
        if !self.request_body.is_empty() {
            writeln!(f, "{pad}          {}", self.request_body)?;
        }
        match &self.response {
            Ok(r) => {
                writeln!(
                    f,
                    "{pad}response: {} {} ({})",
                    r.status,
                    reason(r.status),
                    fmt_duration(self.duration)
                )?;
                for (k, v) in &r.headers {
                    writeln!(f, "{pad}          {k}: {v}")?;
                }
                if !r.body.is_empty() {
                    writeln!(f, "{pad}          {}", r.body)?;
                }
            }
            Err(e) => writeln!(
                f,
                "{pad}response: none after {}: {e}",
                fmt_duration(self.duration)
            )?,
        }
        Ok(())
    }
}

/// The reason phrase of `status` (`Created`, `Conflict`), or `""` for a status without one.
fn reason(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}
