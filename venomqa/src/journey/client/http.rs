//! [`HttpTransport`], the transport of [`Client::new`](super::Client::new): blocking sends
//! through ureq, and (feature `journey-async`) `.await`ed ones through hyper-util's client.

use super::error::TransportError;
use super::response::Response;
#[cfg(feature = "journey-async")]
use super::transport::SendFuture;
use super::transport::{Request, Transport, UreqTransport};

/// The transport of [`Client::new`](super::Client::new), to a server over the network: a
/// step's blocking [`send`](super::RequestBuilder::send) goes through [`UreqTransport`]; with
/// the feature `journey-async`, an `.await`ed request goes through hyper-util's pooled
/// client on the task's Tokio runtime, so it waits without blocking the thread (and a
/// server on the same runtime keeps serving). Both keep connections alive, and both send
/// a POST, PUT, PATCH or DELETE without a body with `Content-Length: 0`.
#[derive(Debug, Clone, Default)]
pub struct HttpTransport {
    blocking: UreqTransport,
    #[cfg(feature = "journey-async")]
    nonblocking: std::sync::OnceLock<HyperClient>,
}

#[cfg(feature = "journey-async")]
type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

impl HttpTransport {
    /// A transport whose blocking sends go through `agent` (its configuration kept).
    pub fn from_agent(agent: ureq::Agent) -> Self {
        HttpTransport {
            blocking: UreqTransport::from_agent(agent),
            #[cfg(feature = "journey-async")]
            nonblocking: std::sync::OnceLock::new(),
        }
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: &Request) -> Result<Response, TransportError> {
        self.blocking.send(request)
    }

    #[cfg(feature = "journey-async")]
    fn send_async<'a>(&'a self, request: &'a Request) -> SendFuture<'a> {
        use super::convert::{from_http, to_http, within};
        use super::error::TransportErrorKind;
        Box::pin(async move {
            if request.url.starts_with("https:") {
                return Err(TransportError::new(
                    TransportErrorKind::Other,
                    "an .await-ed request to an https:// URL: the async HTTP client speaks plain HTTP; send() it (feature journey-tls), or call the service in process with Client::service",
                ));
            }
            let client = self.nonblocking.get_or_init(|| {
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http()
            });
            let http = to_http(request)?;
            within(request.timeout, async {
                let response = client.request(http).await.map_err(|e| {
                    let kind = if e.is_connect() {
                        TransportErrorKind::Unreachable
                    } else {
                        TransportErrorKind::Other
                    };
                    TransportError::new(kind, e)
                })?;
                from_http(response).await
            })
            .await
        })
    }
}
