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
    #[error("setup of {entry} failed: {cause}. Fix the setup step; every test of this entry in this process fails with this error")]
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

const SECRET_KEYS: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "sslpassword",
];

/// The byte range of the password in `scheme://user:password@host...`, if there is one.
///
/// Tolerant of a password holding unencoded `/`, `?`, `#`, `@` or `:`: when the authority
/// (cut at the first `/`, `?` or `#`) holds no `@` but the rest of the URL does, the
/// password runs from the first `:` to the last `@`. Masking too much is the safe side.
fn url_password_range(raw: &str) -> Option<(usize, usize)> {
    let start = raw.find("://")? + 3;
    let rest = &raw[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = match rest[..authority_end].rfind('@') {
        Some(at) => at,
        None => rest.rfind('@').filter(|&at| rest[..at].contains(':'))?,
    };
    let colon = rest[..at].find(':')?;
    Some((start + colon + 1, start + at))
}

/// Where the value of the first `password=`-style key at or after `from` starts.
fn next_secret_value(raw: &str, lower: &str, from: usize) -> Option<usize> {
    let bytes = raw.as_bytes();
    SECRET_KEYS
        .iter()
        .filter_map(|key| {
            let mut search = from;
            while let Some(found) = lower[search..].find(key) {
                let key_start = search + found;
                search = key_start + 1;
                let boundary = key_start == 0
                    || matches!(
                        bytes[key_start - 1],
                        b' ' | b';' | b'&' | b'?' | b'\t' | b'\n' | b','
                    );
                let mut j = key_start + key.len();
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                if !boundary || j >= bytes.len() || bytes[j] != b'=' {
                    continue;
                }
                j += 1;
                while j < bytes.len() && bytes[j] == b' ' {
                    j += 1;
                }
                return Some(j);
            }
            None
        })
        .min()
}

/// The byte ranges of the values of `password=`-style keys: in a URL's query
/// (`?password=x&..`) or a key=value connection string (`host=db password = 'a b'`).
fn secret_value_ranges(raw: &str) -> Vec<(usize, usize)> {
    let lower = raw.to_ascii_lowercase();
    let bytes = raw.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(start) = next_secret_value(raw, &lower, from) {
        let end = match bytes.get(start) {
            Some(&quote @ (b'\'' | b'"')) => {
                let mut k = start + 1;
                while k < bytes.len() && bytes[k] != quote {
                    k += if bytes[k] == b'\\' { 2 } else { 1 };
                }
                (k + 1).min(bytes.len())
            }
            _ => raw[start..]
                .find([' ', ';', '&', '#', '\t', '\n'])
                .map_or(raw.len(), |e| start + e),
        };
        if end > start {
            ranges.push((start, end));
        }
        from = end.max(start + 1);
    }
    ranges
}

/// Replaces the password of a URL, and the value of any `password=`-style key (in a
/// query or a key=value connection string), with `***`.
///
/// A password holding unencoded `/`, `?`, `#` or `@` is masked too: everything from the
/// first `:` of the user info to the last `@` of the URL.
///
/// ```
/// assert_eq!(
///     venomqa::redact_url("mysql://root:s3cr%40t@db:3306/app?password=x&ssl=1"),
///     "mysql://root:***@db:3306/app?password=***&ssl=1"
/// );
/// assert_eq!(venomqa::redact_url("mysql://u:pa/ss@h/db"), "mysql://u:***@h/db");
/// assert_eq!(
///     venomqa::redact_url("host=db password = 'a b' user=x"),
///     "host=db password = *** user=x"
/// );
/// assert_eq!(venomqa::redact_url("sqlite::memory:"), "sqlite::memory:");
/// ```
pub fn redact_url(raw: &str) -> String {
    let mut ranges = secret_value_ranges(raw);
    if let Some(password) = url_password_range(raw) {
        ranges.retain(|&(s, e)| e <= password.0 || s >= password.1);
        ranges.push(password);
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(raw.len());
    let mut last = 0;
    for (start, end) in ranges {
        if start < last {
            continue;
        }
        out.push_str(&raw[last..start]);
        out.push_str("***");
        last = end;
    }
    out.push_str(&raw[last..]);
    out
}

/// The secrets of a connection string, raw and percent-decoded (quotes stripped),
/// longest first.
fn url_secrets(raw: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    for (start, end) in url_password_range(raw)
        .into_iter()
        .chain(secret_value_ranges(raw))
    {
        let value = raw[start..end].trim_matches(['\'', '"']);
        secrets.push(value.to_owned());
        if let Ok(decoded) = percent_decode(value) {
            secrets.push(decoded);
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
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
    fn redacts_passwords_with_unencoded_delimiters() {
        for (raw, redacted) in [
            ("mysql://u:p#ss@h/db", "mysql://u:***@h/db"),
            ("postgres://u:pa/ss@h/db", "postgres://u:***@h/db"),
            ("mysql://u:pa?ss@h/db", "mysql://u:***@h/db"),
            ("redis://:se#cret@h:6379", "redis://:***@h:6379"),
            ("mysql://u:a@b:c@h:1/db?x=1", "mysql://u:***@h:1/db?x=1"),
        ] {
            assert_eq!(redact_url(raw), redacted, "{raw}");
            let password = &raw[raw.find("://").unwrap() + 3..];
            let password = &password[password.find(':').unwrap() + 1..password.rfind('@').unwrap()];
            let e = Error::connection("x", raw, format!("failed for {raw} with {password}"));
            assert!(!e.to_string().contains(password), "{e}");
        }
        // No password: nothing masked, even with an `@` in the query.
        assert_eq!(redact_url("mongodb://h/?user=a@b"), "mongodb://h/?user=a@b");
    }

    #[test]
    fn redacts_key_value_forms() {
        assert_eq!(
            redact_url("password = hunter2 host=h"),
            "password = *** host=h"
        );
        assert_eq!(
            redact_url(r"password='a \' b' host=h"),
            "password=*** host=h"
        );
        assert_eq!(redact_url("passport=1 bypass=2"), "passport=1 bypass=2");
        let e = Error::connection("pg", "host=h password='two words'", "no: two words");
        assert!(!e.to_string().contains("two words"), "{e}");
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
