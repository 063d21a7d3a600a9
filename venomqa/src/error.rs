//! The crate's one error type.
//!
//! A message is one line: what failed and where, then a short remedy. Driver errors are
//! kept as the [`source`](std::error::Error::source), so a test can match them
//! ([`Error::driver`]). No message contains a password: connection errors scrub the
//! URL's secrets when they are displayed, and URLs are shown through
//! [`SecretUrl`](crate::SecretUrl).

use std::error::Error as StdError;
use std::fmt;

use crate::redact::SecretUrl;

/// The result type of every fallible venomqa operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a driver or the operating system.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything that can go wrong in venomqa.
///
/// `Debug` prints the same text as `Display`, so a test returning
/// `Result<(), venomqa::Error>` fails with a readable message.
///
/// ```
/// use venomqa::{memory::Memory, Error, Manager, StateManager};
///
/// let mut m = Manager::open(Memory)?;
/// let e = m.rollback("never_made").unwrap_err();
/// assert!(matches!(e, Error::UnknownCheckpoint { .. }));
/// assert_eq!(e.to_string(), "no checkpoint \"never_made\" (active: none); create it with checkpoint() first");
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A checkpoint name breaks the naming rule (see [`Name`](crate::checkpoint::Name)).
    #[error("invalid checkpoint name {name:?}: {reason}; use ASCII letters, digits and `_`, not starting with a digit, at most 63 bytes")]
    InvalidCheckpoint {
        /// The rejected name (as given).
        name: String,
        /// Which part of the rule it breaks.
        reason: String,
    },

    /// Rollback or release named a checkpoint that is not active.
    #[error("no checkpoint {name:?} (active: {active}); create it with checkpoint() first")]
    UnknownCheckpoint {
        /// The name asked for.
        name: String,
        /// The active checkpoints, oldest first, for the message.
        active: String,
    },

    /// A checkpoint with this name is already active.
    #[error("checkpoint {name:?} already exists; use another name, or release it first")]
    DuplicateCheckpoint {
        /// The duplicated name.
        name: String,
    },

    /// An operation needed a connection, but the state manager is not connected.
    #[error("the {backend} state manager is not connected; call connect() first")]
    NotConnected {
        /// Backend name, such as `sqlite`.
        backend: String,
    },

    /// No backend is registered under this name.
    #[error("unknown backend {name:?} (registered: {registered}); enable its cargo feature of venomqa, or register it with venomqa::register_backend!")]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// Comma-separated list of registered backends.
        registered: String,
    },

    /// The backend could not connect to its server.
    #[error("could not connect to {backend} at {url}{}: {source}. Check that the server is up and the URL is right ({env_var})", tries(*attempts, *waited_ms))]
    Connect {
        /// Backend name.
        backend: String,
        /// The URL (displayed with its password masked).
        url: SecretUrl,
        /// The environment variable that sets this entry's URL.
        env_var: String,
        /// How many attempts were made: more than 1 when the pool retried a refused,
        /// reset or starting server within the connect timeout.
        attempts: u32,
        /// How long the attempts took, in milliseconds (0 for a single attempt).
        waited_ms: u32,
        /// What went wrong, scrubbed of the URL's secrets; [`Error::driver`] reaches the
        /// driver's own error.
        #[source]
        source: Scrubbed,
    },

    /// The configuration file or an environment variable holds a bad value.
    #[error("configuration error in {file}, key `{key}`: {message}")]
    Config {
        /// The file (or `environment`) the value came from.
        file: String,
        /// The offending key, as a path (`backends.mysql.pool_size`).
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// An operation failed on the server or in the driver.
    #[error("{backend}: {operation} failed: {source}")]
    Backend {
        /// Backend name.
        backend: String,
        /// What was being done, such as `rollback to checkpoint "a"`.
        operation: String,
        /// The driver's or server's error; match it with [`Error::driver`].
        #[source]
        source: BoxError,
    },

    /// The connection died under an operation. The pool replaces it.
    #[error("{backend}: the connection was lost during {operation} ({source}); {outcome}")]
    ConnectionLost {
        /// Backend name.
        backend: String,
        /// What was being done.
        operation: String,
        /// What that means for the test's changes, such as "the server rolled back the
        /// open transaction, so nothing of this test was committed".
        outcome: String,
        /// The driver's error.
        #[source]
        source: BoxError,
    },

    /// The state a checkpoint protects is gone (an implicit commit, a transaction ended by
    /// the code under test, a lost lease): the changes can no longer be rolled back.
    #[error("{backend}: {message}")]
    StateLost {
        /// Backend name.
        backend: String,
        /// What happened, what it means for the test's changes, and what to do.
        message: String,
    },

    /// The backend does not support this operation.
    #[error("{backend} does not support {operation}; {hint}")]
    Unsupported {
        /// Backend name.
        backend: String,
        /// The operation asked for.
        operation: String,
        /// What to do instead.
        hint: String,
    },

    /// No pooled connection became free in time.
    #[error("waited {waited_ms} ms for a free {backend} connection (pool size {pool_size}); raise pool_size in venomqa.yaml, or look for a test that never finishes")]
    PoolTimeout {
        /// Backend name.
        backend: String,
        /// The pool's size.
        pool_size: usize,
        /// How long the lease waited.
        waited_ms: u128,
    },

    /// The once-per-process setup step (schema files or a setup function) failed.
    #[error("setup of {entry} failed at {step}: {source}")]
    Setup {
        /// Configuration entry whose setup failed.
        entry: String,
        /// Which step: a file's path, or `the registered setup function`.
        step: String,
        /// What failed.
        #[source]
        source: BoxError,
    },

    /// A worker database (`workers` on a capture entry) could not be prepared or found.
    #[error("worker database {worker} of {entry}: {source}; `venomqa clean {entry}` drops the entry's worker databases, to start again")]
    Worker {
        /// Configuration entry.
        entry: String,
        /// The worker: its slot (`3`, or under nextest `3_1` for a second session of a
        /// process at once).
        worker: String,
        /// What failed.
        #[source]
        source: BoxError,
    },

    /// A test's session parameter does not match the backend its configuration chose.
    #[error("test {test} takes a session of type {expected}, but its backend {backend:?} pools {found} (`isolation: capture` entries are capture backends: MySqlCaptureSession, ...); take the session type of that backend, or `&mut venomqa::Session` to accept any backend")]
    SessionType {
        /// The test's name.
        test: String,
        /// The parameter's manager type.
        expected: String,
        /// The backend the configuration chose.
        backend: String,
        /// What the backend's pool holds.
        found: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// An [`Error::Backend`]: `operation` on `backend` failed with the driver error
    /// `source` (a driver error, an `std::io::Error`, or a message).
    pub fn backend(
        backend: &str,
        operation: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Backend {
            backend: backend.to_owned(),
            operation: operation.into(),
            source: source.into(),
        }
    }

    /// An [`Error::Connect`]: connecting `backend` to `url` failed because of `source`,
    /// whose message is scrubbed of the URL's secrets when displayed.
    pub fn connect(backend: &str, url: &str, source: impl Into<BoxError>) -> Self {
        let url = SecretUrl::from(url);
        Error::Connect {
            backend: backend.to_owned(),
            source: Scrubbed::new(&url, source.into()),
            url,
            env_var: format!("VENOMQA_{}_URL", env_key(backend)),
            attempts: 1,
            waited_ms: 0,
        }
    }

    /// An [`Error::ConnectionLost`].
    pub fn connection_lost(
        backend: &str,
        operation: impl Into<String>,
        outcome: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::ConnectionLost {
            backend: backend.to_owned(),
            operation: operation.into(),
            outcome: outcome.into(),
            source: source.into(),
        }
    }

    /// An [`Error::StateLost`].
    pub fn state_lost(backend: &str, message: impl Into<String>) -> Self {
        Error::StateLost {
            backend: backend.to_owned(),
            message: message.into(),
        }
    }

    /// An [`Error::Config`].
    pub fn config(
        file: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            file: file.into(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Unsupported`].
    pub fn unsupported(
        backend: &str,
        operation: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::Unsupported {
            backend: backend.to_owned(),
            operation: operation.into(),
            hint: hint.into(),
        }
    }

    /// The driver error of type `E` behind this error, if there is one: the first error
    /// of that type in the [`source`](std::error::Error::source) chain.
    ///
    /// ```
    /// use std::io::{Error as IoError, ErrorKind};
    ///
    /// let e = venomqa::Error::backend("filestore", "write store.tsv", IoError::from(ErrorKind::StorageFull));
    /// assert_eq!(e.driver::<IoError>().map(|io| io.kind()), Some(ErrorKind::StorageFull));
    /// // With the mysql feature, a duplicate key: e.driver::<venomqa::mysql::driver::Error>()
    /// // is Some(MySqlError(server)) with server.code == 1062.
    /// ```
    pub fn driver<E: StdError + 'static>(&self) -> Option<&E> {
        let mut next: Option<&(dyn StdError + 'static)> = StdError::source(self);
        while let Some(error) = next {
            if let Some(found) = error.downcast_ref::<E>() {
                return Some(found);
            }
            next = match error.downcast_ref::<Scrubbed>() {
                Some(scrubbed) => Some(scrubbed.0.inner.as_ref()),
                None => error.source(),
            };
        }
        None
    }

    /// Whether a new attempt may succeed where this one failed: the server refused or
    /// reset the connection, or is starting up or shutting down (a restart). Checks the
    /// operating system's error kinds anywhere in the [`source`](std::error::Error::source)
    /// chain; backends add their drivers' own codes (see
    /// [`Backend::is_transient`](crate::Backend::is_transient)).
    ///
    /// ```
    /// use std::io::{Error as IoError, ErrorKind};
    ///
    /// let refused = venomqa::Error::connect("x", "x://h:1", IoError::from(ErrorKind::ConnectionRefused));
    /// assert!(refused.is_transient());
    /// let denied = venomqa::Error::connect("x", "x://h:1", "access denied");
    /// assert!(!denied.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        let mut next: Option<&(dyn StdError + 'static)> = StdError::source(self);
        while let Some(error) = next {
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if is_transient_io(io.kind()) {
                    return true;
                }
            }
            next = match error.downcast_ref::<Scrubbed>() {
                Some(scrubbed) => Some(scrubbed.0.inner.as_ref()),
                None => error.source(),
            };
        }
        false
    }

    /// Whether the connection this error came from must not be used again: it was lost,
    /// or the state its checkpoints protected is gone.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost { .. } | Error::StateLost { .. } | Error::Connect { .. }
        )
    }
}

