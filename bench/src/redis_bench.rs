//! Redis: PING (the floor), venomqa's per-test cost, `FLUSHDB` after each test, the
//! reference document's per-key method (KEYS + GET + TTL per key; DEL + SET/SETEX), and
//! checkpoint + rollback as the key count and the changed share grow.
//!
//! Everything runs in databases leased by venomqa's Redis backend (one for the pool that
//! `run_test` uses, one for a manager of our own whose connection also runs the raw
//! baselines), so tests of the backend running at the same time never collide with us.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use redis::{Commands, Connection};
use venomqa::redis::{Redis, RedisSession, RedisStateManager};
use venomqa::{StateManager, ROOT_CHECKPOINT};

use crate::harness::{fmt_us, interleaved, measure, measure_op, Budget, Stats};
use crate::report::{Chart, Report, Verdict};
use crate::sql::{describe_growth, first_line};
use crate::targets::{REDIS_20X, REDIS_60MS};

const NAME: &str = "redis";
const PREFIX: &str = "vq_bench:";

pub const FLOOR: &str = "round trip on the test's connection (PING)";
pub const RAW_FLOOR: &str = "round trip, separate connection (PING)";

type R<T> = Result<T, String>;

fn e(err: redis::RedisError) -> String {
    err.to_string()
}

/// `n` keys of mixed types (string, hash, list, set, sorted set); every 10th has a TTL.
fn fill_mixed(conn: &mut Connection, n: usize, prefix: &str) -> R<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        for &i in chunk {
            let k = format!("{prefix}k{i}");
            match i % 5 {
                0 => p.cmd("SET").arg(&k).arg(format!("value {i}")).ignore(),
                1 => p
                    .cmd("HSET")
                    .arg(&k)
                    .arg("name")
                    .arg("ann")
                    .arg("n")
                    .arg(i)
                    .ignore(),
                2 => p.cmd("RPUSH").arg(&k).arg("a").arg("b").arg(i).ignore(),
                3 => p.cmd("SADD").arg(&k).arg("a").arg("b").arg(i).ignore(),
                _ => p.cmd("ZADD").arg(&k).arg(1).arg("a").arg(2).arg(i).ignore(),
            };
            if i % 10 == 0 {
                p.cmd("PEXPIRE").arg(&k).arg(3_600_000).ignore();
            }
        }
        p.query::<()>(conn).map_err(e)?;
    }
    Ok(())
}

/// `n` string keys (the only type the reference method handles); every 10th has a TTL.
fn fill_strings(conn: &mut Connection, n: usize, prefix: &str) -> R<()> {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut p = redis::pipe();
        for &i in chunk {
            let k = format!("{prefix}k{i}");
            if i % 10 == 0 {
                p.cmd("SET")
                    .arg(&k)
                    .arg(format!("value {i}"))
                    .arg("EX")
                    .arg(3600)
                    .ignore();
            } else {
                p.cmd("SET").arg(&k).arg(format!("value {i}")).ignore();
            }
        }
        p.query::<()>(conn).map_err(e)?;
    }
    Ok(())
}

/// Overwrites `k` keys (whatever their type) in one pipeline: the test's changes.
fn change(conn: &mut Connection, k: usize, prefix: &str) -> R<()> {
    let mut p = redis::pipe();
    for i in 0..k {
        p.cmd("SET")
            .arg(format!("{prefix}k{i}"))
            .arg("changed")
            .ignore();
    }
    p.query::<()>(conn).map_err(e)
}

/// The reference document's checkpoint: KEYS, then GET and TTL per key.
fn reference_snapshot(conn: &mut Connection) -> R<HashMap<String, (Option<String>, i64)>> {
    let keys: Vec<String> = conn.keys(format!("{PREFIX}*")).map_err(e)?;
    let mut snapshot = HashMap::with_capacity(keys.len());
    for k in keys {
        let value: Option<String> = conn.get(&k).map_err(e)?;
        let ttl: i64 = conn.ttl(&k).map_err(e)?;
        snapshot.insert(k, (value, ttl));
    }
    Ok(snapshot)
}

/// The reference document's rollback: KEYS + DEL, then SET or SETEX per key.
fn reference_restore(
    conn: &mut Connection,
    snapshot: &HashMap<String, (Option<String>, i64)>,
) -> R<()> {
    let keys: Vec<String> = conn.keys(format!("{PREFIX}*")).map_err(e)?;
    if !keys.is_empty() {
        conn.del::<_, ()>(&keys).map_err(e)?;
    }
    for (k, (value, ttl)) in snapshot {
        let Some(value) = value else { continue };
        if *ttl > 0 {
            conn.set_ex::<_, _, ()>(k, value, *ttl as u64).map_err(e)?;
        } else {
            conn.set::<_, _, ()>(k, value).map_err(e)?;
        }
    }
    Ok(())
}

