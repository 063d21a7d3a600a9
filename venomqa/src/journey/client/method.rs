//! [`Method`]: the HTTP method of a request, as steps name it and match on it (`Copy`,
//! so an in-process transport can `match (req.method, req.path())`), convertible to and
//! from [`http::Method`], which the transports send.

use std::fmt;

/// An HTTP method: the ones steps send, as a `Copy` enum to match on. It converts to
/// [`http::Method`] (what the transports send) and back from the ones it names.
///
/// ```
/// use venomqa::journey::Method;
///
/// assert_eq!(http::Method::from(Method::Patch), http::Method::PATCH);
/// assert_eq!(Method::try_from(&http::Method::DELETE), Ok(Method::Delete));
/// assert!(Method::try_from(&http::Method::TRACE).is_err());
/// ```
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

impl From<Method> for http::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
            Method::Head => http::Method::HEAD,
            Method::Options => http::Method::OPTIONS,
        }
    }
}

impl TryFrom<&http::Method> for Method {
    /// The method itself, when venomqa has no variant for it (`CONNECT`, `TRACE`, an
    /// extension method).
    type Error = http::Method;

    fn try_from(m: &http::Method) -> Result<Self, Self::Error> {
        Ok(match *m {
            http::Method::GET => Method::Get,
            http::Method::POST => Method::Post,
            http::Method::PUT => Method::Put,
            http::Method::PATCH => Method::Patch,
            http::Method::DELETE => Method::Delete,
            http::Method::HEAD => Method::Head,
            http::Method::OPTIONS => Method::Options,
            _ => return Err(m.clone()),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