/// Whether an I/O error of this kind says the server is (for now) not there: refused,
/// reset, aborted, closed under us. A restart shows these for a moment.
pub(crate) fn is_transient_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        kind,
        ConnectionRefused
            | ConnectionReset
            | ConnectionAborted
            | NotConnected
            | BrokenPipe
            | UnexpectedEof
            | AddrNotAvailable
    )
}

/// `" (12 attempts in 2003 ms)"` after the URL of a retried connect; nothing for one.
fn tries(attempts: u32, waited_ms: u32) -> String {
    if attempts > 1 {
        format!(" ({attempts} attempts in {waited_ms} ms)")
    } else {
        String::new()
    }
}

/// A driver error whose message may hold a password: it displays scrubbed of the
/// connection URL's secrets, and hides its own sources (which print unscrubbed).
/// [`Error::driver`] still reaches the driver's error.
pub struct Scrubbed(Box<ScrubbedParts>);

/// Boxed, so an [`Error`] stays small.
struct ScrubbedParts {
    message: String,
    inner: BoxError,
}

impl Scrubbed {
    /// Wraps `inner`, scrubbing `url`'s secrets from its message.
    pub fn new(url: &SecretUrl, inner: BoxError) -> Self {
        let mut message = url.scrub(&inner.to_string());
        // One line: drivers sometimes end messages with a newline or a backtrace.
        if let Some(first) = message.lines().next() {
            message = first.trim_end().to_owned();
        }
        Scrubbed(Box::new(ScrubbedParts { message, inner }))
    }