pub fn run(report: &mut Report, url: &'static str, quick: bool) {
    let ping = redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
    if let Err(err) = ping {
        report.note(format!(
            "redis: skipped, the server is not running or refuses connections ({err})"
        ));
        return;
    }
    let backend = match Redis::from_url(url) {
        Ok(b) => b.lease_wait(Duration::from_secs(20)),
        Err(err) => {
            report.note(format!("redis: skipped, {}", first_line(&err.to_string())));
            return;
        }
    };
    let mut m = RedisStateManager::new(backend);
    if let Err(err) = m.connect() {
        report.note(format!(
            "redis: skipped, venomqa could not lease a database: {}",
            first_line(&err.to_string())
        ));
        return;
    }
    println!("redis: measuring (in leased database {})", m.database());
    let result = (|| -> R<()> {
        redis::cmd("FLUSHDB").query::<()>(m.conn()).map_err(e)?;
        measured(report, url, &mut m, quick)
    })();
    if let Err(err) = result {
        report.note(format!("redis: stopped early: {err}"));
    }
    let _ = m.disconnect();
    for proof in ["count", "digest"] {
        if let Err(err) = capture(report, url, quick, proof) {
            report.note(format!("redis capture: stopped early: {err}"));
        }
    }
}

/// The database capture measures in (`VENOMQA_BENCH_REDIS_CAPTURE_DB`, default 13): the
/// app's database, which capture pins while it works.
fn capture_db() -> i64 {
    std::env::var("VENOMQA_BENCH_REDIS_CAPTURE_DB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(13)
}

/// Capture isolation with `capture_proof: <proof>`: what a checkpoint (COPY of every key
/// into a leased spare), a rollback that keeps the checkpoint (verify the spare, SWAPDB,
/// copy back) and the end of a checkpoint (verify, SWAPDB, empty the spare) cost, as the key
/// count and the number of keys an app changed grow. The app's changes come from a
/// connection of its own.
fn capture(report: &mut Report, url: &'static str, quick: bool, proof: &str) -> R<()> {
    let section = if proof == "digest" {
        "capture, digest proof"
    } else {
        "capture"
    };
    let db = capture_db();
    let app_url = format!("{}/{db}", url.trim_end_matches('/'));
    let config = venomqa::BackendConfig::new(NAME)
        .with_url(&app_url)
        .with_option("isolation", "capture")
        .with_option("capture_proof", proof);
    let mut m = RedisStateManager::from_config(&config).map_err(|x| x.to_string())?;
    m.connect().map_err(|x| x.to_string())?;
    println!("redis: measuring capture (the app's database {db}, {proof} proof)");
    let mut app = redis::Client::open(app_url.as_str())
        .and_then(|c| c.get_connection())
        .map_err(e)?;
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 100_000]
    };
    for &n in sizes {
        redis::cmd("FLUSHDB").query::<()>(&mut app).map_err(e)?;
        fill_mixed(&mut app, n, "")?;
        m.checkpoint(ROOT_CHECKPOINT).map_err(|x| x.to_string())?;
        for k in [1usize, 10, 1_000] {
            let budget = |probe| Budget::for_probe(probe, quick);
            // A nested checkpoint alone (the first one also takes the turn lock).
            let t = Instant::now();
            m.checkpoint("c").map_err(|x| x.to_string())?;
            let probe = t.elapsed();
            m.discard("c").map_err(|x| x.to_string())?;
            let checkpoint = measure(budget(probe), || -> R<Duration> {
                let t = Instant::now();
                m.checkpoint("c").map_err(|x| x.to_string())?;
                let d = t.elapsed();
                m.discard("c").map_err(|x| x.to_string())?;
                Ok(d)
            })?;
            m.checkpoint("c").map_err(|x| x.to_string())?;
            let rollback = measure(budget(probe), || -> R<Duration> {
                change(&mut app, k, "")?;
                let t = Instant::now();
                m.rollback("c").map_err(|x| x.to_string())?;
                Ok(t.elapsed())
            })?;
            m.discard("c").map_err(|x| x.to_string())?;
            let end = measure(budget(probe), || -> R<Duration> {
                m.checkpoint("c").map_err(|x| x.to_string())?;
                change(&mut app, k, "")?;
                let t = Instant::now();
                m.discard("c").map_err(|x| x.to_string())?;
                Ok(t.elapsed())
            })?;
            let label = |what: &str| format!("{n} mixed keys, {k} changed by the app: {what}");
            report.add(
                NAME,
                section,
                label("checkpoint"),
                checkpoint,
                "COPY every key into a spare database",
            );
            report.add(
                NAME,
                section,
                label("rollback"),
                rollback,
                "verify the spare, SWAPDB, copy back",
            );
            report.add(
                NAME,
                section,
                label("end of checkpoint"),
                end,
                "verify the spare, SWAPDB, empty it",
            );
        }
        m.discard(ROOT_CHECKPOINT).map_err(|x| x.to_string())?;
    }
    redis::cmd("FLUSHDB").query::<()>(&mut app).map_err(e)?;
    m.disconnect().map_err(|x| x.to_string())
}

