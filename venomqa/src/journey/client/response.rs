//! [`Response`]: what a transport returns and a step reads and checks, with errors that
//! name the request and show expected and actual.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::error::HttpError;
use super::headers::{find_header, redact_body, redact_headers};
use crate::journey::format::cut;

/// An HTTP response: status, headers and the whole body.
///
/// A [`Transport`](crate::journey::Transport) builds one with [`Response::new`]; steps read it and check it with
/// [`expect_status`](Self::expect_status) and [`expect_json`](Self::expect_json), whose
/// errors name the request and show expected and actual.
#[derive(Clone)]
pub struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// `POST http://host/path` (redacted), set by the client, for messages.
    pub(super) request_line: String,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("request", &self.request_line)
            .field("status", &self.status)
            .field("headers", &redact_headers(&self.headers, &[]))
            .field("body", &cut(&String::from_utf8_lossy(&self.body), 200))
            .finish()
    }
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            request_line: String::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn with_json(self, body: &Value) -> Self {
        self.with_header("content-type", "application/json")
            .with_body(body.to_string())
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The headers, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The request this answers, as `METHOD url` (the URL redacted).
    pub fn request_line(&self) -> &str {
        &self.request_line
    }

    /// The body parsed as JSON into a `T`, or an error naming the request and showing
    /// the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|source| HttpError::Json {
            request: self.request_line.clone(),
            status: self.status,
            body: self.body_excerpt(),
            source,
        })
    }

    /// The JSON value at `pointer` (RFC 6901, such as `/id` or `/items/0/sku`), or an
    /// error naming the pointer and showing the body.
    pub fn value(&self, pointer: &str) -> Result<Value, HttpError> {
        let body: Value = self.json()?;
        body.pointer(pointer)
            .cloned()
            .ok_or_else(|| HttpError::Body {
                request: self.request_line.clone(),
                pointer: pointer.to_owned(),
                expected: "a value".to_owned(),
                actual: format!("nothing there in {}", self.body_excerpt()),
            })
    }

    /// This response if its status is `expected`; otherwise an error that shows the
    /// request, the expected and the actual status, and the body.
    pub fn expect_status(self, expected: u16) -> Result<Self, HttpError> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(self.status_error(expected.to_string()))
        }
    }

    /// This response if its status is 2xx; otherwise an error as
    /// [`expect_status`](Self::expect_status)'s.
    pub fn expect_success(self) -> Result<Self, HttpError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.status_error("2xx".to_owned()))
        }
    }

    /// This response if the JSON value at `pointer` equals `expected`; otherwise an error
    /// showing the pointer, the expected and the actual value.
    pub fn expect_json(self, pointer: &str, expected: impl Serialize) -> Result<Self, HttpError> {
        let expected = serde_json::to_value(expected).unwrap_or(Value::Null);
        let body: Value = self.json()?;
        match body.pointer(pointer) {
            Some(actual) if *actual == expected => Ok(self),
            actual => Err(HttpError::Body {
                request: self.request_line.clone(),
                pointer: pointer.to_owned(),
                expected: cut(&expected.to_string(), 200),
                actual: actual.map_or_else(
                    || format!("nothing there in {}", self.body_excerpt()),
                    |a| cut(&a.to_string(), 200),
                ),
            }),
        }
    }

    fn status_error(&self, expected: String) -> HttpError {
        HttpError::Status {
            request: self.request_line.clone(),
            expected,
            actual: self.status,
            body: self.body_excerpt(),
        }
    }

    fn body_excerpt(&self) -> String {
        if self.body.is_empty() {
            "(empty body)".to_owned()
        } else {
            cut(&redact_body(&self.body), 300).replace('\n', " ")
        }
    }
}
