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

/// `name` as a double-quoted identifier, unchecked: for names read from a server's
/// catalog, which are never empty and hold no NUL byte.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn double_quoted(name: &str) -> String {
    quoted(name, '"')
}

fn quote(backend: &str, name: &str, q: char) -> Result<String> {
    if name.is_empty() || name.contains('\0') {
        return Err(Error::backend(
            backend,
            format!("quoting identifier {name:?}"),
            "an identifier must be non-empty and free of NUL bytes; fix the table or schema name in the configuration",
        ));
    }
    Ok(quoted(name, q))
}

/// `name` between two `q`, each `q` in it doubled.
fn quoted(name: &str, q: char) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// The shape of another session's statement, safe to show in an error: every string
/// literal (`'..'`, `E'..'`, `$tag$..$tag$`, MySQL's `".."`) and every number outside an
/// identifier becomes `?`, and the result is cut to `max` characters. Literals may hold
/// passwords, tokens or personal data; the statement's shape is what a reader needs to
/// find the request that held the database.
///
/// `UPDATE products SET stock = 4 WHERE id = 7 AND note = 'x'` ->
/// `UPDATE products SET stock = ? WHERE id = ? AND note = ?`.
#[cfg_attr(not(any(feature = "mysql", feature = "postgres")), allow(dead_code))]
pub(crate) fn mask_literals(sql: &str, max: usize) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len().min(max * 4));
    let mut i = 0;
    // Whether the previous character continues an identifier (so `t1` keeps its digit).
    let mut in_word = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                // A quoted string; `"` is a string on MySQL and an identifier on
                // PostgreSQL: mask both, a name is not worth the risk of a value.
                let quote = c;
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\\' {
                        i += 2;
                        continue;
                    }
                    if chars[i] == quote {
                        if chars.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                if out.ends_with(['E', 'e', 'X', 'x', 'B', 'b', 'N', 'n']) && !in_word_before(&out)
                {
                    out.pop();
                }
                out.push('?');
                in_word = false;
                continue;
            }
            '$' if !in_word => {
                // A dollar-quoted string: $$..$$ or $tag$..$tag$ (a `$1` parameter stays).
                let tag_end = chars[i + 1..]
                    .iter()
                    .position(|&d| !(d.is_alphanumeric() || d == '_'))
                    .map(|p| i + 1 + p);
                if let Some(end) =
                    tag_end.filter(|&e| chars[e] == '$' && !chars[i + 1].is_ascii_digit())
                {
                    let tag: String = chars[i..=end].iter().collect();
                    let rest: String = chars[end + 1..].iter().collect();
                    let close = rest.find(&tag).map(|p| rest[..p].chars().count());
                    i = match close {
                        Some(n) => end + 1 + n + tag.chars().count(),
                        None => chars.len(),
                    };
                    out.push('?');
                    continue;
                }
                // A parameter such as `$1`: its digits belong to it.
                out.push(c);
                in_word = true;
            }
            '`' => {
                // A MySQL identifier: kept as it is.
                let start = i;
                i += 1;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                out.extend(&chars[start..(i + 1).min(chars.len())]);
                i += 1;
                in_word = false;
                continue;
            }
            c if c.is_ascii_digit() && !in_word => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                out.push('?');
                in_word = false;
                continue;
            }
            c => {
                out.push(c);
                in_word = c.is_alphanumeric() || c == '_' || c == '$';
            }
        }
        i += 1;
    }
    let collapsed = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() > max {
        let cut: String = collapsed.chars().take(max.saturating_sub(3)).collect();
        format!("{cut}...")
    } else {
        collapsed
    }
}

/// Whether the character before the last one of `out` continues a word (so the last one
/// is part of a name, not a string prefix such as `E'..'`).
fn in_word_before(out: &str) -> bool {
    let mut it = out.chars().rev();
    it.next();
    it.next().is_some_and(|c| c.is_alphanumeric() || c == '_')
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
        assert_eq!(double_quoted("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn masks_every_literal_and_keeps_the_shape() {
        assert_eq!(
            mask_literals(
                "UPDATE products SET stock = 4 WHERE id = 7 AND note = 'it''s secret'",
                200
            ),
            "UPDATE products SET stock = ? WHERE id = ? AND note = ?"
        );
        assert_eq!(
            mask_literals(
                "INSERT INTO t1 (a) VALUES (E'pa\\'ss', \"tok\", $$x$$, $k$y$k$, -3.5e2, x'ff')",
                200
            ),
            "INSERT INTO t1 (a) VALUES (?, ?, ?, ?, -?, ?)"
        );
        assert_eq!(
            mask_literals("SELECT * FROM `t2` WHERE c = $1", 200),
            "SELECT * FROM `t2` WHERE c = $1"
        );
        let long = format!("SELECT '{}' , col_9", "p".repeat(500));
        assert_eq!(mask_literals(&long, 200), "SELECT ? , col_9");
        assert_eq!(
            mask_literals("SELECT 'unterminated secret", 200),
            "SELECT ?"
        );
        assert_eq!(mask_literals("UPDATE a SET b = 1", 10), "UPDATE ...");
    }
}
