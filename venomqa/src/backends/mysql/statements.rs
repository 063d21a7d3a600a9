//! How [`exec`](super::MySqlStateManager::exec) reads SQL: a small lexer that splits a
//! batch into statements the way the server does, and the classifier that names the
//! statements `exec` refuses to run inside the test's transaction (those that commit it
//! implicitly, and those whose text does not show what they run).
//!
//! Hand-written on purpose: it only has to find each statement's leading keywords, but it
//! must find them as the server does: the bodies of executable comments (`/*!40000 ... */`,
//! `/*M! ... */`) run, `--` starts a comment only before whitespace, where a string
//! literal ends depends on the session's `sql_mode` (`NO_BACKSLASH_ESCAPES`,
//! `ANSI_QUOTES`), and MariaDB adds `SET STATEMENT .. FOR`, labels and compound statements
//! outside stored programs. A general SQL parser (`sqlparser`) builds a full syntax tree,
//! lexes one fixed way, and rejects what its grammar lacks; here any of that would be a
//! way around the refusal.

/// How the server reads string literals, from `@@sql_mode`: whether a backslash escapes
/// the next character in `'..'` and in `".."` (`NO_BACKSLASH_ESCAPES` turns both off;
/// `ANSI_QUOTES` makes `".."` an identifier, where a backslash is literal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Lexing {
    backslash_in_single: bool,
    backslash_in_double: bool,
}

impl Lexing {
    const DEFAULT: Lexing = Lexing {
        backslash_in_single: true,
        backslash_in_double: true,
    };
    const ANSI_QUOTES: Lexing = Lexing {
        backslash_in_single: true,
        backslash_in_double: false,
    };
    const NO_BACKSLASH_ESCAPES: Lexing = Lexing {
        backslash_in_single: false,
        backslash_in_double: false,
    };

    pub(super) fn from_sql_mode(mode: &str) -> Lexing {
        let has = |flag: &str| mode.split(',').any(|m| m.trim().eq_ignore_ascii_case(flag));
        if has("NO_BACKSLASH_ESCAPES") {
            Lexing::NO_BACKSLASH_ESCAPES
        } else if has("ANSI_QUOTES") {
            Lexing::ANSI_QUOTES
        } else {
            Lexing::DEFAULT
        }
    }
}

/// A statement [`exec`](super::MySqlStateManager::exec) refuses to run while a checkpoint is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// It commits (or ends) the open transaction implicitly; its leading keywords.
    Commits(String),
    /// What it runs is not in its text (a stored procedure, a prepared statement, a
    /// compound statement), so it may commit; its leading keyword.
    Opaque(String),
}

/// The refusal of the first statement of `sql` that [`exec`](super::MySqlStateManager::exec) must not
/// run inside a transaction, if any. `sql` is read the three ways the server can read it
/// (see [`Lexing`]); when they disagree (a backslash or a double quote inside a literal
/// hides or shows a statement), `server_lexing` is asked for the session's actual
/// `sql_mode`, unless the batch itself changes `sql_mode`, or the server cannot say: then
/// the statement is refused.
pub(super) fn refusal(
    sql: &str,
    server_lexing: impl FnOnce() -> Option<Lexing>,
) -> Option<Refusal> {
    let found = [
        Lexing::DEFAULT,
        Lexing::ANSI_QUOTES,
        Lexing::NO_BACKSLASH_ESCAPES,
    ]
    .map(|lexing| (lexing, statements(sql, lexing)));
    let verdicts = found
        .iter()
        .map(|(_, statements)| statements.iter().find_map(|w| refusal_of(w)))
        .collect::<Vec<_>>();
    if verdicts
        .iter()
        .all(|v| v.is_some() == verdicts[0].is_some())
    {
        return verdicts.into_iter().flatten().next();
    }
    let changes_mode = found.iter().any(|(_, statements)| {
        statements
            .iter()
            .any(|w| w.iter().any(|word| word.contains("SQL_MODE")))
    });
    let conservative = verdicts.iter().flatten().next().cloned();
    if changes_mode {
        return conservative;
    }
    match server_lexing() {
        Some(lexing) => statements(sql, lexing).iter().find_map(|w| refusal_of(w)),
        None => conservative,
    }
}