fn measured(
    report: &mut Report,
    url: &'static str,
    m: &mut RedisStateManager,
    quick: bool,
) -> R<()> {
    let section = "per test";
    let raw = m.conn();
    let raw_floor = measure_op(quick, || {
        redis::cmd("PING").query::<String>(raw).map(drop).map_err(e)
    })?;
    report.add(NAME, section, RAW_FLOOR, raw_floor, "");

    // venomqa, as #[venom_test(backend = "redis")] runs a test; the floor is a PING on the
    // test's own connection, sampled alternately with the empty test.
    let spec = || {
        RedisSession::builder()
            .backend(NAME)
            .url(url)
            .name("venomqa_bench::redis_per_test")
    };
    let per_test = std::panic::catch_unwind(|| {
        let (empty, floor) = interleaved(
            quick,
            || -> R<Duration> {
                let t = Instant::now();
                spec().run(|_db: &mut RedisSession| {});
                Ok(t.elapsed())
            },
            || {
                let mut d = Duration::ZERO;
                spec().run(|db: &mut RedisSession| {
                    let t = Instant::now();
                    redis::cmd("PING").query::<String>(db.conn()).expect("PING");
                    d = t.elapsed();
                });
                Ok(d)
            },
        )?;
        let write = measure_op(quick, || -> R<()> {
            spec().run(|db: &mut RedisSession| {
                let key = db.key("user:1");
                db.conn().set::<_, _, ()>(key, "ann").expect("SET");
            });
            Ok(())
        })?;
        R::Ok((floor, empty, write))
    });
    let floor = report
        .per_test(NAME, section, FLOOR, "venomqa test, writes 1 key", per_test)
        .unwrap_or(raw_floor);
    let write_us = report.median_us(NAME, "venomqa test, writes 1 key");

    // Baseline: FLUSHDB after each test (database of its own, nothing to keep).
    let flush = measure_op(quick, || -> R<()> {
        raw.set::<_, _, ()>(format!("{PREFIX}user:1"), "ann")
            .map_err(e)?;
        redis::cmd("FLUSHDB").query::<()>(raw).map_err(e)
    })?;
    let note = write_us.map_or(String::new(), |w| {
        format!("{:.1}x the venomqa test", flush.median_us() / w)
    });
    report.add(NAME, "baseline", "1 key + FLUSHDB", flush, note);

    crate::harness::breakdown(report, NAME, m, Some(floor.median_us()), quick);
    scaling(report, m, quick)
}

/// Checkpoint + rollback with venomqa's manager on its leased database.
fn venomqa_cycle(m: &mut RedisStateManager, changed: usize, quick: bool) -> R<Stats> {
    let prefix = m.prefix().to_owned();
    let mut one = || -> R<Duration> {
        let t = Instant::now();
        m.checkpoint(ROOT_CHECKPOINT).map_err(|x| x.to_string())?;
        let cp = t.elapsed();
        change(m.conn(), changed, &prefix)?;
        let t = Instant::now();
        m.discard(ROOT_CHECKPOINT).map_err(|x| x.to_string())?;
        Ok(cp + t.elapsed())
    };
    let t = Instant::now();
    one()?;
    measure(
        Budget::for_probe(t.elapsed().max(Duration::from_micros(600)), quick),
        one,
    )
}

