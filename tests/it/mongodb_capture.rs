#![cfg(feature = "mongodb")]
//! MongoDB capture isolation: writes made by OTHER processes (the tests crate's
//! the writer (this test binary re-executed, `support::writer`), with a client of its own) to the captured database are rolled back,
//! and an independent client proves the database is back exactly: every document as
//! canonical extended JSON (so Int32 and Int64, Decimal128 digits, Binary subtypes and
//! field order count), every collection's options and indexes.
//!
//! Each test captures a database of its own (`vq_capture_<test>_<pid>`), so tests never
//! wait for each other; the conformance suite and the property tests use the entry
//! `mongodb_capture` of venomqa.yaml.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use venomqa::mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use venomqa::mongodb::driver::sync::{Client, Database};
use venomqa::mongodb::{
    MongoDb, MongoDbCaptureSession, MongoDbCaptureStateManager, MongoDbStateManager,
    LEASES_DATABASE,
};
use venomqa::{BackendConfig, Error, SessionBuilder, StateManager};

fn url() -> String {
    std::env::var("VENOMQA_MONGODB_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| venomqa::mongodb::DEFAULT_URL.to_owned())
}

/// A client of its own, not the session's: what it reads is what the server holds.
static OTHER: LazyLock<Client> = LazyLock::new(|| {
    Client::with_uri_str(url())
        .unwrap_or_else(|e| panic!("the MongoDB server at {url} is needed: {e}", url = url()))
});

fn other_db(name: &str) -> Database {
    OTHER.database(name)
}

/// A database name of this test and process.
fn database(test: &str) -> String {
    format!("vq_capture_{test}_{}", std::process::id())
}

/// The backend capturing `database`.
fn config(database: &str) -> BackendConfig {
    BackendConfig::new("mongodb")
        .with_url(url())
        .with_option("isolation", "capture")
        .with_option("database", database)
        .with_option("lease_ttl_secs", 2)
        .with_option("shared_lock_timeout_secs", 60)
}

fn capture(database: &str, test: &str) -> SessionBuilder<MongoDbCaptureStateManager> {
    // A directory per database: configurations are read once per directory.
    let dir = std::env::temp_dir().join(format!("venomqa-mongodb-capture-{database}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("venomqa.yaml"),
        format!(
            "backends:\n  {database}:\n    backend: mongodb\n    isolation: capture\n    database: {database}\n    lease_ttl_secs: 2\n    quiescence_timeout_ms: 1500\n"
        ),
    )
    .unwrap();
    MongoDbCaptureSession::builder()
        .config_dir(dir)
        .entry(database)
        .url(url())
        .name(test)
}

/// Everything in `database`, read by the independent client: per collection its type,
/// options and index specs, then its documents in `_id` order as canonical extended JSON.
fn dump(database: &str) -> Vec<String> {
    let db = other_db(database);
    let mut out = Vec::new();
    let mut infos: Vec<Document> = db
        .run_cursor_command(doc! { "listCollections": 1 })
        .run()
        .unwrap()
        .map(|c| c.unwrap())
        .filter(|c| !c.get_str("name").unwrap().starts_with("system."))
        .collect();
    infos.sort_by(|a, b| a.get_str("name").unwrap().cmp(b.get_str("name").unwrap()));
    for info in infos {
        let name = info.get_str("name").unwrap().to_owned();
        let kind = info.get_str("type").unwrap_or("collection");
        out.push(format!(
            "{name}: {kind} {}",
            info.get_document("options").cloned().unwrap_or_default()
        ));
        if kind == "view" {
            continue;
        }
        let mut indexes: Vec<Document> = db
            .run_cursor_command(doc! { "listIndexes": &name })
            .run()
            .unwrap()
            .map(|i| {
                let mut i = i.unwrap();
                i.remove("ns");
                i
            })
            .collect();
        indexes.sort_by(|a, b| a.get_str("name").unwrap().cmp(b.get_str("name").unwrap()));
        out.push(format!("{name} indexes: {indexes:?}"));
        for d in db
            .collection::<RawDocumentBuf>(&name)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .run()
            .unwrap()
        {
            let d = Document::try_from(d.unwrap().as_ref()).unwrap();
            out.push(format!(
                "{name}: {}",
                Bson::Document(d).into_canonical_extjson()
            ));
        }
    }
    out
}

/// Asserts two dumps are equal, showing the lines that differ.
#[track_caller]
fn same(now: &[String], expected: &[String]) {
    let missing: Vec<&String> = expected.iter().filter(|l| !now.contains(l)).collect();
    let extra: Vec<&String> = now.iter().filter(|l| !expected.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && now.len() == expected.len(),
        "the database differs:\n  missing {missing:#?}\n  extra {extra:#?}"
    );
}

/// Runs `commands` (a JSON array of database commands, extended JSON) in another process.
fn write_from_another_process(database: &str, commands: &str) {
    let out = crate::support::writer::command()
        .args(["mongodb", &url(), database, commands])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the writer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Collections of every kind, documents of every awkward BSON type, indexes and options.
fn seed(database: &str) {
    other_db(database).drop().run().unwrap();
    write_from_another_process(
        database,
        r#"[
          {"create": "users"},
          {"createIndexes": "users", "indexes": [
            {"key": {"email": 1}, "name": "email_1", "unique": true},
            {"key": {"n": 1, "at": -1}, "name": "n_1_at_-1"}]},
          {"insert": "users", "documents": [
            {"_id": {"$oid": "65a000000000000000000001"}, "email": "ann@example.com", "n": {"$numberInt": "1"},
             "big": {"$numberLong": "5"}, "price": {"$numberDecimal": "12.30"}, "at": {"$date": {"$numberLong": "1700000000123"}},
             "blob": {"$binary": {"base64": "AAH/", "subType": "00"}}, "uuid": {"$binary": {"base64": "BwcHBwcHBwcHBwcHBwcHBw==", "subType": "04"}},
             "nested": {"tags": ["a", {"$numberInt": "1"}, {"$numberDouble": "2.5"}], "deep": {"id": {"$oid": "65a0000000000000000000ff"}}}},
            {"_id": {"$oid": "65a000000000000000000002"}, "email": "bob@example.com", "n": {"$numberInt": "2"},
             "big": {"$numberLong": "-9007199254740993"}, "price": {"$numberDecimal": "0.10"}, "nothing": null},
            {"_id": {"$oid": "65a000000000000000000003"}, "email": "cy@example.com", "n": {"$numberInt": "3"}}]},
          {"create": "log", "capped": true, "size": {"$numberInt": "8192"}, "max": {"$numberInt": "3"}},
          {"insert": "log", "documents": [{"_id": {"$numberInt": "1"}, "m": "one"}, {"_id": {"$numberInt": "2"}, "m": "two"}]},
          {"create": "validated", "validator": {"$jsonSchema": {"required": ["a"]}}},
          {"insert": "validated", "documents": [{"_id": {"$numberInt": "1"}, "a": {"$numberInt": "1"}}]},
          {"create": "audit"},
          {"insert": "audit", "documents": [{"_id": "x", "v": {"$numberDouble": "-0.0"}}]},
          {"create": "empty"},
          {"create": "active_users", "viewOn": "users", "pipeline": [{"$match": {"n": {"$gte": {"$numberInt": "2"}}}}]}
        ]"#,
    );
}

/// What the app does: inserts, updates that change types, deletes, a dropped and a new
/// collection, a new and a dropped index, a validator removed, a capped collection wrapped.
const APP_WRITES: &str = r#"[
  {"insert": "users", "documents": [{"_id": {"$oid": "65a000000000000000000004"}, "email": "dee@example.com", "n": {"$numberInt": "4"}}]},
  {"update": "users", "updates": [{"q": {"email": "bob@example.com"}, "u": {"$set": {"big": {"$numberInt": "5"}, "price": {"$numberDecimal": "0.1"}}}}]},
  {"update": "users", "updates": [{"q": {"email": "cy@example.com"}, "u": {"$set": {"n": {"$numberLong": "3"}}}}]},
  {"delete": "users", "deletes": [{"q": {"email": "ann@example.com"}, "limit": 1}]},
  {"createIndexes": "users", "indexes": [{"key": {"big": 1}, "name": "big_1"}]},
  {"dropIndexes": "users", "index": "n_1_at_-1"},
  {"drop": "audit"},
  {"create": "made_by_app"},
  {"insert": "made_by_app", "documents": [{"_id": {"$numberInt": "1"}, "v": "new"}]},
  {"insert": "log", "documents": [{"_id": {"$numberInt": "3"}, "m": "three"}, {"_id": {"$numberInt": "4"}, "m": "four"}]},
  {"collMod": "validated", "validator": {}},
  {"insert": "validated", "documents": [{"_id": {"$numberInt": "2"}, "b": {"$numberInt": "2"}}]},
  {"insert": "empty", "documents": [{"_id": {"$numberInt": "1"}}]}
]"#;

/// Writes an app can repeat: inserts, an update of every user, a delete.
const LOOP_WRITES: &str = r#"[
  {"insert": "audit", "documents": [{"w": {"$numberInt": "1"}}, {"w": {"$numberLong": "2"}}]},
  {"update": "users", "updates": [{"q": {}, "u": {"$inc": {"n": {"$numberInt": "1"}}}, "multi": true}]},
  {"delete": "validated", "deletes": [{"q": {}, "limit": 0}]},
  {"insert": "validated", "documents": [{"a": "again"}]}
]"#;