/// Whether one statement (its upper-cased words; string literals as `'`, `"` or `` ` ``,
/// and `:` kept) must be refused.
fn refusal_of(words: &[String]) -> Option<Refusal> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let first = *w.first()?;
    let second = w.get(1).copied().unwrap_or("");
    let lead = || w.iter().take(2).copied().collect::<Vec<_>>().join(" ");
    if second == ":" {
        // `label: BEGIN ... END`, `label: LOOP ...`: a compound statement (MariaDB runs
        // them outside stored programs).
        return Some(Refusal::Opaque(format!("{first}:")));
    }
    let commits = match first {
        // MariaDB's `SET STATEMENT var = value [, ...] FOR statement`: judge `statement`.
        "SET" if second == "STATEMENT" => {
            let at = w.iter().position(|&x| x == "FOR")?;
            return refusal_of(&words[at + 1..]);
        }
        "PREPARE" | "EXECUTE" | "CALL" | "IF" | "CASE" | "WHILE" | "LOOP" | "REPEAT" | "FOR" => {
            return Some(Refusal::Opaque(first.to_owned()))
        }
        "CREATE" | "DROP" => {
            // CREATE [OR REPLACE] TEMPORARY TABLE and DROP TEMPORARY TABLE do not commit.
            !(second == "TEMPORARY" || (second == "OR" && w.get(3) == Some(&"TEMPORARY")))
        }
        "ROLLBACK" => !w.contains(&"TO"),
        "ALTER" | "RENAME" | "TRUNCATE" | "GRANT" | "REVOKE" | "LOCK" | "UNLOCK" | "BEGIN"
        | "COMMIT" | "ANALYZE" | "CHECK" | "OPTIMIZE" | "REPAIR" | "FLUSH" | "RESET"
        | "INSTALL" | "UNINSTALL" | "XA" | "START" | "STOP" | "CHANGE" | "IMPORT" => true,
        "CACHE" | "LOAD" => second == "INDEX",
        // SET PASSWORD; SET [SESSION] autocommit = 1, SET @@autocommit := 1, SET a = 1,
        // autocommit = 1, ...
        "SET" if second == "PASSWORD" => true,
        "SET" => {
            let autocommit = w.iter().any(|x| {
                let user_variable = x.starts_with('@') && !x.starts_with("@@");
                x.ends_with("AUTOCOMMIT") && !user_variable
            });
            return autocommit.then(|| Refusal::Commits("SET autocommit".into()));
        }
        _ => false,
    };
    commits.then(lead).map(Refusal::Commits)
}

