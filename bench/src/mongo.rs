//! MongoDB: `ping` (the floor), venomqa's per-test cost, dropping the database after each
//! test, the reference document's JSON method (find everything, Extended JSON, then
//! delete_many + insert_many), venomqa's snapshots as the collection and the changed share
//! grow, and whether each method gives back the very same BSON types.

use std::time::{Duration, Instant};

use mongodb::bson::{doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Document};
use mongodb::sync::{Client, Collection, Database};
use venomqa::mongodb::{MongoDb, MongoDbSession, MongoDbStateManager};
use venomqa::{StateManager, ROOT_CHECKPOINT};

use crate::harness::{fmt_us, interleaved, measure, measure_op, Budget, Stats};
use crate::report::{Chart, Report, Verdict};
use crate::sql::{describe_growth, first_line};
use crate::targets::{MONGO_EXACT, MONGO_FASTER};

const NAME: &str = "mongodb";
const COLL: &str = "vq_bench_docs";
pub const FLOOR: &str = "round trip on the test's connection (ping)";
pub const RAW_FLOOR: &str = "round trip, separate connection (ping)";

type R<T> = Result<T, String>;

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// A document with the types a JSON round trip can lose: Int64 (small values come back
/// as Int32), DateTime, Binary, whole-number Double, nested documents and arrays.
fn make_doc(i: i64) -> Document {
    doc! {
        "_id": ObjectId::new(),
        "i": i as i32,
        "big": i,
        "price": i as f64 + 0.25,
        "ratio": 2.0,
        "at": DateTime::from_millis(1_700_000_000_000 + i),
        "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3, (i % 256) as u8] },
        "flag": i % 2 == 0,
        "none": Bson::Null,
        "name": format!("user {i}"),
        "tags": ["a", "b", i],
        "nested": { "n": i, "when": DateTime::from_millis(i), "list": [1.5, 2] },
    }
}

fn fill(coll: &Collection<Document>, n: usize) -> R<()> {
    coll.delete_many(doc! {}).run().map_err(e)?;
    let mut i = 0;
    while i < n {
        let end = (i + 1000).min(n);
        let docs: Vec<Document> = (i..end).map(|i| make_doc(i as i64)).collect();
        coll.insert_many(docs).run().map_err(e)?;
        i = end;
    }
    Ok(())
}

fn read_all(coll: &Collection<Document>) -> R<Vec<Document>> {
    coll.find(doc! {})
        .sort(doc! { "i": 1 })
        .run()
        .map_err(e)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)
}

/// The test's changes: `k` documents updated, with a field of another type.
fn change(coll: &Collection<Document>, k: usize) -> R<()> {
    coll.update_many(
        doc! { "i": { "$lt": k as i32 } },
        doc! { "$set": { "name": "changed", "big": "not a number" } },
    )
    .run()
    .map(drop)
    .map_err(e)
}

/// The reference document's checkpoint: every document, through Extended JSON text
/// (`json.loads(json_util.dumps(docs))`; relaxed mode, the default of `json_util`).
fn json_snapshot(coll: &Collection<Document>) -> R<serde_json::Value> {
    let docs = coll
        .find(doc! {})
        .run()
        .map_err(e)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    let json: Vec<serde_json::Value> = docs
        .into_iter()
        .map(|d| Bson::Document(d).into_relaxed_extjson())
        .collect();
    let text = serde_json::to_string(&json).map_err(e)?;
    serde_json::from_str(&text).map_err(e)
}

/// The reference document's rollback: delete_many, then insert_many of the snapshot,
/// parsed back from Extended JSON (kinder than the Python original, which inserts the
/// JSON dictionaries as they are).
fn json_restore(coll: &Collection<Document>, snapshot: &serde_json::Value) -> R<()> {
    coll.delete_many(doc! {}).run().map_err(e)?;
    let docs: Vec<Document> = snapshot
        .as_array()
        .ok_or("snapshot is not an array")?
        .iter()
        .map(|v| match Bson::try_from(v.clone()) {
            Ok(Bson::Document(d)) => Ok(d),
            Ok(other) => Err(format!("not a document: {other}")),
            Err(err) => Err(err.to_string()),
        })
        .collect::<R<_>>()?;
    if !docs.is_empty() {
        coll.insert_many(docs).run().map_err(e)?;
    }
    Ok(())
}

