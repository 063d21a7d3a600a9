//! The crate's one error type.
//!
//! Every message names what went wrong and what to do about it. No message contains a
//! password: URLs go through [`redact_url`] and driver messages through
//! [`Error::connection`], which scrubs the password out of them.

use std::fmt;

/// The result type of every fallible venomqa operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in venomqa.
///
/// `Debug` prints the same text as `Display`, so a test returning
/// `Result<(), venomqa::Error>` fails with a readable message.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operation needed a connection, but the state manager is not connected.
    #[error(
        "the {backend} state manager is not connected: call connect() first \
         (managers leased by #[venom_test] are connected for you)"
    )]
    NotConnected {
        /// Backend name, such as `sqlite`.
        backend: String,
    },

    /// A checkpoint name breaks the naming rule (see [`validate_checkpoint_name`](crate::validate_checkpoint_name)).
    #[error(
        "invalid checkpoint name {name:?}: {reason}. A checkpoint name starts with an ASCII \
         letter or `_`, continues with ASCII letters, digits or `_`, and is at most 63 bytes"
    )]
    InvalidCheckpoint {
        /// The rejected name (as given).
        name: String,
        /// Which part of the rule it breaks.
        reason: String,
    },

    /// Rollback or release named a checkpoint that does not exist.
    #[error(
        "checkpoint {name:?} does not exist (active checkpoints: {active}); create it with \
         checkpoint() first, and note that rollback discards the checkpoints made after its \
         target and release discards its target and the ones after it"
    )]
    UnknownCheckpoint {
        /// The name asked for.
        name: String,
        /// The active checkpoints, oldest first, for the message.
        active: String,
    },

    /// A checkpoint with this name is already active.
    #[error(
        "checkpoint {name:?} already exists; use another name, or release or roll back past \
         the existing one first"
    )]
    DuplicateCheckpoint {
        /// The duplicated name.
        name: String,
    },

    /// No backend is registered under this name.
    #[error(
        "unknown backend {name:?}; registered backends: {registered}. Enable the matching cargo \
         feature of venomqa (mysql, postgres, redis, mongodb), or register your own backend \
         with venomqa::register_backend!"
    )]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// Comma-separated list of registered backends.
        registered: String,
    },

    /// The backend could not connect to its server.
    #[error(
        "could not connect to {backend} at {url}: {cause}. Check that the server is running \
         and reachable, and that the URL is right (set it with {env_var} or in venomqa.yaml)"
    )]
    Connection {
        /// Backend name.
        backend: String,
        /// The URL with its password replaced by `***`.
        url: String,
        /// The driver's message, password scrubbed.
        cause: String,
        /// The environment variable that sets this backend's URL.
        env_var: String,
    },

    /// The configuration file or an environment variable holds a bad value.
    #[error("configuration error in {file}, key `{key}`: {message}")]
    Config {
        /// The file (or `environment`) the value came from.
        file: String,
        /// The offending key.
        key: String,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A backend operation failed on the server or in the driver.
    #[error("{backend}: {operation} failed: {cause}")]
    Backend {
        /// Backend name.
        backend: String,
        /// What was being done, such as `rollback to checkpoint "a"`.
        operation: String,
        /// The driver's or server's message (and a hint, where one helps).
        cause: String,
    },

    /// The backend lost the state a checkpoint protects (an implicit commit, a killed
    /// connection, an aborted transaction): the changes can no longer be rolled back.
    #[error("{backend}: the transaction holding the test's checkpoints is gone: {message}")]
    StateLost {
        /// Backend name.
        backend: String,
        /// What happened, why, and what to do.
        message: String,
    },

    /// The backend does not support this operation.
    #[error("{backend} does not support {operation}: {hint}")]
    Unsupported {
        /// Backend name.
        backend: String,
        /// The operation asked for.
        operation: String,
        /// What to do instead.
        hint: String,
    },

    /// No pooled connection became free in time.
    #[error(
        "waited {waited_ms} ms for a free {backend} connection (pool size {pool_size}) and \
         none came back; raise pool_size for this backend in venomqa.yaml, or look for a test \
         that never finishes"
    )]
    PoolTimeout {
        /// Backend name.
        backend: String,
        /// The pool's size.
        pool_size: usize,
        /// How long the lease waited.
        waited_ms: u128,
    },

    /// The once-per-process setup step (schema files or a setup function) failed.
    #[error("setup of {entry} failed: {cause}. Fix the setup step; every test of this backend fails until it succeeds")]
    Setup {
        /// Configuration entry whose setup failed.
        entry: String,
        /// What failed.
        cause: String,
    },

    /// A test's session parameter does not match the backend its configuration chose.
    #[error(
        "test {test} takes a session of type {expected}, but its backend is {backend:?}; \
         take `&mut venomqa::Session` to accept any backend, or set the backend with \
         #[venom_test(backend = \"...\")]"
    )]
    SessionType {
        /// The test's name.
        test: String,
        /// The parameter's manager type.
        expected: String,
        /// The backend the configuration chose.
        backend: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// A [`Error::Backend`] from any displayable driver error.
    pub fn backend(backend: &str, operation: impl Into<String>, cause: impl fmt::Display) -> Self {
        Error::Backend {
            backend: backend.to_owned(),
            operation: operation.into(),
            cause: cause.to_string(),
        }
    }

    /// A [`Error::Connection`] whose URL is redacted and whose cause has every
    /// occurrence of the URL's password (raw and percent-decoded) replaced by `***`.
    pub fn connection(backend: &str, url: &str, cause: impl fmt::Display) -> Self {
        Error::Connection {
            backend: backend.to_owned(),
            url: redact_url(url),
            cause: scrub_password(url, &cause.to_string()),
            env_var: format!("VENOMQA_{}_URL", env_key(backend)),
        }
    }

    /// A [`Error::Config`].
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

    /// A [`Error::Unsupported`].
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
}

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

