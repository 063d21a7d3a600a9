//! Between the client's [`Request`]/[`Response`] and the `http` crate's types that tower
//! services and hyper speak (feature `journey-async`), and the timeout of an exchange.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use super::error::{TransportError, TransportErrorKind};
use super::method::Method;
use super::response::Response;
use super::transport::Request;
use crate::error::BoxError;

/// The largest body read, as the blocking transport's limit.
pub(super) const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// `request` as an `http::Request` with its whole body. A POST, PUT, PATCH or DELETE
/// without a body gets `Content-Length: 0` (a body of known length 0, never chunked).
pub(super) fn to_http(request: &Request) -> Result<http::Request<Full<Bytes>>, TransportError> {
    let mut builder = http::Request::builder()
        .method(http::Method::from(request.method))
        .uri(&request.url);
    let mut has_length = false;
    for (name, value) in &request.headers {
        has_length |= name.eq_ignore_ascii_case("content-length");
        builder = builder.header(name.as_str(), value.as_str());
    }
    let bodiless = matches!(request.method, Method::Get | Method::Head | Method::Options);
    let needs_length = !bodiless || !request.body.is_empty();
    if needs_length && !has_length {
        builder = builder.header(http::header::CONTENT_LENGTH, request.body.len());
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(&request.body)))
        .map_err(|e| TransportError::new(TransportErrorKind::Other, e))
}

/// The whole of `response` (its body read up to [`BODY_LIMIT`]) as a [`Response`].
pub(super) async fn from_http<B>(response: http::Response<B>) -> Result<Response, TransportError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?
        .to_bytes()
        .to_vec();
    Ok(Response {
        status: parts.status.as_u16(),
        headers,
        body,
        request_line: String::new(),
    })
}

/// `exchange`, given at most `timeout` (a [`TransportErrorKind::Timeout`] after it).
pub(super) async fn within<F>(timeout: Duration, exchange: F) -> Result<Response, TransportError>
where
    F: Future<Output = Result<Response, TransportError>>,
{
    match tokio::time::timeout(timeout, exchange).await {
        Ok(outcome) => outcome,
        Err(elapsed) => Err(TransportError::new(TransportErrorKind::Timeout, elapsed)),
    }
}
