//! Worker databases (`workers` on a capture entry): on SQLite, PostgreSQL (feature
//! `postgres`) and MySQL/MariaDB (feature `mysql`), the same scenario:
//!
//! 1. two threads hold sessions at once, on two different worker databases, each set up
//!    by the entry's setup; their writes (by an "app" connection of the test's own) are
//!    rolled back, as a connection of the test's own sees afterwards;
//!    under nextest, two sessions of one process at once get two databases as well;
//! 2. two processes (this binary re-executed, with nextest's slot variable 0 and 1) use two
//!    different databases at the same time;
//!    a process killed mid-session leaves nothing the next session on its database keeps;
//! 3. a worker database is reused, not re-created, by a later process: a table made in it
//!    outside any session is still there, and the setup (which fails if run twice) did not
//!    run again;
//! 4. a changed setup file re-creates it: that table is gone, the new seed is there;
//!    another machine (`VENOMQA_MACHINE`) on the same server gets databases of its own;
//! 5. `venomqa clean <entry>` (the command, in a process of its own) drops them all.
//!
//! The oracle is a connection of the test's own to each worker database, never venomqa's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};

use venomqa::Session;

/// The role: `<dir> <entry> <hold ms>` opens one session, prints `url <worker url>` and
/// holds it that long; `<dir> <entry> threads` opens two at once on two threads (as
/// `cargo test` runs tests), each writing a row, and prints both URLs.
pub fn main() -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, entry, mode] = &args[..] else {
        eprintln!("worker role: <dir> <entry> <hold ms>|threads");
        std::process::exit(2)
    };
    let open = |dir: &str, entry: &str| {
        Session::<dyn venomqa::StateManager>::builder()
            .config_dir(dir)
            .entry(entry)
            .name("worker_child")
            .open()
    };
    let result = if mode == "threads" {
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (dir, entry, barrier) = (dir.clone(), entry.clone(), barrier.clone());
                std::thread::spawn(move || -> venomqa::Result<String> {
                    let mut db = open(&dir, &entry)?;
                    let url = db.url()?.expose().to_owned();
                    db.state_manager().execute_script(&format!(
                        "INSERT INTO items VALUES ({}, 'thread')",
                        10 + i
                    ))?;
                    barrier.wait(); // both sessions are open here
                    db.finish()?;
                    Ok(url)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("the thread ran"))
            .collect::<venomqa::Result<Vec<String>>>()
            .map(|urls| {
                for url in urls {
                    println!("url {url}");
                }
            })
    } else {
        open(dir, entry).and_then(|db| {
            println!("url {}", db.url()?.expose());
            std::thread::sleep(std::time::Duration::from_millis(mode.parse().unwrap_or(0)));
            db.finish()
        })
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("worker role: {e}");
            std::process::exit(1)
        }
    }
}

/// Runs the role with `slot` as nextest's slot (none: as under `cargo test`).
fn spawn(dir: &Path, entry: &str, slot: Option<usize>, mode: &str) -> std::process::Child {
    spawn_on(None, dir, entry, slot, mode)
}

/// [`spawn`] on the machine named `machine` (`VENOMQA_MACHINE`).
fn spawn_on(
    machine: Option<&str>,
    dir: &Path,
    entry: &str,
    slot: Option<usize>,
    mode: &str,
) -> std::process::Child {
    let mut command = Command::new(crate::support::this_binary());
    command.env(crate::support::writer::ROLE, "worker");
    if let Some(machine) = machine {
        command.env("VENOMQA_MACHINE", machine);
    }
    match slot {
        Some(slot) => command.env("NEXTEST_TEST_GLOBAL_SLOT", slot.to_string()),
        None => command.env_remove("NEXTEST_TEST_GLOBAL_SLOT"),
    };
    command
        .args([dir.to_str().unwrap(), entry, mode])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The URL a running role printed first (it prints it once its session is open).
fn first_url(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("url ")
        .unwrap_or_else(|| panic!("the worker's URL, not {line:?}"))
        .to_owned()
}

/// The worker URLs the role printed.
fn urls_of(child: std::process::Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the worker process failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("url "))
        .map(str::to_owned)
        .collect()
}

fn url_of(child: std::process::Child) -> String {
    let urls = urls_of(child);
    assert_eq!(urls.len(), 1, "{urls:?}");
    urls[0].clone()
}

/// How the test reaches a server without venomqa: run a batch, read one column.
struct Oracle {
    backend: &'static str,
    /// The entry's URL (its database is the base of the worker names).
    url: String,
    exec: fn(&str, &str) -> Result<(), String>,
    column: fn(&str, &str) -> Result<Vec<String>, String>,
}

const SETUP: &str = "CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20));\nINSERT INTO items VALUES (1, 'seed');\n";

