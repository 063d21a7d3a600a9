//! Passwords never reach a message: [`SecretUrl`] holds a connection URL and prints it
//! redacted, and [`redact_url`] / [`scrub`] mask the password in URLs and in driver text.

use std::fmt;

/// A connection URL that may hold a password. `Debug` and `Display` show it with the
/// password replaced by `***` ([`redact_url`]); [`expose`](Self::expose) gives the URL
/// itself, for the driver.
///
/// ```
/// use venomqa::SecretUrl;
///
/// let url = SecretUrl::from("mysql://app:hunter2@db:3306/shop");
/// assert_eq!(url.to_string(), "mysql://app:***@db:3306/shop");
/// assert_eq!(format!("{url:?}"), "\"mysql://app:***@db:3306/shop\"");
/// assert_eq!(url.expose(), "mysql://app:hunter2@db:3306/shop");
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps `url`.
    pub fn new(url: impl Into<String>) -> Self {
        SecretUrl(url.into())
    }

    /// The URL as given, password included: hand it to the driver, never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// `text` with every occurrence of this URL's secrets (raw and percent-decoded)
    /// replaced by `***`, for driver messages that may echo them.
    pub fn scrub(&self, text: &str) -> String {
        scrub(&self.0, text)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        SecretUrl(url)
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        SecretUrl(url.to_owned())
    }
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
/// The user info runs to the **last** `@` of the URL, so a password holding unencoded
/// `@ : / ? #` is masked whole; the password is what follows its first `:`. An `@` in a
/// query (`?user=a@b`) can make this mask more than the password, never less.
///
/// Text without `://` that still has the shape `user:password@host` (a URL missing its
/// scheme, a typo) is masked the same way, from its start: a URL too broken to parse
/// must not show its password either.
fn url_password_range(raw: &str) -> Option<(usize, usize)> {
    let start = match raw.find("://") {
        Some(i) => i + 3,
        None => {
            let userinfo = &raw[..raw.rfind('@')?];
            let key = userinfo.split('=').next().unwrap_or_default();
            let key_value = userinfo.contains('=')
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if key_value || userinfo.contains(char::is_whitespace) {
                return None; // a key=value string: secret_value_ranges handles it
            }
            0
        }
    };
    let rest = &raw[start..];
    let at = rest.rfind('@')?;
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
/// The user info runs to the last `@` of the URL, so a password holding unencoded
/// `@ : / ? #`, spaces or non-ASCII characters is masked whole.
///
/// ```
/// assert_eq!(
///     venomqa::redact_url("mysql://root:s3cr%40t@db:3306/app?password=x&ssl=1"),
///     "mysql://root:***@db:3306/app?password=***&ssl=1"
/// );
/// assert_eq!(
///     venomqa::redact_url("mysql://acc_user:p@ss:w/rd#1@127.0.0.1:3306/db"),
///     "mysql://acc_user:***@127.0.0.1:3306/db"
/// );
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
        secrets.push(percent_decode(value));
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

/// `text` with the URL replaced by its redacted form and every occurrence of its
/// password (raw and percent-decoded) replaced by `***`.
pub fn scrub(url: &str, text: &str) -> String {
    let mut out = if url.is_empty() {
        text.to_owned()
    } else {
        text.replace(url, &redact_url(url))
    };
    for secret in url_secrets(url) {
        out = out.replace(&secret, "***");
    }
    out
}

/// Percent-decodes a URL component (invalid UTF-8 is replaced, never an error).
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords with every character that has a meaning in a URL, raw and encoded.
    const HOSTILE: &[&str] = &[
        "p@ss:w/rd#1",
        "a@b:c@d",
        "pa/ss",
        "pa?ss",
        "se#cret",
        "100%sure",
        "two words",
        "pässwörd",
        "密码:@/",
        "p%40ss",
    ];

    #[test]
    fn redacts_userinfo_password() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("redis://:pw@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("mysql://user@h/db"), "mysql://user@h/db");
        assert_eq!(redact_url("mongodb://h/?user=a@b"), "mongodb://h/?user=a@b");
    }

    #[test]
    fn hostile_passwords_never_show_a_fragment() {
        for password in HOSTILE {
            for url in [
                format!("mysql://acc_user:{password}@127.0.0.1:3306/db"),
                format!("postgres://u:{password}@h/db?sslmode=disable"),
                format!("redis://:{password}@h:6379/0"),
            ] {
                let shown = redact_url(&url);
                assert!(shown.contains(":***@"), "{url} -> {shown}");
                for fragment in password.split(['@', ':', '/', '#', '?', ' ', '%']) {
                    if fragment.chars().count() >= 3 {
                        assert!(!shown.contains(fragment), "{url} -> {shown}");
                    }
                }
                let text = scrub(&url, &format!("login failed for {password} at {url}"));
                assert!(!text.contains(password), "{text}");
            }
        }
    }

    #[test]
    fn urls_without_a_scheme_are_masked_too() {
        assert_eq!(redact_url(":0A¡@"), ":***@");
        assert_eq!(redact_url("u:p@ss:w@h/db"), "u:***@h/db");
        assert_eq!(redact_url("mysql:/u:pw@h/db"), "mysql:***@h/db");
        assert_eq!(redact_url("user=a@b"), "user=a@b");
        assert_eq!(redact_url(":=A¡@"), ":***@");
    }

    #[test]
    fn the_reported_leak_is_masked() {
        assert_eq!(
            redact_url("mysql://acc_user:p@ss:w/rd#1@127.0.0.1:3306/db"),
            "mysql://acc_user:***@127.0.0.1:3306/db"
        );
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
        assert_eq!(
            redact_url("Server=db;Password=hunter2;"),
            "Server=db;Password=***;"
        );
        assert_eq!(
            redact_url("mongodb://h/?authSource=admin&password=hunter2"),
            "mongodb://h/?authSource=admin&password=***"
        );
        assert!(!scrub("host=h password='two words'", "no: two words").contains("two words"));
    }

    #[test]
    fn scrub_masks_decoded_forms() {
        let url = "mysql://root:s%40cret@127.0.0.1:1/test";
        let text = scrub(
            url,
            "denied for root:s@cret and s%40cret at mysql://root:s%40cret@127.0.0.1:1/test",
        );
        assert!(
            !text.contains("s@cret") && !text.contains("s%40cret"),
            "{text}"
        );
        assert!(text.contains("mysql://root:***@127.0.0.1:1/test"), "{text}");
    }

    #[test]
    fn secret_url_debug_and_display_are_redacted() {
        let url = SecretUrl::from("postgres://u:hunter2@h/db");
        assert!(!format!("{url:?} {url}").contains("hunter2"));
        assert_eq!(url.expose(), "postgres://u:hunter2@h/db");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b%3Ac%2F"), "a@b:c/");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any password, with any characters a URL gives meaning to, is masked whole.
        #[test]
        fn no_password_survives(password in "[^\\x00]{3,24}", user in "[a-z_]{1,8}") {
            let url = format!("mysql://{user}:{password}@127.0.0.1:3306/db");
            let shown = redact_url(&url);
            prop_assert!(!shown.contains(&password), "{} -> {}", url, shown);
            let text = scrub(&url, &format!("failed: {password} ({url})"));
            prop_assert!(!text.contains(&password), "{}", text);
        }

        /// Whatever the input, redaction never panics and never grows a secret.
        #[test]
        fn never_panics(raw in "\\PC{0,64}") {
            let _ = redact_url(&raw);
            let _ = scrub(&raw, &raw);
            let _ = percent_decode(&raw);
        }
    }
}
