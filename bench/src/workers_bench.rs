//! The worker-database rows (issue 23): capture tests in parallel, a database each.
//!
//! 1. 40 capture tests, as `cargo test` runs them on 1, 2 and 4 threads: each opens a
//!    session on a SQLite capture entry with `workers: 4`, starts the shop server (its own
//!    process) on the session's URL, runs a short journey (a catalog, a customer, a cart
//!    and 2 paths) and ends. With one thread they run one at a time; with more, each
//!    thread's test has a database of its own. And 2 threads on `workers: 1`: what a
//!    capture suite did before, its tests taking turns on one database.
//! 2. A 100-path journey on 1 worker, and on 2 (two sessions of the entry, two servers,
//!    `parallel_paths(2)`).
//! 3. What making a worker database costs (once per setup change, not per run): SQLite
//!    (a file, the shop creating its own tables) and, with the `postgres` feature,
//!    PostgreSQL (`CREATE DATABASE` and the axum shop's schema as the setup).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use venomqa::journey::JourneyRunner;
use venomqa::{Session, StateManager};
use venomqa_examples::{bench_journey, ShopServer};

use crate::harness::stats;
use crate::journey::{one, shop_binary};
use crate::report::{Report, Verdict};

const TESTS: usize = 40;
const ENTRY: &str = "shop_workers";

/// Records the rows.
pub fn run(report: &mut Report, workspace: &Path, quick: bool) {
    let repeats = if quick { 1 } else { 3 };
    eprintln!("workers: {TESTS} capture tests at 1, 2 and 4 threads ({repeats} runs each), a 100-path journey at 1 and 2 workers");
    let shop = match shop_binary(workspace) {
        Ok(p) => p,
        Err(e) => {
            report.skip("sqlite", "workers", "capture tests in parallel", e);
            return;
        }
    };
    let dir = workspace.join("target/venomqa-bench/workers");
    let sqlite_entry = format!(
        "    backend: sqlite\n    url: sqlite://{}/shop.db\n",
        dir.display()
    );
    let dirs = config_dir(&dir, &sqlite_entry, 4)
        .and_then(|d| Ok((d, config_dir(&dir.join("one"), &sqlite_entry, 1)?)));
    let (sqlite, one_worker) = match dirs {
        Ok(d) => d,
        Err(e) => return report.skip("sqlite", "workers", "capture tests in parallel", e),
    };
    // 3, first: making the worker databases.
    match creation(&sqlite) {
        Ok(d) => report.add(
            "sqlite",
            "workers",
            "make a worker database (once per setup change)",
            one(d),
            "a file; the shop creates its tables",
        ),
        Err(e) => report.skip("sqlite", "workers", "make a worker database", e),
    }
    #[cfg(feature = "postgres")]
    postgres_creation(report, workspace);

    // 1. The suite: 2 threads (cargo test's default here) on `workers: 1` (what a capture
    // suite did before: its tests take turns), then on 1, 2 and 4 threads with as many
    // worker databases.
    let mut measure = |case: String, dir: &Path, threads: usize| -> Option<f64> {
        match (0..repeats)
            .map(|_| suite(&shop, dir, threads))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(runs) => {
                let s = stats(runs);
                let median = s.median_us();
                let per_test = median / TESTS as f64 / 1000.0;
                report.add(
                    "sqlite",
                    "workers",
                    case,
                    s,
                    format!("{per_test:.1} ms per test"),
                );
                Some(median)
            }
            Err(e) => {
                report.skip("sqlite", "workers", case, e);
                None
            }
        }
    };
    let turns = measure(
        format!("{TESTS} capture tests, 2 threads on 1 worker database"),
        &one_worker,
        2,
    );
    let mut medians = Vec::new();
    for workers in [1, 2, 4] {
        let case = format!("{TESTS} capture tests, {workers} worker(s), as many threads");
        medians.push((workers, measure(case, &sqlite, workers)));
    }
    let at = |w: usize| medians.iter().find(|(n, _)| *n == w).and_then(|(_, m)| *m);
    for (workers, m) in &medians {
        if let (Some(m), Some(one), Some(turns)) = (m, at(1), turns) {
            report.note(format!(
                "workers: {TESTS} capture tests at {workers} worker(s): {:.2}x 1 worker on 1 thread, {:.2}x 2 threads taking turns on 1 worker database",
                one / m,
                turns / m
            ));
        }
    }
    let speedup = at(1).zip(at(2)).map(|(one, two)| one / two);
    report.target(
        "40 capture tests at 2 workers >= 1.7x 1 worker (issue 23)",
        match speedup {
            Some(x) if x >= 1.7 => Verdict::Met,
            Some(_) => Verdict::Missed,
            None => Verdict::NotMeasured,
        },
        speedup.map_or("see the rows".to_owned(), |x| format!("{x:.2}x")),
    );

    // 2. The 100-path journey.
    for workers in [1, 2] {
        let case = format!("journey, 100 paths, {workers} worker(s)");
        let runs: Result<Vec<Duration>, String> = (0..repeats)
            .map(|_| journey(&shop, &sqlite, workers))
            .collect();
        match runs {
            Ok(runs) => report.add("sqlite", "workers", case, stats(runs), ""),
            Err(e) => report.skip("sqlite", "workers", case, e),
        }
    }
}

