//! [`ServiceTransport`]: an axum `Router`, or any tower `Service` of `http` requests,
//! called in process (feature `journey-async`): no socket, no port.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use tokio::runtime::{Handle, RuntimeFlavor};
use tower_service::Service;

use super::convert::{from_http, to_http, within};
use super::error::{TransportError, TransportErrorKind};
use super::response::Response;
use super::transport::{Request, SendFuture, Transport};
use super::Client;
use crate::error::BoxError;

type Call = dyn Fn(Request) -> SendFuture<'static> + Send + Sync;

/// A tower `Service` (an axum `Router`, a `tower::ServiceBuilder` stack) as a
/// [`Transport`]: each request is a clone of the service called in process, on the
/// task that awaits it; the service's handlers run there, with their own pools.
///
/// `.await` the requests of such a client (async steps, [`Step::new_async`](crate::journey::Step::new_async)).
/// A blocking [`send`](super::RequestBuilder::send) works only on a multi-threaded
/// Tokio runtime, where it hands its thread's other tasks to another worker
/// (`block_in_place`) while it waits.
#[derive(Clone)]
pub struct ServiceTransport {
    call: Arc<Call>,
    runtime: Option<Handle>,
}

impl fmt::Debug for ServiceTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTransport").finish_non_exhaustive()
    }
}

/// A tower `Service` of `http` requests that [`ServiceTransport`] can call: implemented
/// for every clonable one whose response body is an `http_body::Body` (an axum `Router`,
/// a `tower::ServiceBuilder` stack over one).
pub trait HttpService: Clone + Send + Sync + 'static {
    /// Calls a clone of the service with `request`, reading the whole response.
    #[doc(hidden)]
    fn exchange(&self, request: Request) -> SendFuture<'static>;
}

impl<S, B> HttpService for S
where
    S: Service<http::Request<Full<Bytes>>, Response = http::Response<B>>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn exchange(&self, request: Request) -> SendFuture<'static> {
        let mut service = self.clone();
        Box::pin(async move {
            let http = to_http(&request)?;
            within(request.timeout, async {
                std::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?;
                let response = service
                    .call(http)
                    .await
                    .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?;
                from_http(response).await
            })
            .await
        })
    }
}

impl ServiceTransport {
    /// A transport calling `service` in process. Its runtime (for blocking sends from
    /// outside one) is the one this is called on, if any.
    pub fn new(service: impl HttpService) -> Self {
        ServiceTransport {
            call: Arc::new(move |request| service.exchange(request)),
            runtime: Handle::try_current().ok(),
        }
    }
}

impl Transport for ServiceTransport {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        let exchange = (self.call)(request.clone());
        let refuse = |why: &str| {
            Err(TransportError::new(
                TransportErrorKind::Other,
                format!("a blocking send() to an in-process service {why}; .await the request in an async step (Step::new_async, JourneyRunner::run_async), or run on #[tokio::test(flavor = \"multi_thread\")]"),
            ))
        };
        match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(exchange))
            }
            Ok(_) => refuse("would stop the current-thread runtime its handlers run on"),
            Err(_) => match &self.runtime {
                Some(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => h.block_on(exchange),
                _ => refuse("needs a Tokio runtime to run its handlers on, and there is none"),
            },
        }
    }

    fn send_async<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        (self.call)(request.clone())
    }
}

impl Client {
    /// A client of `service` (an axum `Router`, any tower `Service` of `http` requests)
    /// called in process, with no socket: see [`ServiceTransport`]. URLs are
    /// `http://service` + the path; the service routes on the path.
    ///
    /// ```
    /// use axum::{routing::get, Json, Router};
    /// use venomqa::journey::Client;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), venomqa::journey::HttpError> {
    /// let app = Router::new().route("/health", get(|| async { Json(serde_json::json!({"ok": true})) }));
    /// let client = Client::service(app);
    /// let health = client.get("/health").await?.expect_status(200)?;
    /// assert_eq!(health.value("/ok")?, true);
    /// # Ok(())
    /// # }
    /// ```
    pub fn service(service: impl HttpService) -> Self {
        Client::with_transport("http://service", ServiceTransport::new(service))
    }
}
