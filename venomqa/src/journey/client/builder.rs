//! [`RequestBuilder`]: a request being built (query, headers, auth, body, timeout), and
//! sending it: through the client's transport, recording the exchange for the report.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::{HttpError, TransportErrorKind};
use super::exchange::{Exchange, RecordedResponse};
use super::headers::{redact_body, redact_headers};
use super::method::Method;
use super::response::Response;
use super::transport::Request;
use super::Client;
use crate::journey::format::cut;

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

impl<'c> RequestBuilder<'c> {
    /// A request of `method` to `url` with the client's headers.
    pub(super) fn new(client: &'c Client, method: Method, url: String) -> Self {
        RequestBuilder {
            client,
            method,
            url,
            query: Vec::new(),
            headers: client.headers.clone(),
            secret_headers: Vec::new(),
            body: Ok(Vec::new()),
            timeout: None,
        }
    }
}

impl<'c> RequestBuilder<'c> {
    /// Adds a header (after the client's).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `Authorization: Bearer <token>`, replacing the client's (redacted in reports).
    pub fn bearer(self, token: impl fmt::Display) -> Self {
        self.authorization("Bearer", token)
    }

    /// `Authorization: <scheme> <credentials>`, replacing the client's (redacted in
    /// reports, the scheme kept): see [`Client::authorization`](super::Client::authorization).
    pub fn authorization(mut self, scheme: &str, credentials: impl fmt::Display) -> Self {
        self.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        self.header("Authorization", format!("{scheme} {credentials}"))
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
    ///
    /// This blocks the thread until the response has come. In an async step, `.await`
    /// the builder instead (feature `journey-async`): `client.get("/orders").await?`.
    pub fn send(self) -> Result<Response, HttpError> {
        let ready = self.prepare()?;
        let started = Instant::now();
        let outcome = ready.client.transport.send(&ready.request);
        ready.finish(outcome, started.elapsed())
    }

    /// The request as the transport receives it, and what recording it needs.
    fn prepare(self) -> Result<Ready<'c>, HttpError> {
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
        let mut secrets = client.secret_headers.clone();
        secrets.extend(self.secret_headers);
        Ok(Ready {
            client,
            request: Request {
                method: self.method,
                url,
                headers: self.headers,
                body,
                timeout,
            },
            shown_url,
            request_line,
            secrets,
        })
    }
}

/// A request ready to send, and what recording its exchange needs.
struct Ready<'c> {
    client: &'c Client,
    request: Request,
    shown_url: String,
    request_line: String,
    secrets: Vec<String>,
}

impl Ready<'_> {
    /// Records the exchange, and turns the transport's outcome into the step's.
    fn finish(
        self,
        outcome: Result<Response, super::error::TransportError>,
        duration: Duration,
    ) -> Result<Response, HttpError> {
        let Ready {
            client,
            request,
            shown_url,
            request_line,
            secrets,
        } = self;
        let limit = client.body_limit;
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
                    timeout_ms: request.timeout.as_millis(),
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

/// `.await`ing a request sends it through the transport's
/// [`send_async`](super::Transport::send_async): the same request, recording and errors
/// as [`send`](RequestBuilder::send), without blocking the thread.
///
/// ```
/// use venomqa::journey::{Client, Request, Response};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), venomqa::journey::HttpError> {
/// let client = Client::with_transport("http://x.test", |_: &Request| Ok(Response::new(204)));
/// client.delete("/cart/1").await?.expect_status(204)?;
/// assert_eq!(client.take_exchanges().len(), 1);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "journey-async")]
impl<'c> std::future::IntoFuture for RequestBuilder<'c> {
    type Output = Result<Response, HttpError>;
    type IntoFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let ready = self.prepare()?;
            let started = Instant::now();
            let outcome = ready.client.transport.send_async(&ready.request).await;
            ready.finish(outcome, started.elapsed())
        })
    }
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