#[test]
fn another_process_writes_and_the_rollback_undoes_it_exactly() {
    let name = database("exact");
    seed(&name);
    let baseline = dump(&name);
    assert!(baseline.len() > 10, "{baseline:#?}");
    capture(&name, "exact").run(|db: &mut MongoDbCaptureSession| {
        assert!(db.captures());
        assert_eq!(db.url().unwrap().expose(), url());
        assert_eq!(db.database_name(), name);
        db.create_checkpoint("before_the_app").unwrap();
        write_from_another_process(&name, APP_WRITES);
        let changed = dump(&name);
        assert_ne!(changed, baseline, "the other process's writes are there");

        let diff = db.diff_since("before_the_app").unwrap();
        let users = diff.table("users").expect("users changed");
        assert_eq!(
            (users.inserted, users.updated, users.deleted),
            (1, 3, 1),
            "{diff}"
        );
        let bob = users
            .rows
            .iter()
            .find(|r| r.key == "_id=ObjectId(\"65a000000000000000000002\")")
            .unwrap_or_else(|| panic!("{diff}"));
        let columns: Vec<&str> = bob.columns.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(columns, ["big", "price"], "{diff}");
        let cy = users
            .rows
            .iter()
            .find(|r| r.key == "_id=ObjectId(\"65a000000000000000000003\")")
            .unwrap();
        assert_eq!(
            cy.columns[0].column, "n",
            "a type change alone is a change: {diff}"
        );
        let structure = users.rows.iter().find(|r| r.key == "(collection)").unwrap();
        assert_eq!(structure.columns[0].column, "indexes", "{diff}");
        assert_eq!(diff.table("audit").unwrap().deleted, 1, "{diff}");
        assert_eq!(diff.table("made_by_app").unwrap().inserted, 1, "{diff}");
        assert!(
            diff.table("log").is_some() && diff.table("validated").is_some(),
            "{diff}"
        );
        assert!(
            diff.table("active_users").is_none(),
            "the view did not change: {diff}"
        );

        db.rollback("before_the_app").unwrap();
        same(&dump(&name), &baseline);
        assert!(db.diff().unwrap().is_empty(), "{}", db.diff().unwrap());

        // The checkpoint stays: the app writes again, and it is undone again.
        write_from_another_process(&name, APP_WRITES);
        db.rollback("before_the_app").unwrap();
        same(&dump(&name), &baseline);
        write_from_another_process(
            &name,
            r#"[{"insert": "users", "documents": [{"email": "late@example.com"}]}]"#,
        );
    });
    same(&dump(&name), &baseline);
    // Nothing of capture is left: no snapshot database, no record, no lock.
    let left: Vec<String> = OTHER
        .list_database_names()
        .run()
        .unwrap()
        .into_iter()
        .filter(|d| {
            d.starts_with(venomqa::mongodb::SNAPSHOT_PREFIX)
                && d.contains(&name[..name.len().min(24)])
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let leases = other_db(LEASES_DATABASE);
    assert_eq!(
        leases
            .collection::<Document>("capture")
            .count_documents(doc! { "_id": &name })
            .run()
            .unwrap(),
        0
    );
    assert_eq!(
        leases
            .collection::<Document>("locks")
            .count_documents(doc! { "_id": format!("shared:{name}") })
            .run()
            .unwrap(),
        0
    );
    other_db(&name).drop().run().unwrap();
}

#[test]
fn nested_checkpoints_each_restore_their_own_state() {
    let name = database("nested");
    seed(&name);
    let baseline = dump(&name);
    capture(&name, "nested").run(|db: &mut MongoDbCaptureSession| {
        db.create_checkpoint("one").unwrap();
        write_from_another_process(&name, r#"[{"insert": "users", "documents": [{"email": "one@example.com"}]}, {"drop": "log"}]"#);
        let at_two = dump(&name);
        db.create_checkpoint("two").unwrap();
        write_from_another_process(&name, r#"[{"delete": "users", "deletes": [{"q": {}, "limit": 0}]}, {"create": "two"}]"#);
        db.checkpoint("three", |db| {
            // The test's own handle is just another client of the database.
            db.database().collection::<Document>("audit").insert_one(doc! { "own": true }).run().unwrap();
            write_from_another_process(db.database_name(), r#"[{"dropDatabase": 1}]"#);
        })
        .unwrap();
        let diff = db.diff_since("two").unwrap();
        assert_eq!(diff.table("users").unwrap().deleted, 4, "{diff}");
        assert!(diff.table("two").is_some(), "{diff}");
        db.rollback("two").unwrap();
        same(&dump(&name), &at_two);
        db.rollback("one").unwrap();
        same(&dump(&name), &baseline);
    });
    same(&dump(&name), &baseline);
    other_db(&name).drop().run().unwrap();
}

/// The child half of the kill tests: a session on `VQ_CAPTURE_DATABASE` whose own handle and
/// another process write, in a loop of checkpoints and rollbacks, until it is killed.
#[test]
#[ignore = "a child process of a_test_process_killed_at_any_point_is_restored_by_the_next_session runs it"]
fn killed_child() {
    let name = std::env::var("VQ_CAPTURE_DATABASE").unwrap();
    let mut db = capture(&name, "killed").open().unwrap();
    write_from_another_process(&name, APP_WRITES);
    println!("written");
    for round in 0.. {
        db.create_checkpoint("c").unwrap();
        let users = db.database().collection::<Document>("users");
        users.insert_one(doc! { "round": round }).run().unwrap();
        users
            .delete_many(doc! { "email": { "$exists": true } })
            .run()
            .unwrap();
        db.rollback("c").unwrap();
        db.release("c").unwrap();
    }
}

fn spawn_child(test: &str, database: &str) -> Child {
    Command::new(crate::support::this_binary())
        .args([
            "--exact",
            &format!("mongodb_capture::{test}"),
            "--ignored",
            "--nocapture",
        ])
        .env("VQ_CAPTURE_DATABASE", database)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_line(child: &mut Child, line: &str) {
    let mut reader = std::io::BufReader::new(child.stdout.as_mut().unwrap());
    let mut got = String::new();
    loop {
        got.clear();
        assert!(
            reader.read_line(&mut got).unwrap() > 0,
            "the child ended before {line:?}"
        );
        if got.trim() == line {
            return;
        }
    }
}

#[test]
fn a_test_process_killed_at_any_point_is_restored_by_the_next_session() {
    let name = database("killed");
    seed(&name);
    let baseline = dump(&name);
    // Killed right after the app's writes, then at points inside its loop of checkpoints
    // and rollbacks (mid-copy, mid-restore).
    for delay_ms in [0, 90, 400] {
        let mut child = spawn_child("killed_child", &name);
        wait_for_line(&mut child, "written");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_ne!(dump(&name), baseline, "the dead session left its changes");
        let started = Instant::now();
        capture(&name, "after_kill").run(|_: &mut MongoDbCaptureSession| ());
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        same(&dump(&name), &baseline);
    }
    other_db(&name).drop().run().unwrap();
}

/// The child half of `two_processes_each_on_its_own_database`.
#[test]
#[ignore = "a child process of two_processes_each_on_its_own_database runs it"]
fn rounds_child() {
    let name = std::env::var("VQ_CAPTURE_DATABASE").unwrap();
    let baseline = dump(&name);
    for round in 0..4 {
        capture(&name, "rounds").run(|db: &mut MongoDbCaptureSession| {
            same(&dump(&name), &baseline);
            write_from_another_process(&name, &format!(r#"[{{"insert": "users", "documents": [{{"round": {round}}}]}}, {{"drop": "audit"}}]"#));
            db.checkpoint("inner", |_| write_from_another_process(&name, r#"[{"dropDatabase": 1}]"#)).unwrap();
            assert_eq!(dump(&name).len(), baseline.len() - 3 + 1, "audit gone (3 lines), a user more");
        });
    }
    same(&dump(&name), &baseline);
}

#[test]
fn two_processes_each_on_its_own_database() {
    let names = [database("own_a"), database("own_b")];
    for name in &names {
        seed(name);
    }
    let children: Vec<Child> = names
        .iter()
        .map(|n| spawn_child("rounds_child", n))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for name in &names {
        other_db(name).drop().run().unwrap();
    }
}

#[test]
fn a_writer_that_keeps_writing_is_named_then_the_rollback_succeeds() {
    let name = database("busy");
    seed(&name);
    let baseline = dump(&name);
    capture(&name, "busy").run(|db: &mut MongoDbCaptureSession| {
        db.create_checkpoint("c").unwrap();
        // Three app processes inserting as fast as they can.
        let mut writers: Vec<Child> = (0..3)
            .map(|_| {
                crate::support::writer::command()
                    .args([
                        "mongodb",
                        &url(),
                        &name,
                        r#"[{"insert": "audit", "documents": [{"w": 1}]}]"#,
                        "--loop",
                        "5000",
                    ])
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for w in &mut writers {
            wait_for_line(w, "writing");
        }
        let mut outcomes = Vec::new();
        while writers.iter_mut().all(|w| w.try_wait().unwrap().is_none()) {
            let started = Instant::now();
            let r = db.rollback("c");
            outcomes.push((r.map_err(|e| e.to_string()), started.elapsed()));
        }
        for w in &mut writers {
            assert!(w.wait().unwrap().success());
        }
        // A rollback whose proof finds no write passes (the writers write after it); one
        // that keeps finding writes gives up after quiescence_timeout_ms (1500), naming
        // the collection.
        let failed: Vec<&(Result<(), String>, Duration)> =
            outcomes.iter().filter(|(r, _)| r.is_err()).collect();
        assert!(
            !failed.is_empty(),
            "three writers never disturbed a rollback: {outcomes:?}"
        );
        for (r, took) in &failed {
            let text = r.as_ref().unwrap_err();
            assert!(
                text.contains("collections audit kept changing for 1500 ms")
                    && text.contains("quiescence_timeout_ms"),
                "{text}"
            );
            assert!(text.len() <= 300, "{} chars: {text}", text.len());
            assert!(*took < Duration::from_millis(3500), "bounded: {took:?}");
        }
        db.rollback("c").unwrap();
        same(&dump(&name), &baseline);
    });
    other_db(&name).drop().run().unwrap();
}

#[test]
fn an_app_killed_mid_write_is_rolled_back() {
    let name = database("app_killed");
    seed(&name);
    let baseline = dump(&name);
    capture(&name, "app_killed").run(|db: &mut MongoDbCaptureSession| {
        db.create_checkpoint("c").unwrap();
        // The app writes in a loop, and dies (SIGKILL) somewhere in the middle of a round.
        let mut app = crate::support::writer::command()
            .args(["mongodb", &url(), &name, LOOP_WRITES, "--loop", "20000"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_line(&mut app, "writing");
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            app.try_wait().unwrap().is_none(),
            "the app is still writing"
        );
        app.kill().unwrap();
        assert!(!app.wait().unwrap().success());
        assert!(!db.diff_since("c").unwrap().is_empty());
        db.rollback("c").unwrap();
        same(&dump(&name), &baseline);
    });
    other_db(&name).drop().run().unwrap();
}

#[test]
fn a_snapshot_dropped_by_someone_fails_the_rollback_and_restores_nothing() {
    let name = database("dropped_copy");
    seed(&name);
    let baseline = dump(&name);
    capture(&name, "dropped_copy").run(|db: &mut MongoDbCaptureSession| {
        db.create_checkpoint("c").unwrap();
        write_from_another_process(
            &name,
            r#"[{"delete": "users", "deletes": [{"q": {}, "limit": 0}]}]"#,
        );
        let changed = dump(&name);
        // The snapshot database of "c" (depth 1).
        let snapshot = OTHER
            .list_database_names()
            .run()
            .unwrap()
            .into_iter()
            .find(|d| {
                d.starts_with(venomqa::mongodb::SNAPSHOT_PREFIX)
                    && d.ends_with("_1")
                    && d.contains("dropped_copy")
            })
            .expect("the snapshot database of c");
        other_db(&snapshot).drop().run().unwrap();
        let e = db.rollback("c").unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::StateLost { .. }), "{text}");
        assert!(
            text.contains("\"users\" is gone") && text.contains("nothing was restored"),
            "{text}"
        );
        assert!(text.len() <= 300, "{} chars: {text}", text.len());
        same(&dump(&name), &changed);
    });
    // The session's first checkpoint was intact: its end restored it.
    same(&dump(&name), &baseline);
    other_db(&name).drop().run().unwrap();
}

#[test]
fn uninstall_restores_what_a_dead_session_left_and_removes_everything() {
    let name = database("uninstall");
    seed(&name);
    let baseline = dump(&name);
    let mut child = spawn_child("killed_child", &name);
    wait_for_line(&mut child, "written");
    child.kill().unwrap();
    child.wait().unwrap();
    let m = MongoDbCaptureStateManager::from_config(&config(&name)).unwrap();
    m.backend().uninstall_capture().unwrap();
    same(&dump(&name), &baseline);
    let left: Vec<String> = OTHER
        .list_database_names()
        .run()
        .unwrap()
        .into_iter()
        .filter(|d| d.starts_with(venomqa::mongodb::SNAPSHOT_PREFIX) && d.contains("uninstall"))
        .filter(|d| d.contains(&std::process::id().to_string()) || d.contains("vq_capture_uninsta"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let record = other_db(LEASES_DATABASE)
        .collection::<Document>("capture")
        .count_documents(doc! { "_id": &name })
        .run()
        .unwrap();
    assert_eq!(record, 0);
    other_db(&name).drop().run().unwrap();
}

#[test]
fn other_isolations_hand_out_no_url_and_keep_no_diff() {
    let mut m = MongoDbStateManager::new(
        MongoDb::from_url(&url())
            .unwrap()
            .database("vq_capture_none"),
    );
    m.connect().unwrap();
    assert!(!m.captures());
    assert!(m
        .url()
        .unwrap_err()
        .to_string()
        .contains("isolation: capture"));
    m.checkpoint("c").unwrap();
    assert!(m
        .diff("c")
        .unwrap_err()
        .to_string()
        .contains("isolation: capture"));
    m.disconnect().unwrap();
}

#[test]
fn bad_capture_configurations_are_refused_with_the_way_out() {
    let no_database = BackendConfig::new("mongodb")
        .with_url("mongodb://127.0.0.1:27017/?appName=x")
        .with_option("isolation", "capture");
    let missing = MongoDbCaptureStateManager::from_config(&no_database)
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains("backends.mongodb.database")
            && missing.contains("mongodb://host:27017/app"),
        "{missing}"
    );
    let in_url = BackendConfig::new("mongodb")
        .with_url("mongodb://127.0.0.1:27017/shop?appName=x")
        .with_option("isolation", "capture");
    assert!(MongoDbCaptureStateManager::from_config(&in_url).is_ok());
    let template = config("x").with_option("template_database", "seed");
    let template = MongoDbCaptureStateManager::from_config(&template)
        .unwrap_err()
        .to_string();
    assert!(template.contains("template_database"), "{template}");
    for e in [missing, template] {
        assert!(e.len() <= 300 && !e.contains('\n'), "{e}");
    }
}

/// Documents `{v: <value>}` in collection `probe` of the captured database.
struct Probe;

impl venomqa::conformance::Probe for Probe {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
        let m = m.connection::<MongoDb>()?;
        m.database()
            .collection::<Document>("probe")
            .insert_one(doc! { "v": value })
            .run()
            .map(drop)
            .map_err(|e| Error::backend("mongodb", "probe insert", e))
    }

    fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
        let m = m.connection::<MongoDb>()?;
        let docs: Vec<Document> = m
            .database()
            .collection::<Document>("probe")
            .find(doc! {})
            .run()
            .and_then(|c| c.collect())
            .map_err(|e| Error::backend("mongodb", "probe read", e))?;
        Ok(docs.iter().filter_map(|d| d.get_i64("v").ok()).collect())
    }
}

#[test]
fn conformance_with_capture() {
    venomqa::conformance::run("mongodb_capture", Probe);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    let name = database("faults");
    let backend = MongoDbStateManager::from_config(&config(&name)).unwrap();
    venomqa::conformance::faults(backend.backend().clone());
    other_db(&name).drop().run().unwrap();
}

use crate::support::capture_exact;

/// The capture suite (`conformance::capture`) on MongoDB: the writes of a small shop made
/// by a client of the probe's own, as an app without foreign keys makes them (cascades
/// and `SET NULL` by `delete_many`/`update_many`, a changed `_id` as an insert and a
/// delete), and a dump of every document of every `vq_cc_*` collection read by that
/// client. Entry `mongodb_capture_cc` of venomqa.yaml: the database `vq_capture_cc`, which
/// no other test uses.
mod capture_exact_probe {
    use venomqa::conformance::capture::{self, Child, Write, PARENT};
    use venomqa::mongodb::bson::{doc, Bson, Document};
    use venomqa::mongodb::driver::options::ReturnDocument;
    use venomqa::mongodb::driver::sync::{Client, Collection, Database};
    use venomqa::mongodb::MongoDbCaptureStateManager;
    use venomqa::{BackendConfig, Error, Result};

    const ENTRY: &str = "mongodb_capture_cc";
    const DATABASE: &str = "vq_capture_cc";
    const COUNTERS: &str = "vq_cc_counters";

    /// A write's failure: the driver's error, or a constraint the app checks.
    type Rejected = Box<dyn std::error::Error + Send + Sync>;

    /// A client of the probe's own, as the app's would be.
    struct Shop(Database);

    impl Shop {
        /// The probe, on a database dropped first. What a session of an earlier run that
        /// died left is restored and removed before (so the next session does not restore
        /// it over the fresh database).
        fn fresh() -> Shop {
            let config = BackendConfig::new("mongodb")
                .with_url(super::url())
                .with_option("isolation", "capture")
                .with_option("database", DATABASE);
            MongoDbCaptureStateManager::from_config(&config)
                .unwrap()
                .backend()
                .uninstall_capture()
                .unwrap();
            let client = Client::with_uri_str(super::url()).unwrap();
            let db = client.database(DATABASE);
            db.drop().run().unwrap();
            Shop(db)
        }

        fn coll(&self, name: &str) -> Collection<Document> {
            self.0.collection(name)
        }

        fn exists(&self, table: &str, id: i64) -> std::result::Result<bool, Rejected> {
            Ok(self
                .coll(table)
                .find_one(doc! { "_id": id })
                .run()?
                .is_some())
        }

        /// The collections of the shop and what each holds, in `_id` order.
        fn contents(&self) -> std::result::Result<Vec<(String, Vec<Document>)>, Rejected> {
            let mut names: Vec<String> = self
                .0
                .list_collection_names()
                .run()?
                .into_iter()
                .filter(|n| n.starts_with("vq_cc_"))
                .collect();
            names.sort();
            let mut out = Vec::new();
            for name in names {
                let docs = self
                    .coll(&name)
                    .find(doc! {})
                    .sort(doc! { "_id": 1 })
                    .run()?
                    .collect::<std::result::Result<Vec<Document>, _>>()?;
                out.push((name, docs));
            }
            Ok(out)
        }

        /// Carries out one write; a transaction's writes in order, and when one is
        /// rejected, the shop's collections put back as they were at its start (the app's
        /// own rollback: this server has no multi-document transactions to lean on).
        fn apply(&self, write: &Write) -> std::result::Result<(), Rejected> {
            match *write {
                Write::InsertParent { id } => {
                    self.coll(PARENT)
                        .insert_one(doc! { "_id": id, "name": format!("p{id}") })
                        .run()?;
                }
                Write::RenameParent { id } => {
                    if let Some(p) = self.coll(PARENT).find_one(doc! { "_id": id }).run()? {
                        let name = format!("{}+", p.get_str("name")?);
                        self.coll(PARENT)
                            .update_one(doc! { "_id": id }, doc! { "$set": { "name": name } })
                            .run()?;
                    }
                }
                Write::RekeyParent { id, to } => {
                    let Some(mut p) = self.coll(PARENT).find_one(doc! { "_id": id }).run()? else {
                        return Err(format!("no parent {id}").into());
                    };
                    if self.exists(PARENT, to)? {
                        return Err(format!("parent {to} exists").into());
                    }
                    p.insert("_id", to);
                    self.coll(PARENT).insert_one(p).run()?;
                    self.coll(PARENT).delete_one(doc! { "_id": id }).run()?;
                    for child in Child::ALL {
                        self.coll(child.table())
                            .update_many(doc! { "parent": id }, doc! { "$set": { "parent": to } })
                            .run()?;
                    }
                }
                Write::DeleteParent { id } => {
                    let gone = self.coll(PARENT).delete_one(doc! { "_id": id }).run()?;
                    if gone.deleted_count == 0 {
                        return Ok(());
                    }
                    for child in Child::ALL {
                        let rows = self.coll(child.table());
                        if child.cascades() {
                            rows.delete_many(doc! { "parent": id }).run()?;
                        } else {
                            rows.update_many(
                                doc! { "parent": id },
                                doc! { "$set": { "parent": Bson::Null } },
                            )
                            .run()?;
                        }
                    }
                }
                Write::Insert { child, parent, v } => {
                    if !self.exists(PARENT, parent)? {
                        return Err(format!("no parent {parent}").into());
                    }
                    let rows = self.coll(child.table());
                    if child.keyed() {
                        let counters = self.coll(COUNTERS);
                        let last = counters
                            .find_one(doc! { "_id": child.table() })
                            .run()?
                            .map_or(Ok(0), |c| c.get_i64("seq"))?;
                        if self.exists(child.table(), last + 1)? {
                            return Err(format!("key {} exists", last + 1).into());
                        }
                        let counter = counters
                            .find_one_and_update(
                                doc! { "_id": child.table() },
                                doc! { "$inc": { "seq": 1i64 } },
                            )
                            .upsert(true)
                            .return_document(ReturnDocument::After)
                            .run()?
                            .ok_or("the counter's upsert returned nothing")?;
                        let n = counter.get_i64("seq")?;
                        rows.insert_one(doc! { "_id": n, "parent": parent, "v": v })
                            .run()?;
                    } else {
                        // No _id: the driver makes an ObjectId.
                        rows.insert_one(doc! { "parent": parent, "v": v }).run()?;
                    }
                }
                Write::Update { child, parent } => {
                    self.coll(child.table())
                        .update_many(doc! { "parent": parent }, doc! { "$inc": { "v": 1i64 } })
                        .run()?;
                }
                Write::RekeyChildren { child, parent } => {
                    if !child.keyed() {
                        return Ok(());
                    }
                    let rows = self.coll(child.table());
                    let moving = rows
                        .find(doc! { "parent": parent })
                        .sort(doc! { "_id": 1 })
                        .run()?
                        .collect::<std::result::Result<Vec<Document>, _>>()?;
                    for row in &moving {
                        let to = row.get_i64("_id")? + 1000;
                        if self.exists(child.table(), to)? {
                            return Err(format!("key {to} exists").into());
                        }
                    }
                    for mut row in moving {
                        let id = row.get_i64("_id")?;
                        row.insert("_id", id + 1000);
                        rows.insert_one(row).run()?;
                        rows.delete_one(doc! { "_id": id }).run()?;
                    }
                }
                Write::DeleteOne { child, parent, v } => {
                    self.coll(child.table())
                        .delete_one(doc! { "parent": parent, "v": v })
                        .run()?;
                }
                Write::DeleteAll { child, v } => {
                    self.coll(child.table())
                        .delete_many(doc! { "v": v })
                        .run()?;
                }
                Write::Transaction { ref writes, commit } => {
                    if !commit {
                        return Ok(()); // the app rolled it back: nothing of it reached the server
                    }
                    let before = self.contents()?;
                    for w in writes {
                        if let Err(e) = self.apply(w) {
                            self.put_back(&before)?;
                            return Err(e);
                        }
                    }
                }
            }
            Ok(())
        }

        /// The shop's collections as `before` holds them (a transaction's own rollback).
        fn put_back(
            &self,
            before: &[(String, Vec<Document>)],
        ) -> std::result::Result<(), Rejected> {
            for (name, _) in self.contents()? {
                if !before.iter().any(|(b, _)| *b == name) {
                    self.coll(&name).drop().run()?;
                }
            }
            for (name, docs) in before {
                self.coll(name).delete_many(doc! {}).run()?;
                if !docs.is_empty() {
                    self.coll(name).insert_many(docs).run()?;
                }
            }
            Ok(())
        }
    }

    impl capture::CaptureProbe for Shop {
        fn write(&self, write: &Write) -> Result<()> {
            self.apply(write)
                .map_err(|e| Error::backend("mongodb", "probe write", e))
        }

        fn dump(&self) -> Result<Vec<String>> {
            let contents = self
                .contents()
                .map_err(|e| Error::backend("mongodb", "probe dump", e))?;
            let mut out = Vec::new();
            for (name, docs) in contents {
                out.push(format!("collection {name}"));
                let mut lines: Vec<String> = docs
                    .into_iter()
                    .map(|d| format!("{name}: {}", Bson::Document(d).into_canonical_extjson()))
                    .collect();
                lines.sort();
                out.extend(lines);
            }
            Ok(out)
        }
    }

    /// Every named check, then `cases` random programs after the suite's seed data
    /// (the proptest seed fixed unless `VENOMQA_PROPTEST_SEED` says otherwise): 256, as on
    /// every capture backend, though SecantusDB makes them the slowest (about 2-3 min).
    #[test]
    fn mongodb_capture_is_exact() {
        let shop = Shop::fresh();
        super::capture_exact::check_capture(ENTRY, &shop, 256);
    }
}
