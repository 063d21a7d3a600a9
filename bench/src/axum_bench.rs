//! The axum rows: a journey of 100 paths (each checks the stock and pays, then is rolled
//! back by PostgreSQL capture) against the axum shop (`examples/shop/axum_shop.rs`, its
//! own sqlx pool), three ways in one run:
//!
//! 1. in process: async steps, `Client::service(router)`, no socket;
//! 2. over HTTP: the same async steps, the router served on a free port of the same
//!    runtime, requests through hyper-util's client;
//! 3. over HTTP with the blocking client: blocking steps through ureq, the server on a
//!    multi-threaded runtime of its own.
//!
//! The async runs use a current-thread runtime, as `#[tokio::test]` and an async
//! `#[venom_test]` do. Each way runs `REPEATS` times, interleaved; the rows show the
//! median path time and the share of the run spent in rollbacks.

use std::path::Path;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use venomqa::journey::{Client, JourneyResult, JourneyRunner};
use venomqa::postgres::PostgresCaptureSession;
use venomqa_examples::axum_shop::{bench_journey, router};

use crate::harness::{stats, Stats};
use crate::report::{Report, Verdict};

const PATHS: usize = 100;

pub const IN_PROCESS: &str = "axum: journey path, in process (async)";
pub const HTTP_ASYNC: &str = "axum: journey path, HTTP (async client)";
pub const HTTP_SYNC: &str = "axum: journey path, HTTP (blocking client)";
pub const HEALTH_IN_PROCESS: &str = "axum: GET /health, in process";
pub const HEALTH_HTTP_ASYNC: &str = "axum: GET /health, HTTP (async client)";
pub const HEALTH_HTTP_SYNC: &str = "axum: GET /health, HTTP (blocking client)";
pub const TARGET_3X: &str = "axum: in process >= 3x the HTTP run's paths per second";
pub const TARGET_ISOLATION: &str = "axum: isolation <= 25% of a path (in process)";

/// One run's path time and rollback share.
struct Run {
    per_path: Duration,
    isolation: f64,
}

