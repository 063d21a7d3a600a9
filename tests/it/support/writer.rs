//! `venomqa-writer`: the "other process" of the capture tests. It writes to a database on
//! a connection of its own, as an app server would, and exits non-zero on any error.
//!
//! ```text
//! venomqa-writer sqlite <file> <sql>              run a batch of SQL
//! venomqa-writer sqlite <file> <sql> --hold <ms>  run it inside a transaction held open for <ms>
//! venomqa-writer mysql <url> <sql> [--hold <ms>]    the same on MySQL / MariaDB (feature mysql)
//! venomqa-writer postgres <url> <sql> [--hold <ms>] the same on PostgreSQL (feature postgres)
//! venomqa-writer redis <url> <commands> [--loop <ms>]  one command a line, in the URL's
//!                                                   database (feature redis)
//! venomqa-writer mongodb <url> <database> <json> [--loop <ms>]
//!                                                   run a JSON array of database commands
//!                                                   (extended JSON: {"$numberLong": "5"}, ...)
//!                                                   in <database> (feature mongodb)
//! ```
//!
//! `--loop <ms>` repeats the writes until that much time has passed (printing "writing"
//! after the first round): a writer that keeps writing. Redis command lines split on
//! spaces; `"..."` quotes a word, with `\"`, `\\`, `\n` and `\xHH` inside.
//!
//! It is this test binary itself, re-executed with `VENOMQA_TEST_ROLE=writer`: a hook in
//! `main.rs` runs [`main`] before the test harness starts. So the child always has the
//! features of the tests that spawn it (a separate binary could be stale: cargo does not
//! rebuild a binary target that another feature set built last).

use std::process::Command;
use std::time::Duration;

/// The environment variable that makes the test binary act as the writer.
pub const ROLE: &str = "VENOMQA_TEST_ROLE";

/// A command that runs the writer: this test binary, re-executed in the writer's role.
/// Add the writer's arguments (`sqlite <file> <sql>`, ...) and run it.
pub fn command() -> Command {
    let mut command = Command::new(crate::support::this_binary());
    command.env(ROLE, "writer");
    command
}