/// How many documents differ from `before` (same order), and one example.
fn differences(before: &[Document], after: &[Document]) -> (usize, Option<String>) {
    if before.len() != after.len() {
        return (
            before.len().abs_diff(after.len()),
            Some(format!(
                "{} documents before, {} after",
                before.len(),
                after.len()
            )),
        );
    }
    let mut n = 0;
    let mut example = None;
    for (b, a) in before.iter().zip(after) {
        if b != a {
            n += 1;
            if example.is_none() {
                for (k, v) in b {
                    match a.get(k) {
                        Some(w) if w == v => {}
                        Some(w) => {
                            example = Some(format!(
                                "field {k:?}: {:?} became {:?}",
                                v.element_type(),
                                w.element_type()
                            ));
                            break;
                        }
                        None => {
                            example = Some(format!("field {k:?} disappeared"));
                            break;
                        }
                    }
                }
            }
        }
    }
    (n, example)
}

fn client(url: &str) -> R<Client> {
    let sep = if url.contains('?') {
        "&"
    } else if url.ends_with('/') {
        "?"
    } else {
        "/?"
    };
    Client::with_uri_str(format!("{url}{sep}serverSelectionTimeoutMS=3000")).map_err(e)
}

pub fn run(report: &mut Report, url: &'static str, quick: bool) {
    let result = client(url).and_then(|c| {
        let db = c.database("vq_bench_ref");
        db.run_command(doc! { "ping": 1 }).run().map_err(e)?;
        Ok((c, db))
    });
    let (client, db) = match result {
        Ok(x) => x,
        Err(err) => {
            report.note(format!(
                "mongodb: skipped, the server is not running or refuses connections ({})",
                first_line(&err)
            ));
            return;
        }
    };
    println!("mongodb: measuring");
    if let Err(err) = measured(report, url, &db, quick) {
        report.note(format!("mongodb: stopped early: {err}"));
    }
    let _ = db.drop().run();
    if let Err(err) = capture(report, url, &client, quick) {
        report.note(format!("mongodb capture: stopped early: {err}"));
    }
}

