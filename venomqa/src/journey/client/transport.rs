//! What sends requests: the [`Request`] a [`Transport`] receives, the trait, and
//! [`UreqTransport`], the default over the network.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::error::{TransportError, TransportErrorKind};
use super::headers::{find_header, redact_headers};
use super::method::Method;
use super::response::Response;

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
/// An axum `Router` (any tower `Service`) stands in with `Client::service(router)`
/// (feature `journey-async`), called in process with no socket.
pub trait Transport: Send + Sync {
    /// Sends `request` and waits for the whole response, for at most `request.timeout`.
    fn send(&self, request: &Request) -> Result<Response, TransportError>;

    /// Sends `request` for an `.await`ed request (feature `journey-async`). The default
    /// calls [`send`](Self::send) in place, which blocks the task's thread for the whole
    /// exchange: a transport that can wait without blocking (an async client, an
    /// in-process service) overrides it.
    fn send_async<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        Box::pin(std::future::ready(self.send(request)))
    }
}

/// What [`Transport::send_async`] returns: the response, once it has come whole.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Response, TransportError>> + Send + 'a>>;

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
            .method(http::Method::from(request.method))
            .uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let invalid = |e: ureq::http::Error| TransportError::new(TransportErrorKind::Other, e);
        let bodiless = matches!(request.method, Method::Get | Method::Head | Method::Options);
        if request.body.is_empty() && bodiless {
            self.run(builder.body(()).map_err(invalid)?, request.timeout)
        } else {
            // A POST, PUT, PATCH or DELETE without a body is sent as a body of length 0
            // (`Content-Length: 0`): ureq sends `()` as an empty chunked body, which
            // servers that frame requests by Content-Length only (Python's http.server)
            // leave in the socket, so the next request on the connection fails to parse.
            self.run(
                builder.body(request.body.clone()).map_err(invalid)?,
                request.timeout,
            )
        }
    }
}
