//! Round trips per empty test, counted (not estimated from time): every connection goes
//! through a small TCP proxy that counts the times the client speaks after the server.
//! venomqa's empty test (as `#[venom_test]` runs it, on a pooled connection) against a
//! hand-written transaction (`START TRANSACTION` / `BEGIN`, then `ROLLBACK`), and the time
//! of each on the server directly, in the same run.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use venomqa::{BackendConfig, Session};

use crate::harness::measure_op;
use crate::report::{Report, Verdict};

use crate::targets::{MYSQL_RT, POSTGRES_RT};

/// A proxy on a free port in front of `upstream`, counting round trips.
struct Counter {
    port: u16,
    round_trips: Arc<AtomicUsize>,
}

impl Counter {
    fn new(upstream: u16) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let round_trips = Arc::new(AtomicUsize::new(0));
        let counted = round_trips.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                // Who spoke last on this connection: 0 nobody, 1 client, 2 server.
                let last = Arc::new(AtomicUsize::new(0));
                for (from, to, side) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap(), 1),
                    (server, client, 2),
                ] {
                    let (last, counted) = (last.clone(), counted.clone());
                    thread::spawn(move || pump(from, to, side, &last, &counted));
                }
            }
        });
        Ok(Counter { port, round_trips })
    }

    fn count(&self) -> usize {
        self.round_trips.load(Ordering::SeqCst)
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    side: usize,
    last: &AtomicUsize,
    counted: &AtomicUsize,
) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if last.swap(side, Ordering::SeqCst) != side && side == 1 {
            counted.fetch_add(1, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// `scheme://user@host:port/db?q` -> (the port, the URL with `port` in its place).
fn through(url: &str, port: u16, default_port: u16) -> (u16, String) {
    let after = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[after..];
    let host_start = after + rest.rfind('@').map_or(0, |i| i + 1);
    let host_end = url[host_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| host_start + i);
    let server = &url[host_start..host_end];
    let upstream = server
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(default_port);
    (
        upstream,
        format!("{}127.0.0.1:{port}{}", &url[..host_start], &url[host_end..]),
    )
}

/// Round trips per empty test for `config` through a counting proxy (1 warm-up test to
/// connect, then `n` counted).
fn venomqa_round_trips(config: &BackendConfig, counter: &Counter, n: usize) -> Result<f64, String> {
    let run = || {
        std::panic::catch_unwind(|| {
            <Session>::builder()
                .with_config(config.clone())
                .name("venomqa_bench::round_trips")
                .run(|_db: &mut Session| {})
        })
        .map_err(|_| "an empty test failed".to_owned())
    };
    run()?;
    let before = counter.count();
    for _ in 0..n {
        run()?;
    }
    Ok((counter.count() - before) as f64 / n as f64)
}

/// One backend's rows.
struct Case {
    backend: &'static str,
    label: &'static str,
    url: &'static str,
    default_port: u16,
    /// `(option, value)` pairs of the venomqa entry.
    options: &'static [(&'static str, &'static str)],
    /// A query string the proxied URL needs (MySQL: stay on TCP).
    query: &'static str,
}

pub fn run(report: &mut Report, quick: bool) {
    let n = if quick { 20 } else { 100 };
    let mut cases = Vec::new();
    #[cfg(feature = "mysql")]
    {
        let url = crate::url("mysql", "mysql://root@127.0.0.1:3306/test");
        cases.push(Case {
            backend: "mysql",
            label: "venomqa, session_reset: each_test (default)",
            url,
            default_port: 3306,
            options: &[],
            query: "prefer_socket=false",
        });
        cases.push(Case {
            backend: "mysql",
            label: "venomqa, session_reset: never",
            url,
            default_port: 3306,
            options: &[("session_reset", "never")],
            query: "prefer_socket=false",
        });
    }
    #[cfg(feature = "postgres")]
    cases.push(Case {
        backend: "postgres",
        label: "venomqa",
        url: crate::url("postgres", "postgres://postgres@127.0.0.1:5432/test"),
        default_port: 5432,
        options: &[],
        query: "",
    });

    let mut counted: Vec<(&str, &str, f64)> = Vec::new();
    for case in &cases {
        let (upstream, _) = through(case.url, 0, case.default_port);
        let counter = match Counter::new(upstream) {
            Ok(c) => c,
            Err(e) => {
                report.note(format!("round trips: no proxy ({e})"));
                return;
            }
        };
        let (_, mut url) = through(case.url, counter.port, case.default_port);
        if !case.query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(case.query);
        }
        let mut config = BackendConfig::new(case.backend).with_url(url.as_str());
        config.pool_size = Some(1);
        for (k, v) in case.options {
            config = config.with_option(k, *v);
        }
        match venomqa_round_trips(&config, &counter, n) {
            Ok(rt) => {
                println!(
                    "{}: {}: {rt:.2} round trips per empty test",
                    case.backend, case.label
                );
                counted.push((case.backend, case.label, rt));
                report.note(format!(
                    "{}: {}: {rt:.2} round trips per empty test (counted by a proxy over {n} tests)",
                    case.backend, case.label
                ));
            }
            Err(e) => report.note(format!(
                "{}: {}: round trips not counted: {e}",
                case.backend, case.label
            )),
        }
    }

    // The hand-written transaction, counted and timed, and venomqa timed, on the server
    // directly (no proxy), alternating so drift of the machine hits both alike.
    for (backend, default_port) in [("mysql", 3306u16), ("postgres", 5432)] {
        let Some(case) = cases.iter().find(|c| c.backend == backend) else {
            continue;
        };
        let hand = hand_written(backend, case.url, default_port, n, quick);
        let hand_rt = match &hand {
            Ok((rt, _)) => Some(*rt),
            Err(e) => {
                report.note(format!(
                    "{backend}: hand-written transaction not measured: {e}"
                ));
                None
            }
        };
        if let Ok((rt, stats)) = hand {
            report.add(
                backend,
                "per test",
                "hand-written transaction (BEGIN; ROLLBACK), empty",
                stats,
                format!("{rt:.0} round trips (counted)"),
            );
        }
        // venomqa's empty test with the fastest configuration, timed.
        let mut config = BackendConfig::new(backend).with_url(case.url);
        if backend == "mysql" {
            config = config.with_option("session_reset", "never");
            let timed = measure_op(quick, || -> Result<(), String> {
                <Session>::builder()
                    .with_config(config.clone())
                    .run(|_db: &mut Session| {});
                Ok(())
            });
            if let Ok(stats) = timed {
                report.add(
                    backend,
                    "per test",
                    "venomqa empty test, session_reset: never",
                    stats,
                    "",
                );
            }
        }
        let best = counted
            .iter()
            .filter(|c| c.0 == backend)
            .map(|c| c.2)
            .fold(f64::INFINITY, f64::min);
        let default = counted.iter().find(|c| c.0 == backend).map(|c| c.2);
        let name = if backend == "mysql" {
            MYSQL_RT
        } else {
            POSTGRES_RT
        };
        match default {
            Some(default) => {
                let detail = format!(
                    "default {default:.2}, fastest configuration {best:.2}; hand-written transaction {}",
                    hand_rt.map_or("?".into(), |r| format!("{r:.0}"))
                );
                let verdict = if default <= 2.3 {
                    Verdict::Met
                } else {
                    Verdict::Missed
                };
                let detail = if verdict == Verdict::Missed && best <= 2.3 {
                    format!("{detail}: met only with session_reset: never (the default resets the session before each test, a round trip that cannot be shared)")
                } else {
                    detail
                };
                report.target(name, verdict, detail);
            }
            None => report.target(name, Verdict::NotMeasured, "not counted"),
        }
    }
}

/// A hand-written transaction per test on one connection: round trips counted through a
/// proxy, and the time of one (empty) test on the server directly.
fn hand_written(
    backend: &str,
    url: &str,
    default_port: u16,
    n: usize,
    quick: bool,
) -> Result<(f64, crate::harness::Stats), String> {
    let (upstream, _) = through(url, 0, default_port);
    let counter = Counter::new(upstream).map_err(|e| e.to_string())?;
    let (_, mut proxied) = through(url, counter.port, default_port);
    let (begin, end) = match backend {
        "mysql" => ("START TRANSACTION", "ROLLBACK"),
        _ => ("BEGIN", "ROLLBACK"),
    };
    let connect = |url: &str| -> Result<Box<dyn crate::sql::RawSql>, String> {
        match backend {
            #[cfg(feature = "mysql")]
            "mysql" => crate::sql::connect_mysql(url),
            #[cfg(feature = "postgres")]
            "postgres" => crate::sql::connect_postgres(url),
            other => Err(format!("{other}: not built")),
        }
    };
    if backend == "mysql" {
        proxied.push(if proxied.contains('?') { '&' } else { '?' });
        proxied.push_str("prefer_socket=false");
    }
    let mut raw = connect(&proxied)?;
    raw.batch(begin)?;
    raw.batch(end)?;
    let before = counter.count();
    for _ in 0..n {
        raw.batch(begin)?;
        raw.batch(end)?;
    }
    let rt = (counter.count() - before) as f64 / n as f64;
    drop(raw);
    let mut direct = connect(url)?;
    let stats = measure_op(quick, || -> Result<(), String> {
        direct.batch(begin)?;
        direct.batch(end)
    })?;
    Ok((rt, stats))
}