/// Capture isolation on `vq_bench_capture`: a checkpoint ($out of every collection into a
/// snapshot database, fingerprints of copies and originals), a rollback after an app
/// changed `k` documents of the big collection (fingerprint every collection, restore the
/// big one, fingerprint again), and a rollback after it changed one document of a
/// 10-document collection only (the big one is fingerprinted, not copied). The app's
/// changes come from a client of its own.
fn capture(report: &mut Report, url: &'static str, client: &Client, quick: bool) -> R<()> {
    let section = "capture";
    let name = "vq_bench_capture";
    let db = client.database(name);
    // What an interrupted run left must not be restored into this one: forget its record
    // (its snapshot databases go at the first checkpoint), then start empty.
    client
        .database(venomqa::mongodb::LEASES_DATABASE)
        .collection::<Document>("capture")
        .delete_one(doc! { "_id": name })
        .run()
        .map_err(e)?;
    db.drop().run().map_err(e)?;
    let config = venomqa::BackendConfig::new(NAME)
        .with_url(url)
        .with_option("isolation", "capture")
        .with_option("database", name)
        .with_option("quiescence_timeout_ms", 60_000);
    let mut m = MongoDbStateManager::from_config(&config).map_err(e)?;
    m.connect().map_err(e)?;
    println!("mongodb: measuring capture (database {name})");
    let big = db.collection::<Document>("docs");
    let small = db.collection::<Document>("small");
    let sizes: &[usize] = if quick {
        &[1_000, 10_000]
    } else {
        &[1_000, 100_000]
    };
    for &n in sizes {
        fill(&big, n)?;
        big.create_index(mongodb::IndexModel::builder().keys(doc! { "i": 1 }).build())
            .run()
            .map_err(e)?;
        fill(&small, 10)?;
        m.checkpoint(ROOT_CHECKPOINT).map_err(e)?;
        let t = Instant::now();
        m.checkpoint("c").map_err(e)?;
        let probe = t.elapsed();
        m.discard("c").map_err(e)?;
        let budget = if probe > Duration::from_secs(5) {
            // SecantusDB at 100,000 documents: tens of seconds a sample.
            Budget {
                warmup: 0,
                min_iters: 2,
                max_iters: 2,
                max_time: Duration::ZERO,
            }
        } else {
            Budget::for_probe(probe, quick)
        };
        // The app's client sits idle while venomqa works; SecantusDB closes connections
        // idle for 5 minutes: a ping drops a closed one, so the app's write gets a new one.
        let wake = || {
            let _ = db.run_command(doc! { "ping": 1 }).run();
        };
        let checkpoint = measure(budget, || -> R<Duration> {
            let t = Instant::now();
            m.checkpoint("c").map_err(e)?;
            let d = t.elapsed();
            m.discard("c").map_err(e)?;
            Ok(d)
        })?;
        report.add(
            NAME,
            section,
            format!("{n} documents + 10: checkpoint"),
            checkpoint,
            "$out of both collections, fingerprints of copies and originals",
        );
        m.checkpoint("c").map_err(e)?;
        for k in [1usize, 10, 1_000] {
            let rollback = measure(budget, || -> R<Duration> {
                wake();
                change(&big, k)?;
                let t = Instant::now();
                m.rollback("c").map_err(e)?;
                Ok(t.elapsed())
            })?;
            report.add(
                NAME,
                section,
                format!("{n} documents + 10, {k} changed by the app: rollback"),
                rollback,
                "fingerprint all, restore the big collection ($out), fingerprint again",
            );
        }
        let other = measure(budget, || -> R<Duration> {
            wake();
            small
                .update_one(doc! { "i": 1 }, doc! { "$set": { "name": "changed" } })
                .run()
                .map_err(e)?;
            let t = Instant::now();
            m.rollback("c").map_err(e)?;
            Ok(t.elapsed())
        })?;
        report.add(
            NAME,
            section,
            format!("{n} documents + 10, 1 changed in the small collection: rollback"),
            other,
            "fingerprint all, restore the small collection only",
        );
        m.discard("c").map_err(e)?;
        m.discard(ROOT_CHECKPOINT).map_err(e)?;
    }
    m.disconnect().map_err(e)?;
    db.drop().run().map_err(e)
}

fn measured(report: &mut Report, url: &'static str, db: &Database, quick: bool) -> R<()> {
    let section = "per test";
    let raw_floor = measure_op(quick, || {
        db.run_command(doc! { "ping": 1 })
            .run()
            .map(drop)
            .map_err(e)
    })?;
    report.add(NAME, section, RAW_FLOOR, raw_floor, "");

    let spec = || {
        MongoDbSession::builder()
            .backend(NAME)
            .url(url)
            .name("venomqa_bench::mongodb_per_test")
    };
    let per_test = std::panic::catch_unwind(|| {
        let (empty, floor) = interleaved(
            quick,
            || -> R<Duration> {
                let t = Instant::now();
                spec().run(|_db: &mut MongoDbSession| {});
                Ok(t.elapsed())
            },
            || {
                let mut d = Duration::ZERO;
                spec().run(|db: &mut MongoDbSession| {
                    let t = Instant::now();
                    db.database()
                        .run_command(doc! { "ping": 1 })
                        .run()
                        .expect("ping");
                    d = t.elapsed();
                });
                Ok(d)
            },
        )?;
        let write = measure_op(quick, || -> R<()> {
            spec().run(|db: &mut MongoDbSession| {
                db.database()
                    .collection::<Document>("users")
                    .insert_one(doc! { "email": "ann@example.com" })
                    .run()
                    .expect("insert");
            });
            Ok(())
        })?;
        R::Ok((floor, empty, write))
    });
    let floor = report
        .per_test(
            NAME,
            section,
            FLOOR,
            "venomqa test, writes 1 document",
            per_test,
        )
        .unwrap_or(raw_floor);
    let write_us = report.median_us(NAME, "venomqa test, writes 1 document");

    // Baseline: drop the database after each test.
    let users = db.collection::<Document>("users");
    let dropped = measure_op(quick, || -> R<()> {
        users
            .insert_one(doc! { "email": "ann@example.com" })
            .run()
            .map_err(e)?;
        db.drop().run().map_err(e)
    })?;
    let note = write_us.map_or(String::new(), |w| {
        format!("{:.1}x the venomqa test", dropped.median_us() / w)
    });
    report.add(NAME, "baseline", "1 document + dropDatabase", dropped, note);

    scaling(report, url, db, quick, floor.median_us())
}

