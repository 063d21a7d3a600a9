//! The synchronous HTTP [`Client`] steps call the API with, the [`Transport`] trait it
//! sends through (ureq by default; an in-process router or an async client can stand in),
//! and what it records of each exchange for the report.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::BoxError;

use super::report::cut;

/// The headers whose values never appear in a report, whatever their case. A client adds
/// the header of [`Client::api_key`] and any named with [`Client::secret_header`].
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// JSON keys whose values a recorded body shows as `"***"`: any key containing one of
/// these words, in any case.
const SECRET_JSON_KEYS: &[&str] = &["password", "secret", "token", "api_key", "apikey"];

/// The default timeout of a request: connect, send, and read the whole response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many bytes of a body a report shows by default.
pub const DEFAULT_BODY_LIMIT: usize = 2048;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
    /// `OPTIONS`
    Options,
}

impl Method {
    /// The method as sent: `GET`, `POST`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request as a [`Transport`] receives it: the full URL, every header (auth included),
/// the body, and how long the whole exchange may take.
#[derive(Clone)]
#[non_exhaustive]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The absolute URL (the client's base URL joined with the path, and the query).
    pub url: String,
    /// Headers in the order they were set; names as given.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// The time allowed for the whole exchange.
    pub timeout: Duration,
}

impl Request {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The path and query of the URL (`/orders?user=1`), for routing in-process.
    pub fn path(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        rest.find('/').map_or("/", |i| &rest[i..])
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the raw headers: they hold credentials.
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &crate::redact_url(&self.url))
            .field("headers", &redact_headers(&self.headers, &[]))
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// An HTTP response: status, headers and the whole body.
///
/// A [`Transport`] builds one with [`Response::new`]; steps read it and check it with
/// [`expect_status`](Self::expect_status) and [`expect_json`](Self::expect_json), whose
/// errors name the request and show expected and actual.
#[derive(Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// `POST http://host/path` (redacted), set by the client, for messages.
    request_line: String,
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

    pub(crate) fn status_error(&self, expected: String) -> HttpError {
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

/// Why a [`Transport`] got no response.
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

/// A failure of a [`Transport`] to get a response.
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

/// What sends a [`Request`] and returns its [`Response`]: [`UreqTransport`] (the default,
/// over the network), or anything that stands in for it: an in-process router, an async
/// client blocking on its runtime.
///
/// Closures `Fn(&Request) -> Result<Response, TransportError>` are transports:
///
/// ```
/// use venomqa::journey::{Client, Method, Request, Response};
///
/// let client = Client::with_transport("http://app.test", |req: &Request| {
///     Ok(match (req.method, req.path()) {
///         (Method::Get, "/health") => Response::new(200).with_json(&serde_json::json!({"ok": true})),
///         _ => Response::new(404),
///     })
/// });
/// let health = client.get("/health").send()?.expect_status(200)?;
/// assert_eq!(health.value("/ok")?, true);
/// let e = client.get("/nope").send()?.expect_status(200).unwrap_err();
/// assert_eq!(e.to_string(), "GET http://app.test/nope: expected status 200, got 404; response body: (empty body)");
/// # Ok::<(), venomqa::journey::HttpError>(())
/// ```
///
/// An axum `Router` stands in the same way, through `tower::ServiceExt::oneshot` on a
/// runtime the transport owns (see `docs/journeys.md`).
pub trait Transport: Send + Sync {
    /// Sends `request` and waits for the whole response, for at most `request.timeout`.
    fn send(&self, request: &Request) -> Result<Response, TransportError>;
}

impl<F> Transport for F
where
    F: Fn(&Request) -> Result<Response, TransportError> + Send + Sync,
{
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self(request)
    }
}

/// The default [`Transport`]: a `ureq` agent (plain HTTP; HTTPS with the `journey-tls`
/// feature), keeping connections alive between requests. Statuses are never errors here:
/// 4xx and 5xx responses come back as responses, for the step to check.
#[derive(Debug, Clone)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

impl Default for UreqTransport {
    fn default() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        UreqTransport { agent }
    }
}

impl UreqTransport {
    /// A transport over this agent (its configuration is kept; the client sets each
    /// request's timeout and turns `http_status_as_error` off).
    pub fn from_agent(agent: ureq::Agent) -> Self {
        UreqTransport { agent }
    }

    fn run<S: ureq::AsSendBody>(
        &self,
        request: ureq::http::Request<S>,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        use ureq::RequestExt;
        let response = request
            .with_agent(&self.agent)
            .configure()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .run()
            .map_err(ureq_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .into_body()
            .into_with_config()
            .limit(64 * 1024 * 1024)
            .read_to_vec()
            .map_err(ureq_error)?;
        Ok(Response {
            status,
            headers,
            body,
            request_line: String::new(),
        })
    }
}

fn ureq_error(e: ureq::Error) -> TransportError {
    let kind = match &e {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => {
            TransportErrorKind::Unreachable
        }
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::NotConnected
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::AddrNotAvailable => TransportErrorKind::Unreachable,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                TransportErrorKind::Timeout
            }
            _ => TransportErrorKind::Other,
        },
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, e)
}