fn scenario(oracle: &Oracle) {
    let entry = format!("workers_{}", oracle.backend);
    let dir = std::env::temp_dir().join(format!(
        "venomqa-workers-{}-{}",
        oracle.backend,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schema.sql"), SETUP).unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!(
            "backends:\n  {entry}:\n    backend: {}\n    url: {}\n    isolation: capture\n    setup: schema.sql\n    workers: 2\n",
            oracle.backend, oracle.url
        ),
    )
    .unwrap();
    let config = Session::<dyn venomqa::StateManager>::builder()
        .config_dir(&dir)
        .entry(&entry)
        .config()
        .unwrap();
    // What an earlier run left (a failed one included) goes first.
    venomqa::workers::clean(&config).unwrap();

    // 1. Two threads of one process (as `cargo test` runs tests), two databases, at once.
    let urls = urls_of(spawn(&dir, &entry, None, "threads"));
    assert_eq!(urls.len(), 2, "{urls:?}");
    assert_ne!(
        urls[0], urls[1],
        "two threads at once, two worker databases"
    );
    for url in &urls {
        assert_eq!(
            (oracle.column)(url, "SELECT v FROM items ORDER BY id").unwrap(),
            ["seed"],
            "{url}: set up, and the threads' rows rolled back"
        );
    }

    // 1b. Under nextest, two sessions of one process at once (a test running a journey on
    // two worker databases): the process's slot, and one more of its own.
    let nested = urls_of(spawn(&dir, &entry, Some(1), "threads"));
    assert_eq!(nested.len(), 2, "{nested:?}");
    assert_ne!(nested[0], nested[1]);
    assert!(
        nested.contains(&urls[0]) || nested.contains(&urls[1]),
        "slot 1's database is one of them: {nested:?} {urls:?}"
    );
    assert!(nested.iter().any(|u| u.contains("_w1_1")), "{nested:?}");

    // 2. Two processes at once, nextest's slots 0 and 1. While they hold their sessions,
    // an app connection of the test's own writes to each worker database.
    let mut children: Vec<_> = [0, 1]
        .map(|slot| spawn(&dir, &entry, Some(slot), "1500"))
        .into_iter()
        .collect();
    let mut held = Vec::new();
    for (i, child) in children.iter_mut().enumerate() {
        let url = first_url(child);
        (oracle.exec)(
            &url,
            &format!("INSERT INTO items VALUES ({}, 'app')", 20 + i),
        )
        .unwrap();
        held.push(url);
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (url0, url1) = (held[0].clone(), held[1].clone());
    assert_ne!(url0, url1, "two processes, two worker databases");
    assert!(
        urls.contains(&url0) && urls.contains(&url1),
        "the same databases as the threads': {urls:?} {url0} {url1}"
    );
    for url in &held {
        assert_eq!(
            (oracle.column)(url, "SELECT v FROM items ORDER BY id").unwrap(),
            ["seed"],
            "{url}: the app's row rolled back"
        );
    }

    // 2b. A process killed mid-session (a CI shard cancelled): the next session on its
    // worker database finds the database as the session began.
    let mut killed = spawn(&dir, &entry, Some(1), "60000");
    let url = first_url(&mut killed);
    (oracle.exec)(&url, "INSERT INTO items VALUES (30, 'killed')").unwrap();
    killed.kill().unwrap();
    let _ = killed.wait();
    assert_eq!(url_of(spawn(&dir, &entry, Some(1), "0")), url1);
    assert_eq!(
        (oracle.column)(&url1, "SELECT v FROM items ORDER BY id").unwrap(),
        ["seed"],
        "the killed session's write is gone"
    );

    // 3. Reused by a later process: made once, set up once.
    (oracle.exec)(&url0, "CREATE TABLE keepme (x INT)").unwrap();
    assert_eq!(url_of(spawn(&dir, &entry, Some(0), "0")), url0);
    assert_eq!(
        (oracle.column)(&url0, "SELECT COUNT(*) FROM keepme").unwrap(),
        ["0"]
    );
    assert_eq!(
        (oracle.column)(&url0, "SELECT v FROM items ORDER BY id").unwrap(),
        ["seed"]
    );

    // 4. A changed setup re-creates it.
    std::fs::write(
        dir.join("schema.sql"),
        format!("{SETUP}INSERT INTO items VALUES (2, 'seed2');\n"),
    )
    .unwrap();
    assert_eq!(url_of(spawn(&dir, &entry, Some(0), "0")), url0);
    assert!(
        (oracle.column)(&url0, "SELECT COUNT(*) FROM keepme").is_err(),
        "keepme went with the old database"
    );
    assert_eq!(
        (oracle.column)(&url0, "SELECT v FROM items ORDER BY id").unwrap(),
        ["seed", "seed2"]
    );

    // 4b. Another CI machine on the same server (a shard of its own), slot 0: a database of
    // its own (SQLite files are on one machine: no machine in their names).
    if oracle.backend != "sqlite" {
        let other = url_of(spawn_on(Some("shard2"), &dir, &entry, Some(0), "0"));
        assert_ne!(other, url0);
        assert!(other.contains("_shard2_w0"), "{other}");
    }

    // 5. `venomqa clean <entry>`, in a process of its own, in the config's directory.
    let listed = venomqa::workers::list(&config).unwrap();
    let machines = if oracle.backend == "sqlite" { 0 } else { 1 };
    assert_eq!(listed.len(), 3 + machines, "{listed:?}");
    let out = crate::support::cli::command()
        .args(["clean", &entry])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "dropped {} worker databases of {entry}",
            3 + machines
        )),
        "{stdout}"
    );
    assert!(venomqa::workers::list(&config).unwrap().is_empty());
    assert!(
        (oracle.column)(&url0, "SELECT v FROM items").is_err(),
        "dropped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn worker_databases_on_sqlite() {
    fn path(url: &str) -> PathBuf {
        PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url))
    }
    fn open(url: &str) -> Result<rusqlite::Connection, String> {
        let p = path(url);
        if !p.exists() {
            return Err(format!("{} does not exist", p.display()));
        }
        rusqlite::Connection::open(p).map_err(|e| e.to_string())
    }
    let base = std::env::temp_dir().join(format!("venomqa-workers-base-{}.db", std::process::id()));
    scenario(&Oracle {
        backend: "sqlite",
        url: format!("sqlite://{}", base.display()),
        exec: |url, sql| {
            let conn = open(url)?;
            conn.busy_timeout(std::time::Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
            conn.execute_batch(sql).map_err(|e| e.to_string())
        },
        column: |url, sql| {
            let conn = open(url)?;
            let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map([], |r| {
                    r.get_ref(0).map(|v| match v {
                        rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                })
                .map_err(|e| e.to_string())?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        },
    });
}

#[cfg(feature = "postgres")]
#[test]
fn worker_databases_on_postgres() {
    fn client(url: &str) -> Result<venomqa::postgres::driver::Client, String> {
        venomqa::postgres::driver::Client::connect(url, venomqa::postgres::driver::NoTls)
            .map_err(|e| e.to_string())
    }
    scenario(&Oracle {
        backend: "postgres",
        url: "postgres://postgres@127.0.0.1:5432/vq_workers_test".to_owned(),
        exec: |url, sql| client(url)?.batch_execute(sql).map_err(|e| e.to_string()),
        column: |url, sql| {
            let rows = client(url)?.simple_query(sql).map_err(|e| e.to_string())?;
            Ok(rows
                .iter()
                .filter_map(|m| match m {
                    venomqa::postgres::driver::SimpleQueryMessage::Row(r) => {
                        r.get(0).map(str::to_owned)
                    }
                    _ => None,
                })
                .collect())
        },
    });
}

#[cfg(feature = "mysql")]
#[test]
fn worker_databases_on_mysql() {
    use venomqa::mysql::driver as mysql;
    use venomqa::mysql::driver::prelude::Queryable;
    fn conn(url: &str) -> Result<mysql::Conn, String> {
        mysql::Conn::new(mysql::Opts::from_url(url).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())
    }
    scenario(&Oracle {
        backend: "mysql",
        url: "mysql://root@127.0.0.1:3306/vq_workers_test".to_owned(),
        exec: |url, sql| conn(url)?.query_drop(sql).map_err(|e| e.to_string()),
        column: |url, sql| {
            let rows: Vec<mysql::Row> = conn(url)?.query(sql).map_err(|e| e.to_string())?;
            Ok(rows
                .into_iter()
                .map(|r| match r.as_ref(0) {
                    Some(mysql::Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
                    Some(mysql::Value::Int(i)) => i.to_string(),
                    other => format!("{other:?}"),
                })
                .collect())
        },
    });
}

/// Without workers, a SQLite capture session that finds the file left by a killed session
/// refuses, naming the way out, instead of starting on what that session wrote (SQLite
/// capture keeps its checkpoints in memory: they died with the process).
#[test]
fn a_sqlite_capture_session_after_a_killed_one_refuses_and_says_why() {
    let dir = std::env::temp_dir().join(format!("venomqa-killed-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("app.db");
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(SETUP)
        .unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!(
            "backends:\n  killed:\n    backend: sqlite\n    url: sqlite://{}\n    isolation: capture\n",
            file.display()
        ),
    )
    .unwrap();
    let mut child = spawn(&dir, "killed", None, "60000");
    first_url(&mut child);
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("INSERT INTO items VALUES (2, 'left')")
        .unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let open = || {
        Session::<dyn venomqa::StateManager>::builder()
            .config_dir(&dir)
            .entry("killed")
            .open()
    };
    let e = open().unwrap_err().to_string();
    assert!(
        e.contains("ended without rolling back (the process died mid-test)")
            && e.contains("app.db.venomqa-lock"),
        "{e}"
    );
    // It keeps refusing until the file is made again and the lock file deleted.
    assert!(open().is_err());
    std::fs::remove_file(&file).unwrap();
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(SETUP)
        .unwrap();
    std::fs::remove_file(dir.join("app.db.venomqa-lock")).unwrap();
    open().unwrap().finish().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
