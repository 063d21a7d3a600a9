//! Identifier quoting shared by the SQL backends. Every table, schema and savepoint name
//! that goes into SQL goes through one of these.

use crate::error::{Error, Result};

/// `name` as a double-quoted identifier (SQLite, PostgreSQL): `a"b` -> `"a""b"`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn quote_double(backend: &str, name: &str) -> Result<String> {
    quote(backend, name, '"')
}

/// `name` as a backtick-quoted identifier (MySQL, MariaDB): ``a`b`` -> ```a``b```.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) fn quote_backtick(backend: &str, name: &str) -> Result<String> {
    quote(backend, name, '`')
}

fn quote(backend: &str, name: &str, q: char) -> Result<String> {
    if name.is_empty() || name.contains('\0') {
        return Err(Error::backend(
            backend,
            format!("quoting identifier {name:?}"),
            "an identifier must be non-empty and free of NUL bytes; fix the table or schema name in the configuration",
        ));
    }
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(quote_double("x", "users").unwrap(), "\"users\"");
        assert_eq!(
            quote_double("x", "a\"b; DROP TABLE t").unwrap(),
            "\"a\"\"b; DROP TABLE t\""
        );
        assert_eq!(quote_backtick("x", "a`b").unwrap(), "`a``b`");
        assert!(quote_backtick("x", "").is_err());
        assert!(quote_double("x", "a\0b").is_err());
    }
}