impl Transport for UreqTransport {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let invalid = |e: ureq::http::Error| TransportError::new(TransportErrorKind::Other, e);
        if request.body.is_empty() {
            self.run(builder.body(()).map_err(invalid)?, request.timeout)
        } else {
            self.run(
                builder.body(request.body.clone()).map_err(invalid)?,
                request.timeout,
            )
        }
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
                    super::report::fmt_duration(self.duration)
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
                super::report::fmt_duration(self.duration)
            )?,
        }
        Ok(())
    }
}

/// The reason phrase of common statuses, for reports.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `headers` with the values of secret headers replaced by `***`.
pub(crate) fn redact_headers(
    headers: &[(String, String)],
    extra_secrets: &[String],
) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            let secret = SECRET_HEADERS.contains(&lower.as_str())
                || extra_secrets.iter().any(|s| s.eq_ignore_ascii_case(k));
            let shown = if secret {
                // Keep the scheme of `Authorization: Bearer x`: it tells which auth was sent.
                match v.split_once(' ') {
                    Some((scheme, _))
                        if lower.ends_with("authorization")
                            && scheme.chars().all(|c| c.is_ascii_alphabetic()) =>
                    {
                        format!("{scheme} ***")
                    }
                    _ => "***".to_owned(),
                }
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// A body as text for a report: JSON with secret-named keys masked, else the text.
pub(crate) fn redact_body(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            mask_json(&mut value);
            value.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                if SECRET_JSON_KEYS.iter().any(|s| lower.contains(s)) && !v.is_null() {
                    *v = Value::String("***".to_owned());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// What a client records while a step runs, and the step's timeout.
#[derive(Default)]
struct Recorder {
    exchanges: Vec<Exchange>,
    step_timeout: Option<Duration>,
}

/// The synchronous HTTP client steps call the API with: a base URL, default headers,
/// bearer or API-key auth, a timeout, JSON bodies. It records every exchange of a step
/// (secrets redacted) for the journey's report.
///
/// ```no_run
/// use std::time::Duration;
/// use venomqa::journey::Client;
///
/// let client = Client::new("http://127.0.0.1:8000")
///     .api_key("X-Api-Key", "admin-key")          // sent with every request, never shown
///     .header("Accept", "application/json")
///     .timeout(Duration::from_secs(5));
/// let user = client
///     .post("/users")
///     .json(&serde_json::json!({"email": "ann@example.com"}))
///     .send()?
///     .expect_status(201)?;
/// let token: String = serde_json::from_value(user.value("/token")?).unwrap();
/// client.get("/me").bearer(&token).send()?.expect_status(200)?;
/// # Ok::<(), venomqa::journey::HttpError>(())
/// ```
pub struct Client {
    base_url: String,
    transport: Arc<dyn Transport>,
    headers: Vec<(String, String)>,
    secret_headers: Vec<String>,
    timeout: Duration,
    body_limit: usize,
    recorder: Mutex<Recorder>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &crate::redact_url(&self.base_url))
            .field(
                "headers",
                &redact_headers(&self.headers, &self.secret_headers),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A client of the API at `base_url` (such as `http://127.0.0.1:8000`), over
    /// [`UreqTransport`].
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_transport(base_url, UreqTransport::default())
    }

    /// A client that sends through `transport` instead of the network: an in-process
    /// router, an async client, a transport with its own TLS setup.
    pub fn with_transport(
        base_url: impl Into<String>,
        transport: impl Transport + 'static,
    ) -> Self {
        Client {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            transport: Arc::new(transport),
            headers: Vec::new(),
            secret_headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            body_limit: DEFAULT_BODY_LIMIT,
            recorder: Mutex::new(Recorder::default()),
        }
    }

    /// A header sent with every request.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer <token>` on every request (redacted in reports).
    pub fn bearer(self, token: impl fmt::Display) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// An API key sent in header `header` with every request; the header is redacted in
    /// reports.
    pub fn api_key(self, header: impl Into<String>, key: impl Into<String>) -> Self {
        let header = header.into();
        self.secret_header(header.clone()).header(header, key)
    }

    /// Marks header `name` as secret: its value shows as `***` in every report (the
    /// headers of [`SECRET_HEADERS`] always are).
    pub fn secret_header(mut self, name: impl Into<String>) -> Self {
        self.secret_headers.push(name.into());
        self
    }

    /// The time a request may take, connect to last byte (default [`DEFAULT_TIMEOUT`]).
    /// A step's [`timeout`](super::Step::timeout) and a request's own override it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How many bytes of each body a report shows (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The base URL, as given (without a trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request of `method` to `path` (joined to the base URL; an absolute URL is used
    /// as is).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        let url = if path.contains("://") {
            path.to_owned()
        } else if path.starts_with('/') {
            format!("{}{path}", self.base_url)
        } else {
            format!("{}/{path}", self.base_url)
        };
        RequestBuilder {
            client: self,
            method,
            url,
            query: Vec::new(),
            headers: self.headers.clone(),
            secret_headers: Vec::new(),
            body: Ok(Vec::new()),
            timeout: None,
        }
    }

    /// A `GET` request.
    pub fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::Get, path)
    }

    /// A `POST` request.
    pub fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::Post, path)
    }

    /// A `PUT` request.
    pub fn put(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::Put, path)
    }

    /// A `PATCH` request.
    pub fn patch(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::Patch, path)
    }

    /// A `DELETE` request.
    pub fn delete(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::Delete, path)
    }

    /// The exchanges recorded since the last call, oldest first (the runner takes them
    /// after each step).
    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut self.recorder.lock().exchanges)
    }

    /// The statuses of the responses recorded since the last
    /// [`take_exchanges`](Self::take_exchanges), oldest first, without taking them.
    #[cfg(feature = "explore")]
    pub(crate) fn recorded_statuses(&self) -> Vec<u16> {
        self.recorder
            .lock()
            .exchanges
            .iter()
            .filter_map(|e| e.response.as_ref().ok().map(|r| r.status))
            .collect()
    }

    pub(crate) fn set_step_timeout(&self, timeout: Option<Duration>) {
        self.recorder.lock().step_timeout = timeout;
    }

    fn record(&self, exchange: Exchange) {
        self.recorder.lock().exchanges.push(exchange);
    }
}

