//! The client's errors: [`TransportError`] (a transport got no response, and why) and
//! [`HttpError`] (a failed request, or a response other than the step expected).

use std::fmt;

use crate::error::BoxError;

/// Why a [`Transport`](crate::journey::Transport) got no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made (refused, reset, unknown host): the server is not
    /// there.
    Unreachable,
    /// The exchange took longer than the request's timeout.
    Timeout,
    /// Anything else (a protocol error, a body over the limit, an invalid request).
    Other,
}

/// A failure of a [`Transport`](crate::journey::Transport) to get a response.
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    source: BoxError,
}

impl TransportError {
    /// A failure of `kind` caused by `source`.
    pub fn new(kind: TransportErrorKind, source: impl Into<BoxError>) -> Self {
        TransportError {
            kind,
            source: source.into(),
        }
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.source, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.source.as_ref())
    }
}

/// A failed request or a response that is not what the step expected. Every message
/// starts with the request (`POST http://127.0.0.1:8000/orders`, URL redacted) and says
/// what was expected and what came.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// No connection: the server is down or not listening there.
    #[error("{request}: could not reach the server ({source}); check that it is running and listening at that address")]
    Unreachable {
        /// `METHOD url`.
        request: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// No response in time.
    #[error("{request}: no response within {timeout_ms} ms ({source}); raise the timeout (Client::timeout, Step::timeout) or look at what the server is doing")]
    Timeout {
        /// `METHOD url`.
        request: String,
        /// The timeout that ran out.
        timeout_ms: u128,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// Another transport failure.
    #[error("{request}: the request failed: {source}")]
    Transport {
        /// `METHOD url`.
        request: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// The status is not the one expected.
    #[error("{request}: expected status {expected}, got {actual}; response body: {body}")]
    Status {
        /// `METHOD url`.
        request: String,
        /// What was expected (`201`, `2xx`, `an error status (4xx or 5xx)`).
        expected: String,
        /// The status received.
        actual: u16,
        /// The start of the body (secrets masked).
        body: String,
    },
    /// A JSON value of the body is not the one expected.
    #[error("{request}: response body at {pointer}: expected {expected}, got {actual}")]
    Body {
        /// `METHOD url`.
        request: String,
        /// The JSON pointer looked at.
        pointer: String,
        /// The value expected.
        expected: String,
        /// The value found.
        actual: String,
    },
    /// The body is not JSON of the shape asked for.
    #[error("{request}: the response body (status {status}) is not the JSON expected: {source}; response body: {body}")]
    Json {
        /// `METHOD url`.
        request: String,
        /// The status received.
        status: u16,
        /// The start of the body (secrets masked).
        body: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The request could not be built (a body that is not JSON-serialisable).
    #[error("{request}: invalid request: {reason}")]
    InvalidRequest {
        /// `METHOD url`.
        request: String,
        /// What is wrong.
        reason: String,
    },
}

impl HttpError {
    /// Whether the server could not be reached.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, HttpError::Unreachable { .. })
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, HttpError::Timeout { .. })
    }
}