    /// The driver's error itself. Its message and sources are not scrubbed: never print
    /// them.
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.0.inner.as_ref()
    }
}

impl fmt::Display for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Scrubbed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.message, f)
    }
}

impl StdError for Scrubbed {}

/// `mysql` -> `MYSQL`, `my-store` -> `MY_STORE`: the part of an environment variable name
/// that stands for a backend or configuration entry.
pub(crate) fn env_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_never_show_the_password() {
        let url = "mysql://root:s%40cret@127.0.0.1:1/test";
        let e = Error::connect(
            "mysql",
            url,
            format!("access denied for root:s@cret and s%40cret at {url}"),
        );
        let text = e.to_string();
        assert!(!text.contains("s@cret"), "{text}");
        assert!(!text.contains("s%40cret"), "{text}");
        assert!(text.contains("mysql://root:***@127.0.0.1:1/test"), "{text}");
        assert!(text.contains("VENOMQA_MYSQL_URL"), "{text}");
        assert_eq!(format!("{e:?}"), text);
        let mut chain = String::new();
        let mut next = StdError::source(&e);
        while let Some(s) = next {
            chain.push_str(&s.to_string());
            next = s.source();
        }
        assert!(
            !chain.contains("s@cret") && !chain.contains("s%40cret"),
            "{chain}"
        );
    }

    #[test]
    fn driver_errors_are_reachable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e = Error::backend("x", "rollback", io);
        assert_eq!(
            e.driver::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionReset)
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::connect("x", "x://h", io);
        assert_eq!(
            e.driver::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::ConnectionRefused)
        );
        assert!(e.driver::<std::fmt::Error>().is_none());
    }

    #[test]
    fn messages_are_one_short_line() {
        let samples = [
            Error::InvalidCheckpoint {
                name: "a-b".into(),
                reason: "it contains '-' at byte 1".into(),
            },
            Error::UnknownCheckpoint {
                name: "x".into(),
                active: "venomqa_root, a".into(),
            },
            Error::DuplicateCheckpoint { name: "a".into() },
            Error::UnknownBackend {
                name: "mysq".into(),
                registered: "memory, mysql, sqlite".into(),
            },
            Error::connect(
                "mysql",
                "mysql://u:p@h/db",
                "127.0.0.1:3306: connection refused",
            ),
            Error::PoolTimeout {
                backend: "mysql".into(),
                pool_size: 4,
                waited_ms: 300_000,
            },
        ];
        for e in samples {
            let text = e.to_string();
            assert!(!text.contains('\n') && !text.contains("  "), "{text}");
            assert!(text.len() <= 300, "{} chars: {text}", text.len());
        }
    }
}