/// A request being built; [`send`](Self::send) sends it.
#[must_use = "call send() to send the request"]
pub struct RequestBuilder<'c> {
    client: &'c Client,
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    secret_headers: Vec<String>,
    body: Result<Vec<u8>, String>,
    timeout: Option<Duration>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &crate::redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl RequestBuilder<'_> {
    /// Adds a header (after the client's).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer <token>`, replacing the client's (redacted in reports).
    pub fn bearer(mut self, token: impl fmt::Display) -> Self {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// An API key in header `header`, redacted in reports.
    pub fn api_key(mut self, header: impl Into<String>, key: impl Into<String>) -> Self {
        let header = header.into();
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case(&header));
        self.secret_headers.push(header.clone());
        self.header(header, key)
    }

    /// A query parameter (percent-encoded).
    pub fn query(mut self, name: impl Into<String>, value: impl fmt::Display) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }

    /// A JSON body, with `content-type: application/json`.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        self.body = serde_json::to_vec(body).map_err(|e| e.to_string());
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        self.header("content-type", "application/json")
    }

    /// A raw body with its content type.
    pub fn body(mut self, body: impl Into<Vec<u8>>, content_type: &str) -> Self {
        self.body = Ok(body.into());
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
        self.header("content-type", content_type)
    }

    /// The time this request may take, overriding the step's and the client's.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends the request and returns the response, whatever its status (check it with
    /// [`Response::expect_status`]). The exchange is recorded for the report.
    pub fn send(self) -> Result<Response, HttpError> {
        let client = self.client;
        let mut url = self.url;
        if !self.query.is_empty() {
            let encoded: Vec<String> = self
                .query
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encoded.join("&"));
        }
        let shown_url = crate::redact_url(&url);
        let request_line = format!("{} {shown_url}", self.method);
        let body = match self.body {
            Ok(body) => body,
            Err(reason) => {
                return Err(HttpError::InvalidRequest {
                    request: request_line,
                    reason: format!("the JSON body could not be serialised: {reason}"),
                })
            }
        };
        let timeout = self
            .timeout
            .or(client.recorder.lock().step_timeout)
            .unwrap_or(client.timeout);
        let request = Request {
            method: self.method,
            url,
            headers: self.headers,
            body,
            timeout,
        };
        let mut secrets = client.secret_headers.clone();
        secrets.extend(self.secret_headers);
        let limit = client.body_limit;
        let started = Instant::now();
        let outcome = client.transport.send(&request);
        let duration = started.elapsed();
        let recorded_response = match &outcome {
            Ok(r) => Ok(RecordedResponse {
                status: r.status,
                headers: redact_headers(&r.headers, &secrets),
                body: cut(&redact_body(&r.body), limit),
            }),
            Err(e) => Err(e.to_string()),
        };
        client.record(Exchange {
            method: request.method,
            url: shown_url,
            request_headers: redact_headers(&request.headers, &secrets),
            request_body: cut(&redact_body(&request.body), limit),
            response: recorded_response,
            duration,
        });
        match outcome {
            Ok(mut response) => {
                response.request_line = request_line;
                Ok(response)
            }
            Err(source) => Err(match source.kind() {
                TransportErrorKind::Unreachable => HttpError::Unreachable {
                    request: request_line,
                    source,
                },
                TransportErrorKind::Timeout => HttpError::Timeout {
                    request: request_line,
                    timeout_ms: timeout.as_millis(),
                    source,
                },
                TransportErrorKind::Other => HttpError::Transport {
                    request: request_line,
                    source,
                },
            }),
        }
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn secrets_never_reach_a_report() {
        let client = Client::with_transport("http://x.test/", |r: &Request| {
            assert_eq!(r.header("authorization"), Some("Bearer hunter2"));
            assert_eq!(r.header("x-shop-key"), Some("k3y"));
            Ok(Response::new(200)
                .with_header("Set-Cookie", "session=abc")
                .with_json(&serde_json::json!({"token": "tok-9", "id": 1})))
        })
        .bearer("hunter2")
        .api_key("X-Shop-Key", "k3y");
        let r = client
            .post("login")
            .query("password", "pw1")
            .json(&serde_json::json!({"email": "a@b", "password": "pw2"}))
            .send()
            .unwrap();
        assert_eq!(r.value("/token").unwrap(), "tok-9");
        let ex = client.take_exchanges();
        let shown = format!("{}{:?}{:?}", ex[0], ex[0], client);
        for secret in ["hunter2", "k3y", "abc", "tok-9", "pw1", "pw2"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("Authorization: Bearer ***"), "{shown}");
        assert!(
            shown.contains("POST http://x.test/login?password=***"),
            "{shown}"
        );
        assert!(client.take_exchanges().is_empty());
    }

    #[test]
    fn mismatches_show_expected_and_actual() {
        let client = Client::with_transport("http://x.test", |_: &Request| {
            Ok(Response::new(409).with_json(&serde_json::json!({"error": "taken", "n": 2})))
        });
        let e = client
            .get("/a")
            .send()
            .unwrap()
            .expect_status(201)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"GET http://x.test/a: expected status 201, got 409; response body: {"error":"taken","n":2}"#
        );
        let e = client
            .get("/a")
            .send()
            .unwrap()
            .expect_json("/n", 3)
            .unwrap_err();
        assert!(
            e.to_string() == "GET http://x.test/a: response body at /n: expected 3, got 2",
            "{e}"
        );
        let e = client
            .get("/a")
            .send()
            .unwrap()
            .value("/missing")
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("expected a value, got nothing there"),
            "{e}"
        );
    }

    #[test]
    fn unreachable_and_timeout_name_the_url() {
        // A port nothing listens on: bind, read the port, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(format!("http://127.0.0.1:{port}"));
        let e = client.get("/health").send().unwrap_err();
        assert!(e.is_unreachable(), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "GET http://127.0.0.1:{port}/health: could not reach the server"
            )),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());

        // A server that accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            std::thread::sleep(Duration::from_millis(800));
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        });
        let client =
            Client::new(format!("http://127.0.0.1:{port}")).timeout(Duration::from_millis(150));
        let started = Instant::now();
        let e = client.get("/slow").send().unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(700));
        assert!(e.is_timeout(), "{e:?}");
        assert!(
            e.to_string().starts_with(&format!(
                "GET http://127.0.0.1:{port}/slow: no response within 150 ms"
            )),
            "{e}"
        );
        hold.join().unwrap();
    }

    #[test]
    fn ureq_sends_headers_and_json_and_reads_the_response() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&seen).contains("\"b\":2}") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                seen.extend_from_slice(&buf[..n]);
            }
            let body = r#"{"ok":true}"#;
            write!(
                s,
                "HTTP/1.1 422 Unprocessable Entity\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            String::from_utf8_lossy(&seen).into_owned()
        });
        let client = Client::new(format!("http://127.0.0.1:{port}/api"))
            .header("X-Trace", "t1")
            .api_key("x-api-key", "secret-key");
        let r = client
            .put("/items/1")
            .query("q", "a b")
            .json(&serde_json::json!({"a": 1, "b": 2}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 422);
        assert_eq!(r.value("/ok").unwrap(), true);
        let seen = server.join().unwrap().to_ascii_lowercase();
        assert!(
            seen.starts_with("put /api/items/1?q=a%20b http/1.1"),
            "{seen}"
        );
        assert!(seen.contains("x-trace: t1") && seen.contains("x-api-key: secret-key"));
        assert!(seen.contains("content-type: application/json"));
    }
}
