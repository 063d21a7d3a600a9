//! The MySQL URL as venomqa reads it: the driver's own parser, after venomqa takes out
//! what the driver does not know (the `mariadb` scheme, `connect_timeout_ms`, an empty
//! host); its errors never show the password.

use std::time::Duration;

use ::mysql::Opts;

use super::driver;

/// What venomqa takes from a URL: the driver's options (parsed by the driver) and its own
/// `connect_timeout_ms`.
pub(super) struct Parsed {
    pub(super) opts: Opts,
    pub(super) connect_timeout: Option<Duration>,
}

/// Parses `raw` with the driver's [`Opts::from_url`], after taking out what the driver
/// does not know: the `mariadb` scheme (read as `mysql`), venomqa's `connect_timeout_ms`,
/// and an empty host (`127.0.0.1`). The error never shows the password.
pub(super) fn parse_url(raw: &str) -> std::result::Result<Parsed, String> {
    let scrub = |message: String| crate::redact::scrub(raw, &message);
    let mut url =
        url::Url::parse(raw).map_err(|e| scrub(format!("it does not parse as a URL ({e})")))?;
    match url.scheme() {
        "mysql" => {}
        "mariadb" => url
            .set_scheme("mysql")
            .map_err(|()| "its scheme cannot be read as mysql".to_owned())?,
        other => {
            return Err(scrub(format!(
                "its scheme is {other:?}, not mysql or mariadb"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        url.set_host(Some("127.0.0.1"))
            .map_err(|e| scrub(format!("it has no host ({e})")))?;
    }
    let mut connect_timeout = None;
    if url.query().is_some() {
        let mut kept = Vec::new();
        for (key, value) in url.query_pairs() {
            if key == "connect_timeout_ms" {
                let ms = value.parse::<u64>().map_err(|_| {
                    scrub(format!(
                        "connect_timeout_ms={value:?} is not a whole number of milliseconds"
                    ))
                })?;
                connect_timeout = Some(Duration::from_millis(ms));
            } else {
                kept.push((key.into_owned(), value.into_owned()));
            }
        }
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    let opts = Opts::from_url(url.as_str()).map_err(|e| scrub(url_error(&e)))?;
    Ok(Parsed {
        opts,
        connect_timeout,
    })
}

/// The driver's URL error in words that never echo a value of the URL (which may be a
/// password written where a parameter was expected); a parameter's name is shown only
/// when it is a plain word.
fn url_error(e: &driver::UrlError) -> String {
    let word = |s: &str| {
        if !s.is_empty()
            && s.len() <= 40
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            format!(" `{s}`")
        } else {
            String::new()
        }
    };
    match e {
        driver::UrlError::UnknownParameter(name) => format!("unknown URL parameter{}", word(name)),
        driver::UrlError::InvalidValue(name, _) => {
            format!("invalid value of URL parameter{}", word(name))
        }
        driver::UrlError::FeatureRequired(feature, name) => {
            format!(
                "URL parameter{} needs the driver's feature{}",
                word(name),
                word(feature)
            )
        }
        driver::UrlError::UnsupportedScheme(_) => "unsupported scheme".to_owned(),
        driver::UrlError::ParseError(p) => format!("it does not parse ({p})"),
        _ => "it is not a valid MySQL URL".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::config::BackendConfig;
    use crate::error::Error;
    use crate::mysql::{MySql, MySqlOptions};

    fn parsed(url: &str) -> Parsed {
        parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn url_forms() {
        let o = parsed("mysql://root@127.0.0.1:3306/test").opts;
        assert_eq!(
            (
                &*o.get_ip_or_hostname(),
                o.get_tcp_port(),
                o.get_user(),
                o.get_pass(),
                o.get_db_name()
            ),
            ("127.0.0.1", 3306, Some("root"), None, Some("test"))
        );
        let p = parsed(
            "mysql://vq:p%40ss%3Aw%2Frd@db.example:3307/my%20db?connect_timeout_ms=250&prefer_socket=false",
        );
        assert_eq!(p.opts.get_pass(), Some("p@ss:w/rd"));
        assert_eq!(p.opts.get_db_name(), Some("my db"));
        assert_eq!(
            (&*p.opts.get_ip_or_hostname(), p.opts.get_tcp_port()),
            ("db.example", 3307)
        );
        assert_eq!(p.connect_timeout, Some(Duration::from_millis(250)));
        assert!(!p.opts.get_prefer_socket());
        let o = parsed("mariadb://u:a%2Fb%3Fc%23d@[::1]/x").opts;
        assert_eq!((o.get_tcp_port(), o.get_pass()), (3306, Some("a/b?c#d")));
        assert_eq!(o.get_ip_or_hostname(), "[::1]");
        let o = parsed("mysql://root@localhost/test?socket=%2Frun%2Fmysqld%2Fmysqld.sock").opts;
        assert_eq!(o.get_socket(), Some("/run/mysqld/mysqld.sock"));
        assert!(o.get_prefer_socket(), "the driver's default");
        let o = parsed("mysql:///test").opts;
        assert_eq!(
            (&*o.get_ip_or_hostname(), o.get_db_name()),
            ("127.0.0.1", Some("test"))
        );

        // (Parsed has no Debug: the driver's options hold the password.)
        let error = |url: &str| parse_url(url).err().expect(url);
        assert!(error("postgres://h/db").contains("postgres"));
        assert!(error("mysql://h/db?bogus=1").contains("bogus"));
        for bad in [
            "mysql://u:s3cret@h/db?connect_timeout_ms=x",
            "mysql://u:s3cret@h/db?prefer_socket=maybe",
            "mysql://u:s3cret@h:99999/db",
        ] {
            let e = error(bad);
            assert!(!e.contains("s3cret"), "{e}");
        }
    }

    #[test]
    fn a_bad_url_is_a_config_error_without_the_password() {
        let config = BackendConfig::new("mysql").with_url("mysql://u:s3cr%40t@h/db?nonsense=1");
        let e = MySql::new(&config, MySqlOptions::default()).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::Config { .. }), "{text}");
        assert!(
            text.contains("nonsense") && text.contains("backends.mysql.url"),
            "{text}"
        );
        assert!(!text.contains("s3cr"), "{text}");
    }
}

#[cfg(test)]
mod properties {
    use crate::backend::Backend;
    use crate::config::BackendConfig;
    use crate::error::Error;
    use crate::mysql::{MySql, MySqlOptions};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// Any text as a URL: a backend or a configuration error naming the key, never a
        /// panic, and never the password.
        #[test]
        fn any_url_builds_or_errs_without_the_password(
            prefix in prop_oneof![Just("mysql://".to_owned()), Just("mariadb://".to_owned()), Just("".to_owned()), "\\PC{0,8}"],
            user in "\\PC{0,8}",
            password in "[^\\x00]{3,16}",
            rest in "\\PC{0,40}",
        ) {
            let url = format!("{prefix}{user}:{password}@{rest}");
            let config = BackendConfig::new("mysql").with_url(url.as_str());
            match MySql::new(&config, MySqlOptions::default()) {
                Ok(backend) => {
                    let shown = format!("{backend:?}");
                    prop_assert!(!shown.contains(&password), "{}", shown);
                }
                Err(e) => {
                    let text = e.to_string();
                    prop_assert!(matches!(e, Error::Config { .. }), "{}", text);
                    prop_assert!(text.contains("backends.mysql.url"), "{}", text);
                    prop_assert!(!text.contains(&password), "{}", text);
                    prop_assert!(!text.contains('\n'), "{}", text);
                }
            }
        }
    }
}