/// venomqa's snapshot + restore of a nested checkpoint (the root checkpoint of a test's
/// fresh database records nothing: ending a test is one dropDatabase).
fn venomqa_cycle(
    m: &mut MongoDbStateManager,
    coll: &Collection<Document>,
    changed: usize,
    quick: bool,
) -> R<Stats> {
    let mut one = || -> R<Duration> {
        let t = Instant::now();
        m.checkpoint("inner").map_err(e)?;
        let cp = t.elapsed();
        change(coll, changed)?;
        let t = Instant::now();
        m.discard("inner").map_err(e)?;
        Ok(cp + t.elapsed())
    };
    let t = Instant::now();
    one()?;
    measure(
        Budget::for_probe(t.elapsed().max(Duration::from_micros(600)), quick),
        one,
    )
}

/// One sample only, for sizes where a sample takes tens of seconds on this server.
fn venomqa_once(m: &mut MongoDbStateManager, coll: &Collection<Document>) -> R<Stats> {
    let t = Instant::now();
    m.checkpoint("inner").map_err(e)?;
    let cp = t.elapsed();
    change(coll, 1)?;
    let t = Instant::now();
    m.discard("inner").map_err(e)?;
    Ok(crate::harness::stats(vec![cp + t.elapsed()]))
}

fn json_cycle(coll: &Collection<Document>, changed: usize, quick: bool) -> R<Stats> {
    let one = || -> R<Duration> {
        let t = Instant::now();
        let snapshot = json_snapshot(coll)?;
        let cp = t.elapsed();
        change(coll, changed)?;
        let t = Instant::now();
        json_restore(coll, &snapshot)?;
        Ok(cp + t.elapsed())
    };
    let t = Instant::now();
    one()?;
    measure(
        Budget::for_probe(t.elapsed().max(Duration::from_micros(600)), quick),
        one,
    )
}