/// The upper-cased words of each statement of `sql`, read as the server reads it under
/// `lexing`: comments are skipped, except that the body of an executable comment
/// (`/*! ... */`, `/*!40000 ... */`, `/*M! ... */`) is read as SQL, because the server
/// runs it; `--` starts a comment only before whitespace, a control character or the
/// end (`1--1` is arithmetic); a string literal or quoted identifier becomes one word
/// (`'`, `"` or `` ` ``), and `:` is kept (labels).
fn statements(sql: &str, lexing: Lexing) -> Vec<Vec<String>> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = vec![Vec::new()];
    let mut word = String::new();
    let mut in_executable_comment = false;
    let mut i = 0;
    let flush = |word: &mut String, out: &mut Vec<Vec<String>>| {
        if !word.is_empty() {
            out.last_mut()
                .expect("non-empty")
                .push(word.to_ascii_uppercase());
            word.clear();
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let dash_comment = c == '-'
            && next == Some('-')
            && chars
                .get(i + 2)
                .is_none_or(|&c| c.is_whitespace() || c.is_control());
        if c == '#' || dash_comment {
            flush(&mut word, &mut out);
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            flush(&mut word, &mut out);
            i += 2;
            let executable = match chars.get(i) {
                Some('!') => 1,
                Some('M') if chars.get(i + 1) == Some(&'!') => 2,
                _ => 0,
            };
            if executable > 0 {
                // The body runs (when the server is at least the version that may follow).
                i += executable;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                in_executable_comment = true;
                continue;
            }
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            continue;
        } else if in_executable_comment && c == '*' && next == Some('/') {
            flush(&mut word, &mut out);
            in_executable_comment = false;
            i += 2;
            continue;
        } else if matches!(c, '\'' | '"' | '`') {
            flush(&mut word, &mut out);
            out.last_mut().expect("non-empty").push(c.to_string());
            let backslash = match c {
                '\'' => lexing.backslash_in_single,
                '"' => lexing.backslash_in_double,
                _ => false,
            };
            i += 1;
            while i < chars.len() {
                if backslash && chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
        } else if c == ';' {
            flush(&mut word, &mut out);
            out.push(Vec::new());
        } else if c == ':' {
            flush(&mut word, &mut out);
            out.last_mut().expect("non-empty").push(":".into());
        } else if c.is_alphanumeric() || matches!(c, '_' | '@' | '.' | '$') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
        }
        i += 1;
    }
    flush(&mut word, &mut out);
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict on `sql` when it means the same in every sql_mode (the server is never asked).
    fn verdict(sql: &str) -> Option<Refusal> {
        refusal(sql, || {
            panic!("{sql:?} is unambiguous: the server must not be asked")
        })
    }

    fn commits(sql: &str) -> Option<String> {
        match verdict(sql) {
            Some(Refusal::Commits(s)) => Some(s),
            Some(Refusal::Opaque(s)) => panic!("{sql:?}: refused as opaque {s:?}"),
            None => None,
        }
    }

    #[test]
    fn implicit_commit_statements_are_recognized() {
        let yes = [
            ("CREATE TABLE t (a INT)", "CREATE TABLE"),
            ("insert into t values (1); truncate t", "TRUNCATE T"),
            ("/* c */ drop table t", "DROP TABLE"),
            ("-- x\nALTER TABLE t ADD c INT", "ALTER TABLE"),
            ("COMMIT", "COMMIT"),
            ("start transaction", "START TRANSACTION"),
            ("LOCK TABLES t WRITE", "LOCK TABLES"),
            ("CREATE OR REPLACE TABLE t (a INT)", "CREATE OR"),
            ("SET autocommit = 1", "SET autocommit"),
            ("SET @a = 1, @@session.autocommit := 1", "SET autocommit"),
            ("SET PASSWORD = 'x'", "SET PASSWORD"),
            (
                "SET STATEMENT max_statement_time = 5 FOR CREATE TABLE t (a INT)",
                "CREATE TABLE",
            ),
            ("START SLAVE", "START SLAVE"),
        ];
        for (sql, found) in yes {
            assert_eq!(commits(sql).as_deref(), Some(found), "{sql}");
        }
        let no = [
            "INSERT INTO t VALUES ('CREATE TABLE x; DROP TABLE y')",
            "CREATE TEMPORARY TABLE t (a INT)",
            "CREATE OR REPLACE TEMPORARY TABLE t (a INT)",
            "DROP TEMPORARY TABLE IF EXISTS t",
            "ROLLBACK TO SAVEPOINT a",
            "SELECT 1 -- ; DROP TABLE t",
            "SELECT 1 --\t; DROP TABLE t",
            "SELECT 1 # ; DROP TABLE t",
            "SELECT 1 /* ; DROP TABLE t */",
            "SELECT 1 /*+ MAX_EXECUTION_TIME(1) */",
            "UPDATE `drop` SET v = 1",
            "UPDATE `a``; DROP TABLE t; ` SET v = 1",
            "SET @x = 'commit'; DELETE FROM t",
            "SET @autocommit = 1",
            "SET STATEMENT max_statement_time = 5 FOR SELECT 1",
            "INSERT INTO t VALUES ('it''s; DROP TABLE t')",
        ];
        for sql in no {
            assert_eq!(verdict(sql), None, "{sql}");
        }
    }

    /// mysqldump writes `/*!40000 ALTER TABLE t DISABLE KEYS */`: the server runs the body.
    #[test]
    fn executable_comment_bodies_are_read_as_sql() {
        for (sql, found) in [
            ("/*!40000 ALTER TABLE t DISABLE KEYS */", "ALTER TABLE"),
            ("/*! DROP TABLE t */", "DROP TABLE"),
            ("/*!50000CREATE TABLE t (a INT)*/", "CREATE TABLE"),
            ("/*M!100100 TRUNCATE t */", "TRUNCATE T"),
            ("INSERT INTO t VALUES (1); /*!40101 COMMIT */", "COMMIT"),
            ("SELECT 1 /*!, 2 */; /*!40000 DROP TABLE t */", "DROP TABLE"),
            ("/*!40000 SELECT 1 */; RENAME TABLE a TO b", "RENAME TABLE"),
        ] {
            assert_eq!(commits(sql).as_deref(), Some(found), "{sql}");
        }
        assert_eq!(verdict("/*!40101 SET @x = 1 */; SELECT 1"), None);
        assert_eq!(verdict("/*!40101 SET NAMES utf8mb4 */"), None);
    }

    /// MySQL starts a `--` comment only before whitespace or a control character.
    #[test]
    fn double_dash_needs_whitespace_to_start_a_comment() {
        assert_eq!(
            commits("SELECT 1--1; DROP TABLE t").as_deref(),
            Some("DROP TABLE")
        );
        assert_eq!(
            commits("SELECT 1 --x\n; TRUNCATE t").as_deref(),
            Some("TRUNCATE T")
        );
        assert_eq!(verdict("SELECT 1 -- ; DROP TABLE t"), None);
        assert_eq!(verdict("SELECT 1 --\n"), None);
        assert_eq!(verdict("SELECT 1--"), None);
    }

    /// `'a\'; DROP TABLE t; -- '` is one string by default, but under NO_BACKSLASH_ESCAPES
    /// the string ends at the backslash and the DROP runs; with ANSI_QUOTES, `"a\"` is an
    /// identifier that ends there too.
    #[test]
    fn backslashes_are_read_in_the_session_sql_mode() {
        let single = r"INSERT INTO t VALUES ('a\'); DROP TABLE t; -- ')";
        let double = r#"INSERT INTO t VALUES ("a\"); DROP TABLE t; -- ")"#;
        let cases = [
            (single, "", false),
            (single, "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", true),
            (single, "ANSI_QUOTES", false),
            (double, "STRICT_TRANS_TABLES", false),
            (double, "ANSI_QUOTES", true),
            (double, "NO_BACKSLASH_ESCAPES", true),
        ];
        for (sql, mode, refused) in cases {
            let mut asked = false;
            let found = refusal(sql, || {
                asked = true;
                Some(Lexing::from_sql_mode(mode))
            });
            assert!(asked, "{sql}: ambiguous, so the server is asked");
            assert_eq!(found.is_some(), refused, "{sql} under {mode:?}: {found:?}");
        }
        // The server cannot say: refused.
        assert!(refusal(single, || None).is_some());
        // The batch changes sql_mode itself: refused without asking.
        let sets_mode = format!("SET sql_mode = 'NO_BACKSLASH_ESCAPES'; {single}");
        assert!(refusal(&sets_mode, || panic!("must not ask")).is_some());
        // A backslash that changes nothing: not asked.
        assert_eq!(verdict(r"INSERT INTO t VALUES ('a\b'), ('c')"), None);
    }

    /// Their text does not show what they run.
    #[test]
    fn procedures_prepared_and_compound_statements_are_refused() {
        for (sql, found) in [
            ("CALL make_tables()", "CALL"),
            ("PREPARE s FROM 'CREATE TABLE t (a INT)'", "PREPARE"),
            (
                "SET @q = 'DROP TABLE t'; PREPARE s FROM @q; EXECUTE s",
                "PREPARE",
            ),
            ("EXECUTE IMMEDIATE 'DROP TABLE t'", "EXECUTE"),
            ("IF 1 THEN CREATE TABLE t (a INT); END IF", "IF"),
            ("lbl: LOOP LEAVE lbl; END LOOP", "LBL:"),
            ("WHILE 0 DO SELECT 1; END WHILE", "WHILE"),
            ("/*!50000 CALL p() */", "CALL"),
        ] {
            assert_eq!(verdict(sql), Some(Refusal::Opaque(found.into())), "{sql}");
        }
        assert_eq!(
            verdict("BEGIN NOT ATOMIC CREATE TABLE t (a INT); END"),
            Some(Refusal::Commits("BEGIN NOT".into()))
        );
        assert_eq!(verdict("SELECT 'CALL p()'; DEALLOCATE PREPARE s"), None);
    }
}