fn scaling(report: &mut Report, m: &mut RedisStateManager, quick: bool) -> R<()> {
    let section = "scaling";
    let flush = |m: &mut RedisStateManager| redis::cmd("FLUSHDB").query::<()>(m.conn()).map_err(e);
    let sizes: &[usize] = if quick {
        &[100, 1_000, 10_000]
    } else {
        &[100, 1_000, 10_000, 100_000]
    };
    let mut size_points = Vec::new();
    for &n in sizes {
        flush(m)?;
        let prefix = m.prefix().to_owned();
        fill_mixed(m.conn(), n, &prefix)?;
        let s = venomqa_cycle(m, 1, quick)?;
        size_points.push((n as f64, s.median_us()));
        report.add(
            NAME,
            section,
            format!("{n} mixed keys, 1 changed"),
            s,
            "venomqa checkpoint + rollback",
        );
    }
    let mut share_points = Vec::new();
    flush(m)?;
    let prefix = m.prefix().to_owned();
    fill_mixed(m.conn(), 10_000, &prefix)?;
    for changed in [100usize, 1_000, 10_000] {
        let pct = changed as f64 / 100.0;
        let s = venomqa_cycle(m, changed, quick)?;
        share_points.push((pct, s.median_us()));
        report.add(
            NAME,
            section,
            format!("10000 mixed keys, {pct}% changed"),
            s,
            "venomqa checkpoint + rollback",
        );
    }
    // The same string keys for venomqa and the per-key method.
    flush(m)?;
    fill_strings(m.conn(), 10_000, &prefix)?;
    let vq_strings = venomqa_cycle(m, 1, quick)?;
    report.add(
        NAME,
        section,
        "10000 string keys, 1 changed",
        vq_strings,
        "venomqa checkpoint + rollback",
    );
    flush(m)?;
    let raw = m.conn();

    let mut ref_points = Vec::new();
    let ref_sizes: &[usize] = &[100, 1_000, 10_000];
    for &n in ref_sizes {
        redis::cmd("FLUSHDB").query::<()>(raw).map_err(e)?;
        fill_strings(raw, n, PREFIX)?;
        let budget = if n >= 10_000 {
            Budget::very_slow(quick)
        } else {
            Budget::slow(quick)
        };
        let s = measure(budget, || -> R<Duration> {
            let t = Instant::now();
            let snapshot = reference_snapshot(raw)?;
            let cp = t.elapsed();
            change(raw, 1, PREFIX)?;
            let t = Instant::now();
            reference_restore(raw, &snapshot)?;
            Ok(cp + t.elapsed())
        })?;
        ref_points.push((n as f64, s.median_us()));
        report.add(
            NAME,
            section,
            format!("{n} string keys, per-key method"),
            s,
            "KEYS + GET + TTL per key; DEL + SET/SETEX per key",
        );
    }
    redis::cmd("FLUSHDB").query::<()>(raw).map_err(e)?;
    if !quick {
        report.note("redis: the per-key method is not run at 100,000 keys (about 300,000 sequential round trips per iteration)");
    }

    report.note(format!("redis: venomqa checkpoint + rollback, 1 key changed, 100 -> {} mixed keys: {}; a snapshot reads every key, so cost tracks the total key count", sizes.last().unwrap(), describe_growth(&size_points)));
    if let (Some(a), Some(b)) = (share_points.first(), share_points.last()) {
        report.note(format!("redis: 10,000 mixed keys, 1% -> 100% changed: {} -> {} ({:.1}x): nearly independent of the share changed", fmt_us(a.1), fmt_us(b.1), b.1 / a.1));
    }
    report.series(Chart::Size, "redis (venomqa)", size_points.clone());
    report.series(Chart::Size, "redis (per-key method)", ref_points);
    report.series(Chart::Share, "redis (venomqa)", share_points);

    // Targets.
    let mixed_10k = size_points.iter().find(|p| p.0 == 10_000.0).map(|p| p.1);
    match mixed_10k {
        Some(us) if us <= 60_000.0 => report.target(
            REDIS_60MS,
            Verdict::Met,
            format!("10,000 mixed keys (5 types, 10% with TTL): {}", fmt_us(us)),
        ),
        Some(us) => report.target(
            REDIS_60MS,
            Verdict::Missed,
            format!(
                "10,000 mixed keys: {}, over by {:.0}%",
                fmt_us(us),
                (us / 60_000.0 - 1.0) * 100.0
            ),
        ),
        None => {}
    }
    let per_key = report.median_us(NAME, "10000 string keys, per-key method");
    if let Some(pk) = per_key {
        let x = pk / vq_strings.median_us();
        let detail = format!(
            "10,000 string keys: per-key method {} vs venomqa {} = {x:.0}x",
            fmt_us(pk),
            fmt_us(vq_strings.median_us())
        );
        if x >= 20.0 {
            report.target(REDIS_20X, Verdict::Met, detail);
        } else {
            report.target(
                REDIS_20X,
                Verdict::Missed,
                format!("{detail}; short by {:.0}%", (1.0 - x / 20.0) * 100.0),
            );
        }
    }
    Ok(())
}