fn scaling(report: &mut Report, url: &str, db: &Database, quick: bool, floor_us: f64) -> R<()> {
    let section = "scaling";
    let mut m = MongoDbStateManager::new(MongoDb::from_url(url).map_err(|e| e.to_string())?);
    if let Err(err) = m.connect() {
        report.skip(
            NAME,
            section,
            "checkpoint + rollback",
            format!(
                "venomqa backend unavailable: {}",
                first_line(&err.to_string())
            ),
        );
        return Ok(());
    }
    crate::harness::breakdown(report, NAME, &mut m, Some(floor_us), quick);
    m.checkpoint(ROOT_CHECKPOINT).map_err(e)?;
    let vq_coll = m.database().collection::<Document>(COLL);
    let ref_coll = db.collection::<Document>(COLL);
    // The server here is slow (a Python implementation): --quick stops at 1,000 documents.
    let sizes: &[usize] = if quick {
        &[100, 1_000]
    } else {
        &[100, 1_000, 10_000, 100_000]
    };
    let share_base: usize = if quick { 1_000 } else { 10_000 };
    let compare_at = *sizes.iter().rfind(|&&n| n <= 10_000).unwrap();
    let mut vq_points = Vec::new();
    let mut json_points = Vec::new();
    let mut vq_at = None;
    let mut json_at = None;
    for &n in sizes {
        fill(&vq_coll, n)?;
        let s = if n >= 100_000 {
            venomqa_once(&mut m, &vq_coll)?
        } else {
            venomqa_cycle(&mut m, &vq_coll, 1, quick)?
        };
        vq_points.push((n as f64, s.median_us()));
        report.add(
            NAME,
            section,
            format!("{n} documents, 1 changed"),
            s,
            "venomqa snapshot + restore (raw BSON)",
        );
        // The JSON method at 100,000 documents would take minutes per sample here.
        if n <= 10_000 {
            fill(&ref_coll, n)?;
            let j = json_cycle(&ref_coll, 1, quick)?;
            json_points.push((n as f64, j.median_us()));
            report.add(
                NAME,
                section,
                format!("{n} documents, JSON method"),
                j,
                format!("{:.1}x venomqa", j.median_us() / s.median_us()),
            );
            if n == compare_at {
                vq_at = Some(s);
                json_at = Some(j);
            }
        }
    }
    let mut share_points = Vec::new();
    fill(&vq_coll, share_base)?;
    for changed in [share_base / 100, share_base / 10, share_base] {
        let pct = (changed * 100 / share_base) as f64;
        let s = venomqa_cycle(&mut m, &vq_coll, changed, quick)?;
        share_points.push((pct, s.median_us()));
        report.add(
            NAME,
            section,
            format!("{share_base} documents, {pct}% changed"),
            s,
            "venomqa snapshot + restore",
        );
    }

    // Type-exactness: 1,000 documents, every one changed, restored, read back.
    fill(&vq_coll, 1_000)?;
    let before = read_all(&vq_coll)?;
    m.checkpoint("inner").map_err(e)?;
    change(&vq_coll, 1_000)?;
    m.discard("inner").map_err(e)?;
    let (vq_diff, vq_example) = differences(&before, &read_all(&vq_coll)?);
    fill(&ref_coll, 1_000)?;
    let before = read_all(&ref_coll)?;
    let snapshot = json_snapshot(&ref_coll)?;
    change(&ref_coll, 1_000)?;
    json_restore(&ref_coll, &snapshot)?;
    let (json_diff, json_example) = differences(&before, &read_all(&ref_coll)?);
    m.discard(ROOT_CHECKPOINT).map_err(e)?;
    let _ = m.disconnect();

    report.note(format!("mongodb: venomqa snapshot + restore, 1 document changed, 100 -> {} documents: {}; a snapshot reads every document, so cost tracks the collection size", sizes.last().unwrap(), describe_growth(&vq_points)));
    if let (Some(a), Some(b)) = (share_points.first(), share_points.last()) {
        report.note(format!(
            "mongodb: {share_base} documents, 1% -> 100% changed: {} -> {} ({:.1}x)",
            fmt_us(a.1),
            fmt_us(b.1),
            b.1 / a.1
        ));
    }
    report.series(Chart::Size, "mongodb (venomqa)", vq_points);
    report.series(Chart::Size, "mongodb (JSON method)", json_points);
    report.series(Chart::Share, "mongodb (venomqa)", share_points);

    if let (Some(v), Some(j)) = (vq_at, json_at) {
        let x = j.median_us() / v.median_us();
        let detail = format!(
            "{compare_at} documents: JSON method {} vs venomqa {} = {x:.1}x",
            fmt_us(j.median_us()),
            fmt_us(v.median_us())
        );
        report.target(
            MONGO_FASTER,
            if x > 1.0 {
                Verdict::Met
            } else {
                Verdict::Missed
            },
            detail,
        );
    }
    let detail = format!(
        "1,000 documents of 12 fields, all changed then restored: venomqa {vq_diff} differ{}; JSON method {json_diff} differ{}",
        vq_example.map_or(String::new(), |x| format!(" ({x})")),
        json_example.map_or(String::new(), |x| format!(" ({x})"))
    );
    report.target(
        MONGO_EXACT,
        if vq_diff == 0 {
            Verdict::Met
        } else {
            Verdict::Missed
        },
        detail,
    );
    Ok(())
}