/// A directory with a `venomqa.yaml` whose entry `ENTRY` is `entry` (its backend and URL
/// lines) with capture and `workers` workers.
fn config_dir(dir: &Path, entry: &str, workers: usize) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!("backends:\n  {ENTRY}:\n{entry}    isolation: capture\n    workers: {workers}\n"),
    )
    .map_err(|e| e.to_string())?;
    Ok(dir.to_owned())
}

fn open(dir: &Path) -> Result<Session, String> {
    Session::<dyn StateManager>::builder()
        .config_dir(dir)
        .entry(ENTRY)
        .open()
        .map_err(|e| e.to_string())
}

/// Drops the entry's worker databases, then times opening (and so making) the first.
fn creation(dir: &Path) -> Result<Duration, String> {
    let config = Session::<dyn StateManager>::builder()
        .config_dir(dir)
        .entry(ENTRY)
        .config()
        .map_err(|e| e.to_string())?;
    venomqa::workers::clean(&config).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let db = open(dir)?;
    let took = t.elapsed();
    db.finish().map_err(|e| e.to_string())?;
    Ok(took)
}

#[cfg(feature = "postgres")]
fn postgres_creation(report: &mut Report, workspace: &Path) {
    let dir = workspace.join("target/venomqa-bench/workers-postgres");
    let schema = workspace.join("examples/shop/schema.postgres.sql");
    let made = config_dir(
        &dir,
        &format!(
            "    backend: postgres\n    url: postgres://postgres@127.0.0.1:5432/vq_bench_workers\n    setup: {}\n",
            schema.display()
        ),
        4,
    )
    .and_then(|d| creation(&d));
    match made {
        Ok(d) => report.add(
            "postgres",
            "workers",
            "make a worker database (once per setup change)",
            one(d),
            "CREATE DATABASE and the axum shop's schema",
        ),
        Err(e) => report.skip("postgres", "workers", "make a worker database", e),
    }
}

/// `TESTS` tests on `threads` threads, each taking the next test: a session, the shop
/// server on its URL, a short journey.
fn suite(shop: &Path, dir: &Path, threads: usize) -> Result<Duration, String> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    while next.fetch_add(1, Ordering::Relaxed) < TESTS {
                        let mut db = open(dir)?;
                        let url = db.url().map_err(|e| e.to_string())?;
                        let server = ShopServer::start(&shop.to_string_lossy(), url.expose());
                        let result = JourneyRunner::new(server.client())
                            .state_manager(&mut db)
                            .run(&bench_journey(2))
                            .map_err(|e| e.to_string())?;
                        if !result.passed() {
                            return Err(format!("the journey failed:\n{result}"));
                        }
                        drop(server);
                        db.finish().map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a test thread panicked".to_owned())?)
    })?;
    Ok(started.elapsed())
}

/// The 100-path journey on `workers` sessions of the entry, a server each.
fn journey(shop: &Path, dir: &Path, workers: usize) -> Result<Duration, String> {
    let mut dbs = (0..workers)
        .map(|_| open(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let servers = dbs
        .iter()
        .map(|db| {
            db.url()
                .map(|u| ShopServer::start(&shop.to_string_lossy(), u.expose()))
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let (first, rest) = dbs.split_first_mut().expect("one worker at least");
    let mut runner = JourneyRunner::new(servers[0].client()).state_manager(first);
    for (db, server) in rest.iter_mut().zip(&servers[1..]) {
        runner = runner.worker(server.client(), db);
    }
    let result = runner
        .parallel_paths(workers)
        .run(&bench_journey(100))
        .map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if !result.passed() {
        return Err(format!("the journey failed:\n{result}"));
    }
    drop(servers);
    for db in dbs {
        db.finish().map_err(|e| e.to_string())?;
    }
    Ok(took)
}