/// The writer's `main`: its arguments are the process's, after the binary's name. Exits
/// the process (non-zero on any error).
pub fn main() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hold = args
        .iter()
        .position(|a| a == "--hold")
        .and_then(|i| args.get(i + 1))
        .map(|ms| Duration::from_millis(ms.parse().expect("--hold takes milliseconds")));
    #[cfg_attr(
        not(any(feature = "redis", feature = "mongodb")),
        allow(unused_variables)
    )]
    let repeat = args
        .iter()
        .position(|a| a == "--loop")
        .and_then(|i| args.get(i + 1))
        .map(|ms| Duration::from_millis(ms.parse().expect("--loop takes milliseconds")));
    let result = match args.first().map(String::as_str) {
        Some("sqlite") => sqlite(&args[1], &args[2], hold),
        #[cfg(feature = "mysql")]
        Some("mysql") => mysql(&args[1], &args[2], hold),
        #[cfg(feature = "postgres")]
        Some("postgres") => postgres(&args[1], &args[2], hold),
        #[cfg(feature = "redis")]
        Some("redis") => redis(&args[1], &args[2], repeat),
        #[cfg(feature = "mongodb")]
        Some("mongodb") => mongodb(&args[1], &args[2], &args[3], repeat),
        _ => Err(format!(
            "usage: venomqa-writer sqlite|mysql|postgres <url> <sql> [--hold <ms>], redis <url> <commands> [--loop <ms>], mongodb <url> <database> <json> [--loop <ms>]; got {args:?}"
        )),
    };
    if let Err(e) = result {
        eprintln!("venomqa-writer: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

fn sqlite(path: &str, sql: &str, hold: Option<Duration>) -> Result<(), String> {
    let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    match hold {
        None => conn.execute_batch(sql).map_err(|e| e.to_string()),
        Some(hold) => {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {sql}"))
                .map_err(|e| e.to_string())?;
            println!("holding");
            std::thread::sleep(hold);
            conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        }
    }
}

#[cfg(feature = "mysql")]
fn mysql(url: &str, sql: &str, hold: Option<Duration>) -> Result<(), String> {
    use venomqa::mysql::driver::prelude::Queryable;
    use venomqa::mysql::driver::{Conn, Opts};
    let mut conn =
        Conn::new(Opts::from_url(url).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let run = |conn: &mut Conn, sql: &str| -> Result<(), String> {
        let mut result = conn.query_iter(sql).map_err(|e| e.to_string())?;
        while let Some(set) = result.iter() {
            for row in set {
                row.map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    };
    match hold {
        None => run(&mut conn, sql),
        Some(hold) => {
            run(&mut conn, &format!("START TRANSACTION; {sql}"))?;
            println!("holding");
            std::thread::sleep(hold);
            run(&mut conn, "COMMIT")
        }
    }
}

/// Statements run one by one (a batch of the simple query protocol is one transaction).
#[cfg(feature = "postgres")]
fn postgres(url: &str, sql: &str, hold: Option<Duration>) -> Result<(), String> {
    use venomqa::postgres::driver::{Client, NoTls};
    let mut client = Client::connect(url, NoTls).map_err(|e| format!("{e:?}"))?;
    let statements: Vec<&str> = sql
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if hold.is_some() {
        client
            .batch_execute("BEGIN")
            .map_err(|e| format!("{e:?}"))?;
    }
    for statement in statements {
        client
            .batch_execute(statement)
            .map_err(|e| format!("{statement}: {e:?}"))?;
    }
    if let Some(hold) = hold {
        println!("holding");
        std::thread::sleep(hold);
        client
            .batch_execute("COMMIT")
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}
/// Runs `round` once, or again and again until `repeat` has passed (printing "writing"
/// after the first round).
#[cfg(any(feature = "redis", feature = "mongodb"))]
fn rounds(
    repeat: Option<Duration>,
    mut round: impl FnMut() -> Result<(), String>,
) -> Result<(), String> {
    let started = std::time::Instant::now();
    round()?;
    if let Some(repeat) = repeat {
        println!("writing");
        while started.elapsed() < repeat {
            round()?;
        }
    }
    Ok(())
}

/// The words of a Redis command line: split on spaces; `"..."` quotes a word, with `\"`,
/// `\\`, `\n` and `\xHH` inside.
#[cfg(feature = "redis")]
fn words(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut chars = line.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = Vec::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(format!("unterminated quote in {line:?}")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => word.push(b'\n'),
                        Some('x') => {
                            let hex: String = chars.by_ref().take(2).collect();
                            word.push(
                                u8::from_str_radix(&hex, 16)
                                    .map_err(|_| format!("bad \\x{hex} in {line:?}"))?,
                            );
                        }
                        Some(c) => word.extend(c.to_string().bytes()),
                        None => return Err(format!("a lone backslash in {line:?}")),
                    },
                    Some(c) => word.extend(c.to_string().bytes()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.extend(c.to_string().bytes());
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

#[cfg(feature = "redis")]
fn redis(url: &str, commands: &str, repeat: Option<Duration>) -> Result<(), String> {
    use venomqa::redis::redis;
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut conn = client.get_connection().map_err(|e| e.to_string())?;
    let lines: Vec<Vec<Vec<u8>>> = commands
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(words)
        .collect::<Result<_, _>>()?;
    rounds(repeat, || {
        for line in &lines {
            let mut cmd = redis::cmd(&String::from_utf8_lossy(&line[0]));
            for arg in &line[1..] {
                cmd.arg(arg.as_slice());
            }
            cmd.query::<redis::Value>(&mut conn)
                .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&line.join(&b' '))))?;
        }
        Ok(())
    })
}

#[cfg(feature = "mongodb")]
fn mongodb(url: &str, database: &str, json: &str, repeat: Option<Duration>) -> Result<(), String> {
    use venomqa::mongodb::bson::Document;
    use venomqa::mongodb::driver::sync::Client;
    // Deserialized in order (the command's name first), extended JSON kept exact.
    let commands: Vec<Document> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let client = Client::with_uri_str(url).map_err(|e| e.to_string())?;
    let db = client.database(database);
    rounds(repeat, || {
        for command in &commands {
            let reply = db
                .run_command(command.clone())
                .run()
                .map_err(|e| format!("{command}: {e}"))?;
            // Write errors come back in the reply, not as an error.
            if let Ok(errors) = reply.get_array("writeErrors") {
                return Err(format!("{command}: {errors:?}"));
            }
        }
        Ok(())
    })
}
