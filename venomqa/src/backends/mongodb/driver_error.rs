//! The driver's errors as venomqa reports them: one short line (the driver's own message
//! can run to a whole topology description), and a server out of reach as a lost
//! connection.

use std::fmt;

use super::NAME;
use crate::error::Error;

/// A driver error, shown as its kind on one short line (the driver's own message can run
/// to a whole topology description); the driver's error is its source.
#[derive(Debug)]
pub(super) struct DriverError {
    error: ::mongodb::error::Error,
    hint: Option<&'static str>,
}

impl DriverError {
    pub(super) fn new(error: ::mongodb::error::Error) -> Self {
        DriverError { error, hint: None }
    }

    pub(super) fn hinted(error: ::mongodb::error::Error, hint: &'static str) -> Self {
        DriverError {
            error,
            hint: Some(hint),
        }
    }
}

/// The longest part of a driver message shown.
const DRIVER_MESSAGE_MAX: usize = 120;

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &*self.error.kind {
            // "Server selection timeout: No available servers. Topology: { .. Error: Kind: I/O
            // error: Connection refused (os error 111), labels: {} } ] }": keep the server's error.
            ::mongodb::error::ErrorKind::ServerSelection { message, .. } => {
                match message
                    .split_once("Error: Kind: ")
                    .map(|(_, rest)| rest.split(", labels").next().unwrap_or(rest))
                {
                    Some(cause) => format!("no server could be selected: {cause}"),
                    None => message.clone(),
                }
            }
            ::mongodb::error::ErrorKind::InvalidArgument { message, .. } => message.clone(),
            other => other.to_string(),
        };
        let mut text: String = kind.split_whitespace().collect::<Vec<_>>().join(" ");
        // With a hint, the driver's words are only the detail.
        let max = if self.hint.is_some() {
            DRIVER_MESSAGE_MAX / 2
        } else {
            DRIVER_MESSAGE_MAX
        };
        if text.len() > max {
            let mut cut = max;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        match self.hint {
            Some(hint) => write!(f, "{hint} ({text})"),
            None => f.write_str(&text),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Whether a driver error means the server could not be reached.
pub(super) fn is_unreachable(e: &::mongodb::error::Error) -> bool {
    use ::mongodb::error::ErrorKind;
    matches!(
        &*e.kind,
        ErrorKind::Io(_)
            | ErrorKind::ServerSelection { .. }
            | ErrorKind::ConnectionPoolCleared { .. }
    )
}

/// The error of `operation` failing with driver error `e`: the server out of reach is a
/// lost connection (the pool replaces it), anything else a backend error.
pub(super) fn driver_error(operation: impl Into<String>, e: ::mongodb::error::Error) -> Error {
    if is_unreachable(&e) {
        Error::connection_lost(
            NAME,
            operation,
            "the server is out of reach; what the test wrote stays in its database until the server is back and the database is dropped",
            DriverError::new(e),
        )
    } else {
        Error::backend(NAME, operation, DriverError::new(e))
    }
}
