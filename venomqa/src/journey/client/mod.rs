//! The synchronous HTTP [`Client`] steps call the API with, the [`Transport`] trait it
//! sends through (ureq by default; an in-process router or an async client can stand in),
//! and what it records of each exchange for the report.

mod builder;
#[cfg(feature = "journey-async")]
mod convert;
mod error;
mod exchange;
mod headers;
mod http;
mod method;
mod response;
#[cfg(feature = "journey-async")]
mod service;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use builder::RequestBuilder;
pub use error::{HttpError, TransportError, TransportErrorKind};
pub use exchange::{Exchange, RecordedResponse};
use headers::redact_headers;
pub use headers::SECRET_HEADERS;
pub use http::HttpTransport;
pub use method::Method;
pub use response::Response;
#[cfg(feature = "journey-async")]
pub use service::{HttpService, ServiceTransport};
pub use transport::{Request, SendFuture, Transport, UreqTransport};

/// The default timeout of a request: connect, send, and read the whole response.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many bytes of a body a report shows by default.
pub const DEFAULT_BODY_LIMIT: usize = 2048;

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
    /// [`HttpTransport`] (ureq for blocking sends; hyper-util for `.await`ed ones).
    pub fn new(base_url: impl Into<String>) -> Self {
        Self::with_transport(base_url, HttpTransport::default())
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
        self.authorization("Bearer", token)
    }

    /// `Authorization: <scheme> <credentials>` on every request, for schemes other than
    /// Bearer (the RealWorld API's `Token <jwt>`, `Basic ..`). Reports show the scheme and
    /// `***`.
    ///
    /// ```
    /// use venomqa::journey::{Client, Request, Response};
    ///
    /// let client = Client::with_transport("http://x.test", |r: &Request| {
    ///     assert_eq!(r.header("authorization"), Some("Token jwt.abc"));
    ///     Ok(Response::new(200))
    /// })
    /// .authorization("Token", "jwt.abc");
    /// client.get("/user").send()?;
    /// assert!(format!("{:?}", client.take_exchanges()).contains("Token ***"));
    /// # Ok::<(), venomqa::journey::HttpError>(())
    /// ```
    pub fn authorization(self, scheme: &str, credentials: impl fmt::Display) -> Self {
        self.header("Authorization", format!("{scheme} {credentials}"))
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
        RequestBuilder::new(self, method, url)
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

#[cfg(test)]
mod tests;
