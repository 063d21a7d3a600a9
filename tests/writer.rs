//! `venomqa-writer`: the "other process" of the capture tests. It writes to a database on
//! a connection of its own, as an app server would, and exits non-zero on any error.
//!
//! ```text
//! venomqa-writer sqlite <file> <sql>              run a batch of SQL
//! venomqa-writer sqlite <file> <sql> --hold <ms>  run it inside a transaction held open for <ms>
//! venomqa-writer mysql <url> <sql> [--hold <ms>]    the same on MySQL / MariaDB (feature mysql)
//! venomqa-writer postgres <url> <sql> [--hold <ms>] the same on PostgreSQL (feature postgres)
//! ```
//!
//! Integration tests find it through `env!("CARGO_BIN_EXE_venomqa-writer")`.

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hold = args
        .iter()
        .position(|a| a == "--hold")
        .and_then(|i| args.get(i + 1))
        .map(|ms| Duration::from_millis(ms.parse().expect("--hold takes milliseconds")));
    let result = match args.first().map(String::as_str) {
        Some("sqlite") => sqlite(&args[1], &args[2], hold),
        #[cfg(feature = "mysql")]
        Some("mysql") => mysql(&args[1], &args[2], hold),
        #[cfg(feature = "postgres")]
        Some("postgres") => postgres(&args[1], &args[2], hold),
        _ => Err(format!(
            "usage: venomqa-writer sqlite|mysql|postgres <url> <sql> [--hold <ms>]; got {args:?}"
        )),
    };
    if let Err(e) = result {
        eprintln!("venomqa-writer: {e}");
        std::process::exit(1);
    }
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