impl Run {
    fn of(result: &JourneyResult) -> Run {
        assert!(result.passed(), "the bench journey failed:\n{result}");
        Run {
            per_path: result.duration / PATHS as u32,
            isolation: result.rollback_time().as_secs_f64() / result.duration.as_secs_f64(),
        }
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Records the axum rows and targets.
pub fn run(report: &mut Report, workspace: &Path, quick: bool) {
    eprintln!("axum: {PATHS} paths against the axum shop, in process and over HTTP");
    let mut db = match PostgresCaptureSession::builder()
        .entry("axum_shop")
        .config_dir(workspace.join("examples"))
        .name("bench_axum")
        .open()
    {
        Ok(db) => db,
        Err(e) => {
            for case in [IN_PROCESS, HTTP_ASYNC, HTTP_SYNC] {
                report.skip("postgres", "axum", case, e.to_string());
            }
            return;
        }
    };
    let url = db
        .url()
        .expect("a capture session has a url")
        .expose()
        .to_owned();
    let (mut inproc, mut http, mut blocking) = (Vec::new(), Vec::new(), Vec::new());
    let repeats = if quick { 1 } else { 5 };
    // A server on a multi-threaded runtime of its own, for the blocking client.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let server_url = server_rt.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("the app's pool");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
            listener,
            router(pool),
        )));
        format!("http://{addr}")
    });
    for _ in 0..repeats {
        let rt = current_thread();
        let (a, b) = rt.block_on(async {
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .connect(&url)
                .await
                .expect("the app's pool");
            let a = JourneyRunner::new(Client::service(router(pool.clone())))
                .state_manager(&mut db)
                .run_async(&bench_journey(PATHS, false))
                .await
                .expect("the in-process run");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a port");
            let base = format!("http://{}", listener.local_addr().expect("an address"));
            let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
                listener,
                router(pool.clone()),
            )));
            let b = JourneyRunner::new(Client::new(base))
                .state_manager(&mut db)
                .run_async(&bench_journey(PATHS, false))
                .await
                .expect("the HTTP run");
            server.abort();
            pool.close().await;
            (Run::of(&a), Run::of(&b))
        });
        inproc.push(a);
        http.push(b);
        let c = JourneyRunner::new(Client::new(&server_url))
            .state_manager(&mut db)
            .run(&bench_journey(PATHS, true))
            .expect("the blocking run");
        blocking.push(Run::of(&c));
    }
    // The transports alone: a route that touches no database.
    let requests = if quick { 200 } else { 2000 };
    let time = |send: &mut dyn FnMut()| {
        (0..requests)
            .map(|_| {
                let t = std::time::Instant::now();
                send();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    let rt = current_thread();
    let (health_in, health_http) = rt.block_on(async {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy(&url)
            .expect("a lazy pool");
        let inproc = Client::service(router(pool.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let http = Client::new(format!(
            "http://{}",
            listener.local_addr().expect("an address")
        ));
        let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
            listener,
            router(pool),
        )));
        let mut a = Vec::new();
        let mut b = Vec::new();
        for _ in 0..requests {
            let t = std::time::Instant::now();
            inproc.get("/health").await.expect("in process");
            a.push(t.elapsed());
            let t = std::time::Instant::now();
            http.get("/health").await.expect("over HTTP");
            b.push(t.elapsed());
        }
        let _ = (inproc.take_exchanges(), http.take_exchanges());
        server.abort();
        (a, b)
    });
    let blocking_client = Client::new(&server_url);
    let health_sync = time(&mut || {
        blocking_client.get("/health").send().expect("over HTTP");
        let _ = blocking_client.take_exchanges();
    });
    drop(server_rt);
    let health_in = stats(health_in);
    for (case, samples) in [
        (HEALTH_IN_PROCESS, None),
        (HEALTH_HTTP_ASYNC, Some(health_http)),
        (HEALTH_HTTP_SYNC, Some(health_sync)),
    ] {
        let s = samples.map_or(health_in, stats);
        report.add(
            "postgres",
            "axum",
            case,
            s,
            format!(
                "{:.1}x the in-process request",
                s.median.as_secs_f64() / health_in.median.as_secs_f64()
            ),
        );
    }
    let row = |report: &mut Report, case: &str, runs: &[Run]| -> (Stats, f64) {
        let s = stats(runs.iter().map(|r| r.per_path).collect());
        let mut shares: Vec<f64> = runs.iter().map(|r| r.isolation).collect();
        shares.sort_by(f64::total_cmp);
        let share = shares[shares.len() / 2];
        report.add(
            "postgres",
            "axum",
            case,
            s,
            format!(
                "{:.0} paths/s; {:.0}% of the run in rollbacks",
                1.0 / s.median.as_secs_f64(),
                share * 100.0
            ),
        );
        (s, share)
    };
    let (a, share) = row(report, IN_PROCESS, &inproc);
    let (b, _) = row(report, HTTP_ASYNC, &http);
    let (c, _) = row(report, HTTP_SYNC, &blocking);
    let x = b.median.as_secs_f64() / a.median.as_secs_f64();
    let xc = c.median.as_secs_f64() / a.median.as_secs_f64();
    let detail = format!(
        "in process {x:.1}x the async HTTP run's paths per second ({xc:.1}x the blocking client's)"
    );
    report.target(
        TARGET_3X,
        if x >= 3.0 {
            Verdict::Met
        } else {
            Verdict::Missed
        },
        detail,
    );
    report.target(
        TARGET_ISOLATION,
        if share <= 0.25 {
            Verdict::Met
        } else {
            Verdict::Missed
        },
        format!(
            "{:.0}% of an in-process path is the rollback",
            share * 100.0
        ),
    );
}