const SECRET_QUERY_KEYS: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "sslpassword",
];

/// Replaces the password of a URL (and any `password=` style query parameter) with `***`.
///
/// Works on URLs the `url` crate cannot parse too, by masking whatever stands between the
/// first `:` after the scheme and the last `@` of the authority.
///
/// ```
/// assert_eq!(
///     venomqa::redact_url("mysql://root:s3cr%40t@db:3306/app?password=x&ssl=1"),
///     "mysql://root:***@db:3306/app?password=***&ssl=1"
/// );
/// assert_eq!(venomqa::redact_url("sqlite::memory:"), "sqlite::memory:");
/// ```
pub fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return redact_key_values(raw);
    };
    let rest_start = scheme_end + 3;
    let rest = &raw[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = String::with_capacity(raw.len());
    out.push_str(&raw[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let (query, fragment) = match tail[q + 1..].find('#') {
                Some(h) => (&tail[q + 1..q + 1 + h], &tail[q + 1 + h..]),
                None => (&tail[q + 1..], ""),
            };
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _))
                        if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) =>
                    {
                        format!("{k}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
            out.push_str(fragment);
        }
        None => out.push_str(tail),
    }
    out
}

/// Masks `password=...` style pairs of a key=value connection string
/// (`host=db user=app password=x`, or `;`-separated), which is not a URL.
fn redact_key_values(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while !rest.is_empty() {
        let token_end = rest.find([' ', ';', '\t', '\n']).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(token_end);
        match token.split_once('=') {
            Some((k, _)) if SECRET_QUERY_KEYS.contains(&k.trim().to_ascii_lowercase().as_str()) => {
                out.push_str(k);
                out.push_str("=***");
            }
            _ => out.push_str(token),
        }
        let sep_len = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..sep_len]);
        rest = &tail[sep_len..];
    }
    out
}

/// The secrets of a connection string: a URL's password (raw and percent-decoded) and
/// the values of `password=`-style keys, longest first.
fn url_secrets(raw: &str) -> Vec<String> {
    let mut secrets: Vec<String> = raw
        .split([' ', ';', '\t', '\n', '&', '?'])
        .filter_map(|t| t.split_once('='))
        .filter(|(k, _)| SECRET_QUERY_KEYS.contains(&k.trim().to_ascii_lowercase().as_str()))
        .map(|(_, v)| v.to_owned())
        .collect();
    if let Ok(parsed) = url::Url::parse(raw) {
        if let Some(p) = parsed.password() {
            secrets.push(p.to_owned());
            if let Ok(decoded) = percent_decode(p) {
                secrets.push(decoded);
            }
        }
        for (k, v) in parsed.query_pairs() {
            if SECRET_QUERY_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_empty() {
                secrets.push(v.into_owned());
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// Replaces every occurrence of the URL's password in `text` by `***`.
pub(crate) fn scrub_password(url: &str, text: &str) -> String {
    let mut out = text.replace(url, &redact_url(url));
    for secret in url_secrets(url) {
        out = out.replace(&secret, "***");
    }
    out
}

/// Percent-decodes a URL component into UTF-8.
pub(crate) fn percent_decode(s: &str) -> std::result::Result<String, std::string::FromUtf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("mysql://user@h/db"), "mysql://user@h/db");
    }

    #[test]
    fn redacts_passwords_containing_at_colon_and_slash() {
        // An unencoded `@` or `:` in the password: everything up to the last `@` of the
        // authority is masked.
        assert_eq!(
            redact_url("mysql://u:p@ss:w@h:3306/db"),
            "mysql://u:***@h:3306/db"
        );
        assert_eq!(redact_url("mysql://u:p%2Fw%40x@h/db"), "mysql://u:***@h/db");
    }

    #[test]
    fn redacts_query_secrets() {
        assert_eq!(
            redact_url("mongodb://h/?authSource=admin&password=hunter2"),
            "mongodb://h/?authSource=admin&password=***"
        );
    }

    #[test]
    fn connection_error_never_shows_the_password() {
        let url = "mysql://root:s%40cret@127.0.0.1:1/test";
        let e = Error::connection("mysql", url, "access denied for root:s@cret and s%40cret");
        let text = e.to_string();
        assert!(!text.contains("s@cret"), "{text}");
        assert!(!text.contains("s%40cret"), "{text}");
        assert!(text.contains("mysql://root:***@127.0.0.1:1/test"), "{text}");
        assert!(text.contains("VENOMQA_MYSQL_URL"), "{text}");
        assert_eq!(format!("{e:?}"), text);
    }

    #[test]
    fn redacts_key_value_connection_strings() {
        assert_eq!(
            redact_url("host=db user=app password=hunter2 dbname=x"),
            "host=db user=app password=*** dbname=x"
        );
        assert_eq!(
            redact_url("Server=db;Password=hunter2;"),
            "Server=db;Password=***;"
        );
        let e = Error::connection(
            "postgres",
            "host=db password=hunter2",
            "auth failed for hunter2",
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%3Ac%2F").unwrap(), "a@b:c/");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
        assert_eq!(percent_decode("%4").unwrap(), "%4");
    }
}
