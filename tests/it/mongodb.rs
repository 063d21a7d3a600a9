#![cfg(feature = "mongodb")]
//! The MongoDB backend against a real server (`VENOMQA_MONGODB_URL`, default
//! `mongodb://127.0.0.1:27017`; the project's CI starts SecantusDB there). Every check reads
//! the data back through a second, independent client.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::time::Duration;

use venomqa::mongodb::bson::{
    doc, oid::ObjectId, spec::BinarySubtype, Binary, Bson, DateTime, Decimal128, Document,
};
use venomqa::mongodb::driver::sync::{Client, Database};
use venomqa::mongodb::{Isolation, MongoDb, MongoDbSession, MongoDbStateManager, LEASES_DATABASE};
use venomqa::{venom_test, Backend, BackendConfig, Error, Manager, StateManager};

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

fn database_names() -> BTreeSet<String> {
    OTHER
        .list_database_names()
        .run()
        .unwrap()
        .into_iter()
        .collect()
}

/// Every document of a collection, sorted by `_id`, read by the independent client.
fn documents(db: &str, collection: &str) -> Vec<Document> {
    other_db(db)
        .collection::<Document>(collection)
        .find(doc! {})
        .sort(doc! { "_id": 1 })
        .run()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// `(name, type, options)` of every collection, by the independent client.
fn collections(db: &str) -> Vec<(String, String, Document)> {
    let mut out: Vec<(String, String, Document)> = other_db(db)
        .run_cursor_command(doc! { "listCollections": 1 })
        .run()
        .unwrap()
        .map(|c| {
            let c = c.unwrap();
            (
                c.get_str("name").unwrap().to_owned(),
                c.get_str("type").unwrap_or("collection").to_owned(),
                c.get_document("options").cloned().unwrap_or_default(),
            )
        })
        .filter(|(name, _, _)| !name.starts_with("system."))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The `listIndexes` specs of a collection, sorted by name, by the independent client.
fn indexes(db: &str, collection: &str) -> Vec<Document> {
    let mut out: Vec<Document> = other_db(db)
        .run_cursor_command(doc! { "listIndexes": collection })
        .run()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    out.sort_by(|a, b| a.get_str("name").unwrap().cmp(b.get_str("name").unwrap()));
    out
}

/// The backend on the test server, with `mongodb_test` as the base of its database names.
fn mongo() -> MongoDb {
    MongoDb::from_url(&url())
        .expect("a valid MongoDB URL")
        .database("mongodb_test")
}

fn manager() -> MongoDbStateManager {
    Manager::new(mongo())
}

/// Documents of every awkward BSON type, nested.
fn typed_documents() -> Vec<Document> {
    let when = DateTime::from_millis(1_700_000_000_123);
    (0..50)
        .map(|i| {
            doc! {
                "_id": ObjectId::new(),
                "n": i,
                "long": i64::from(i) << 40,
                "double": f64::from(i) + 0.5,
                "price": "12.30".parse::<Decimal128>().unwrap(),
                "at": when,
                "blob": Binary { subtype: BinarySubtype::Generic, bytes: vec![0, 1, 2, 255, i as u8] },
                "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: vec![7; 16] },
                "nothing": Bson::Null,
                "ts": Bson::Timestamp(venomqa::mongodb::bson::Timestamp { time: 1_700_000_000, increment: i as u32 }),
                "nested": {
                    "tags": ["a", 1, 2.5, [1, [2, [3]]], { "deep": { "at": when, "id": ObjectId::new() } }],
                    "empty_doc": {},
                    "empty_array": [],
                },
            }
        })
        .collect()
}

#[venom_test(backend = "mongodb")]
fn bson_types_come_back_equal_after_rollback(db: &mut MongoDbSession) {
    let name = db.database_name().to_owned();
    assert!(name.starts_with("vq_"), "{name}");
    assert!(
        collections(&name).is_empty(),
        "a test starts on an empty database"
    );
    let items = db.database().collection::<Document>("items");
    let original = typed_documents();
    items.insert_many(&original).run().unwrap();
    let before = documents(&name, "items");
    assert_eq!(before.len(), 50);

    db.create_checkpoint("typed").unwrap();
    items
        .delete_many(doc! { "n": { "$lt": 10 } })
        .run()
        .unwrap();
    items
        .update_many(
            doc! {},
            doc! { "$set": { "price": 1.5, "at": "a string now" } },
        )
        .run()
        .unwrap();
    items
        .insert_one(doc! { "_id": ObjectId::new(), "n": 999 })
        .run()
        .unwrap();
    assert_ne!(documents(&name, "items"), before);
    db.rollback("typed").unwrap();

    let after = documents(&name, "items");
    assert_eq!(
        after, before,
        "every document, every type, equal after rollback"
    );
    let mut sorted = original.clone();
    sorted.sort_by_key(|d| d.get_object_id("_id").unwrap());
    assert_eq!(after, sorted, "equal to what was inserted");
    // Type for type: Document equality already distinguishes Int32 from Int64 and a
    // Decimal128 from a string; spell a few out anyway.
    let first = &after[0];
    assert!(matches!(first.get("n"), Some(Bson::Int32(_))));
    assert!(matches!(first.get("long"), Some(Bson::Int64(_))));
    assert!(matches!(first.get("price"), Some(Bson::Decimal128(_))));
    assert!(matches!(first.get("at"), Some(Bson::DateTime(_))));
    assert!(matches!(first.get("uuid"), Some(Bson::Binary(b)) if b.subtype == BinarySubtype::Uuid));
    assert!(matches!(first.get("ts"), Some(Bson::Timestamp(_))));
}

#[venom_test(backend = "mongodb")]
fn collections_created_or_dropped_after_a_checkpoint_are_undone(db: &mut MongoDbSession) {
    let name = db.database_name().to_owned();
    let d = db.database();
    d.collection::<Document>("keep")
        .insert_one(doc! { "_id": 1, "v": "keep" })
        .run()
        .unwrap();
    d.collection::<Document>("doomed")
        .insert_one(doc! { "_id": 1, "v": "doomed" })
        .run()
        .unwrap();
    d.create_collection("validated")
        .validator(doc! { "v": { "$type": "int" } })
        .run()
        .unwrap();
    d.collection::<Document>("validated")
        .insert_one(doc! { "_id": 1, "v": 5 })
        .run()
        .unwrap();
    d.create_collection("empty").run().unwrap();
    d.run_command(doc! { "create": "keep_view", "viewOn": "keep", "pipeline": [{ "$match": { "v": "keep" } }] })
        .run()
        .unwrap();
    let before = collections(&name);
    let doomed = documents(&name, "doomed");

    db.checkpoint("reshaped", |db| {
        let d = db.database();
        d.collection::<Document>("doomed").drop().run().unwrap();
        d.collection::<Document>("empty").drop().run().unwrap();
        d.collection::<Document>("keep_view").drop().run().unwrap();
        d.collection::<Document>("validated").drop().run().unwrap();
        d.create_collection("validated").run().unwrap(); // same name, no validator
        d.collection::<Document>("brand_new")
            .insert_one(doc! { "x": 1 })
            .run()
            .unwrap();
        d.run_command(doc! { "create": "new_view", "viewOn": "keep", "pipeline": [] })
            .run()
            .unwrap();
        assert_ne!(collections(&name), before);
    })
    .unwrap();

    assert_eq!(
        collections(&name),
        before,
        "names, types and options as before the checkpoint"
    );
    assert_eq!(documents(&name, "doomed"), doomed);
    assert_eq!(
        documents(&name, "validated"),
        vec![doc! { "_id": 1, "v": 5 }]
    );
    assert!(documents(&name, "empty").is_empty());
    // The restored validator is in force again.
    assert!(d
        .collection::<Document>("validated")
        .insert_one(doc! { "v": "text" })
        .run()
        .is_err());
    // The view works again.
    assert_eq!(
        documents(&name, "keep_view"),
        vec![doc! { "_id": 1, "v": "keep" }]
    );
}

#[venom_test(backend = "mongodb")]
fn indexes_survive_rollback(db: &mut MongoDbSession) {
    let name = db.database_name().to_owned();
    let d = db.database();
    let users = d.collection::<Document>("users");
    users
        .insert_many([
            doc! { "email": "ann@example.com", "age": 31 },
            doc! { "email": "bob@example.com", "age": 42 },
        ])
        .run()
        .unwrap();
    d.run_command(doc! { "createIndexes": "users", "indexes": [
        { "key": { "email": 1 }, "name": "email_unique", "unique": true },
        { "key": { "age": -1, "email": 1 }, "name": "age_email" },
        { "key": { "nick": 1 }, "name": "nick_sparse", "sparse": true },
        { "key": { "seen": 1 }, "name": "seen_ttl", "expireAfterSeconds": 3600 },
        { "key": { "age": 1 }, "name": "adults", "partialFilterExpression": { "age": { "$gte": 18 } } },
    ] })
    .run()
    .unwrap();
    let before = indexes(&name, "users");
    assert_eq!(before.len(), 6, "{before:?}");

    db.create_checkpoint("indexed").unwrap();
    d.run_command(doc! { "dropIndexes": "users", "index": "email_unique" })
        .run()
        .unwrap();
    d.run_command(
        doc! { "createIndexes": "users", "indexes": [{ "key": { "zzz": 1 }, "name": "zzz_1" }] },
    )
    .run()
    .unwrap();
    users
        .insert_one(doc! { "email": "ann@example.com" })
        .run()
        .unwrap(); // a duplicate, allowed now
    db.rollback("indexed").unwrap();
    assert_eq!(
        indexes(&name, "users"),
        before,
        "index specs equal after rollback"
    );
    assert!(
        users
            .insert_one(doc! { "email": "ann@example.com" })
            .run()
            .is_err(),
        "the unique index is enforced again"
    );

    // A dropped collection comes back with its indexes too.
    users.drop().run().unwrap();
    db.rollback("indexed").unwrap();
    assert_eq!(indexes(&name, "users"), before);
    assert_eq!(documents(&name, "users").len(), 2);
}

#[venom_test(backend = "mongodb")]
fn nested_checkpoints(db: &mut MongoDbSession) {
    let name = db.database_name().to_owned();
    let c = db.database().collection::<Document>("steps");
    let count = || documents(&name, "steps").len();
    c.insert_one(doc! { "step": 1 }).run().unwrap();
    db.create_checkpoint("one").unwrap();
    c.insert_one(doc! { "step": 2 }).run().unwrap();
    db.create_checkpoint("two").unwrap();
    c.insert_one(doc! { "step": 3 }).run().unwrap();
    db.create_checkpoint("three").unwrap();
    c.insert_one(doc! { "step": 4 }).run().unwrap();
    assert_eq!(count(), 4);

    db.rollback("three").unwrap();
    assert_eq!(count(), 3);
    db.rollback("one").unwrap();
    assert_eq!(count(), 1);
    assert_eq!(
        db.checkpoints(),
        ["venomqa_root", "one"],
        "rollback drops the later checkpoints"
    );
    assert!(matches!(
        db.rollback("two"),
        Err(Error::UnknownCheckpoint { .. })
    ));

    // A block inside a block: each undoes its own changes only.
    db.checkpoint("outer", |db| {
        c.insert_one(doc! { "step": "outer" }).run().unwrap();
        db.checkpoint("inner", |_| {
            c.delete_many(doc! {}).run().unwrap();
            assert_eq!(count(), 0);
        })
        .unwrap();
        assert_eq!(count(), 2);
    })
    .unwrap();
    assert_eq!(count(), 1);

    // Release keeps the changes; the root still undoes them at the end.
    db.create_checkpoint("kept").unwrap();
    c.insert_one(doc! { "step": "kept" }).run().unwrap();
    db.release("kept").unwrap();
    assert_eq!(count(), 2);
    db.rollback("one").unwrap();
    assert_eq!(count(), 1);

    // A panicking block is rolled back before the panic goes on.
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        db.checkpoint("panics", |_| {
            c.insert_one(doc! { "step": "panic" }).run().unwrap();
            panic!("boom");
        })
    }));
    assert!(caught.is_err());
    assert_eq!(count(), 1);
    assert_eq!(db.checkpoints(), ["venomqa_root", "one"]);
}

#[test]
fn the_database_is_dropped_when_the_test_ends() {
    let db = MongoDbSession::start("mongodb").unwrap();
    let name = db.database_name().to_owned();
    db.database()
        .collection::<Document>("t")
        .insert_one(doc! { "x": 1 })
        .run()
        .unwrap();
    assert!(database_names().contains(&name));
    db.finish().unwrap();
    assert!(
        !database_names().contains(&name),
        "{name} is dropped at the end of the test"
    );

    // The pooled manager keeps its name (and its lease record) and starts empty again.
    let db = MongoDbSession::start("mongodb").unwrap();
    assert!(collections(db.database_name()).is_empty());
    let lease = other_db(LEASES_DATABASE)
        .collection::<Document>("leases")
        .find_one(doc! { "_id": db.database_name() })
        .run()
        .unwrap()
        .expect("a lease record for the leased database");
    assert_eq!(lease.get_i64("pid").unwrap(), i64::from(std::process::id()));
    db.finish().unwrap();
}

#[test]
fn sixteen_parallel_tests_in_separate_databases() {
    let mut config = BackendConfig::new("mongodb").with_url(url());
    config.entry = "vq_mongodb_parallel16".into();
    config.pool_size = Some(16);
    let barrier = Arc::new(Barrier::new(16));
    let names = Arc::new(Mutex::new(BTreeSet::new()));
    std::thread::scope(|s| {
        for i in 0..16 {
            let (config, barrier, names) = (config.clone(), barrier.clone(), names.clone());
            s.spawn(move || {
                let mut db = MongoDbSession::builder()
                    .with_config(config)
                    .name(format!("parallel_{i}"))
                    .open()
                    .unwrap();
                let name = db.database_name().to_owned();
                assert!(collections(&name).is_empty());
                let marks = db.database().collection::<Document>("marks");
                marks
                    .insert_one(doc! { "_id": i, "worker": i })
                    .run()
                    .unwrap();
                names.lock().unwrap().insert(name.clone());
                barrier.wait(); // all 16 hold their databases now
                assert_eq!(
                    documents(&name, "marks"),
                    vec![doc! { "_id": i, "worker": i }],
                    "only its own writes"
                );
                db.checkpoint("inner", |db| {
                    db.database()
                        .collection::<Document>("marks")
                        .delete_many(doc! {})
                        .run()
                        .unwrap();
                })
                .unwrap();
                assert_eq!(documents(&name, "marks").len(), 1);
                barrier.wait();
                db.finish().unwrap();
                assert!(!database_names().contains(&name));
            });
        }
    });
    let names = names.lock().unwrap();
    assert_eq!(names.len(), 16, "16 distinct databases: {names:?}");
    let stats = MongoDbSession::builder().with_config(config).pool_stats();
    assert_eq!(stats.unwrap().opened, 16);
}

#[test]
fn template_database_seeds_every_test() {
    let template = format!("venomqa_test_template_{}", std::process::id());
    let t = other_db(&template);
    t.drop().run().unwrap();
    let seed = typed_documents();
    t.collection::<Document>("products")
        .insert_many(&seed)
        .run()
        .unwrap();
    t.run_command(doc! { "createIndexes": "products", "indexes": [{ "key": { "n": 1 }, "name": "n_unique", "unique": true }] })
        .run()
        .unwrap();
    t.create_collection("capped_log")
        .capped(true)
        .size(65536)
        .run()
        .unwrap();
    t.collection::<Document>("capped_log")
        .insert_one(doc! { "_id": 1, "line": "hello" })
        .run()
        .unwrap();

    let mut m = Manager::new(mongo().template_database(&template));
    m.connect().unwrap();
    let name = m.database_name().to_owned();
    // A setup function may use the client before the first test (to fill the template):
    // the template is still copied, since the database is found empty.
    let _client = m.client();
    for round in 0..2 {
        m.checkpoint("venomqa_root").unwrap();
        assert_eq!(collections(&name), collections(&template), "round {round}");
        assert_eq!(
            documents(&name, "products"),
            documents(&template, "products")
        );
        assert_eq!(indexes(&name, "products").len(), 2);
        assert_eq!(
            documents(&name, "capped_log"),
            vec![doc! { "_id": 1, "line": "hello" }]
        );
        // The test changes its copy, never the template.
        let products = m.database().collection::<Document>("products");
        products.delete_many(doc! {}).run().unwrap();
        m.database()
            .collection::<Document>("extra")
            .insert_one(doc! { "x": 1 })
            .run()
            .unwrap();
        // Rolling back to the root re-copies the template.
        m.rollback("venomqa_root").unwrap();
        assert_eq!(documents(&name, "products").len(), 50);
        assert!(!collections(&name).iter().any(|(c, _, _)| c == "extra"));
        products.delete_many(doc! {}).run().unwrap();
        m.discard("venomqa_root").unwrap();
        assert!(
            !database_names().contains(&name),
            "dropped at the end of each test"
        );
    }
    assert_eq!(
        documents(&template, "products").len(),
        50,
        "the template is untouched"
    );
    m.disconnect().unwrap();
    t.drop().run().unwrap();
}

#[test]
fn collections_to_reset_limits_what_is_snapshotted_and_reset() {
    let mut m = Manager::new(mongo().collections_to_reset(["orders"]));
    m.connect().unwrap();
    let name = m.database_name().to_owned();
    let d = m.database();
    d.collection::<Document>("orders")
        .insert_one(doc! { "_id": 1 })
        .run()
        .unwrap();
    d.collection::<Document>("audit")
        .insert_one(doc! { "_id": 1 })
        .run()
        .unwrap();
    m.checkpoint("a").unwrap();
    d.collection::<Document>("orders")
        .insert_one(doc! { "_id": 2 })
        .run()
        .unwrap();
    d.collection::<Document>("audit")
        .insert_one(doc! { "_id": 2 })
        .run()
        .unwrap();
    d.collection::<Document>("other")
        .insert_one(doc! { "_id": 1 })
        .run()
        .unwrap();
    m.rollback("a").unwrap();
    assert_eq!(documents(&name, "orders"), vec![doc! { "_id": 1 }]);
    assert_eq!(
        documents(&name, "audit").len(),
        2,
        "outside collections_to_reset: not rolled back"
    );
    assert_eq!(documents(&name, "other").len(), 1);

    // reset() first rolls back to (and forgets) the active checkpoints: release "a", so the
    // index below is part of what reset() finds.
    m.release("a").unwrap();
    d.run_command(
        doc! { "createIndexes": "orders", "indexes": [{ "key": { "k": 1 }, "name": "k_1" }] },
    )
    .run()
    .unwrap();
    m.reset().unwrap();
    assert!(m.checkpoints().is_empty());
    assert!(
        documents(&name, "orders").is_empty(),
        "reset empties collections_to_reset"
    );
    assert_eq!(indexes(&name, "orders").len(), 2, "and keeps their indexes");
    assert_eq!(documents(&name, "audit").len(), 2);
    m.disconnect().unwrap();
    assert!(
        !database_names().contains(&name),
        "disconnect drops the database"
    );
}

#[test]
fn shared_isolation_works_in_the_named_database() {
    let shared = format!("venomqa_test_shared_{}", std::process::id());
    other_db(&shared).drop().run().unwrap();
    other_db(&shared)
        .collection::<Document>("kv")
        .insert_one(doc! { "_id": "k", "v": 1 })
        .run()
        .unwrap();
    let mut m = Manager::new(
        MongoDb::from_url(&url())
            .unwrap()
            .database(&shared)
            .isolation(Isolation::Shared),
    );
    m.connect().unwrap();
    assert_eq!(m.database_name(), shared);
    m.checkpoint("start").unwrap();
    let kv = m.database().collection::<Document>("kv");
    kv.update_one(doc! { "_id": "k" }, doc! { "$set": { "v": 2 } })
        .run()
        .unwrap();
    kv.insert_one(doc! { "_id": "new" }).run().unwrap();
    m.discard("start").unwrap();
    assert_eq!(documents(&shared, "kv"), vec![doc! { "_id": "k", "v": 1 }]);
    m.disconnect().unwrap();
    assert!(
        database_names().contains(&shared),
        "a shared database is not dropped"
    );
    other_db(&shared).drop().run().unwrap();
}

/// Drops fabricated databases and their lease records even when the test fails.
struct DropOnExit(Vec<String>);

impl Drop for DropOnExit {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = other_db(name).drop().run();
            let _ = other_db(LEASES_DATABASE)
                .collection::<Document>("leases")
                .delete_one(doc! { "_id": name })
                .run();
        }
    }
}

/// The server's clock, read by the independent client.
fn server_now() -> DateTime {
    *OTHER
        .database("admin")
        .run_command(doc! { "hello": 1 })
        .run()
        .unwrap()
        .get_datetime("localTime")
        .unwrap()
}

fn plus_ms(t: DateTime, ms: i64) -> DateTime {
    DateTime::from_millis(t.timestamp_millis() + ms)
}

/// A lease record of another machine's process that heartbeat at `heartbeat` with a TTL
/// of `ttl_ms`.
fn lease_record(name: &str, machine: &str, pid: i64, heartbeat: DateTime, ttl_ms: i64) -> Document {
    doc! { "_id": name, "owner": "fabricated", "host": "elsewhere", "machine": machine, "pid": pid,
    "created": heartbeat, "heartbeat": heartbeat, "ttl_ms": ttl_ms, "expires_at": plus_ms(heartbeat, ttl_ms) }
}

fn fabricate_database(name: &str, lease: Option<Document>) {
    if let Some(lease) = lease {
        other_db(LEASES_DATABASE)
            .collection::<Document>("leases")
            .insert_one(lease)
            .run()
            .unwrap();
    }
    other_db(name)
        .collection::<Document>("left")
        .insert_one(doc! { "x": 1 })
        .run()
        .unwrap();
}

#[test]
fn sweep_drops_abandoned_databases_and_spares_live_ones() {
    let pid = std::process::id();
    let tag = format!("{:06x}", pid & 0xff_ffff);
    let silent = format!("vq_fab_{pid}_1_{tag}");
    let no_record = format!("vq_fab_{pid}_2_{tag}");
    let alive_elsewhere = format!("vq_fab_{pid}_3_{tag}");
    let now = server_now();
    let hour_ago = plus_ms(now, -3_600_000);
    let _cleanup = DropOnExit(vec![
        silent.clone(),
        no_record.clone(),
        alive_elsewhere.clone(),
    ]);
    fabricate_database(
        &silent,
        Some(lease_record(
            &silent,
            "another-machine",
            1,
            hour_ago,
            600_000,
        )),
    );
    fabricate_database(&no_record, None);
    fabricate_database(
        &alive_elsewhere,
        Some(lease_record(
            &alive_elsewhere,
            "another-machine",
            1,
            now,
            600_000,
        )),
    );

    let mut m = manager();
    m.connect().unwrap();
    m.database()
        .collection::<Document>("mine")
        .insert_one(doc! { "x": 1 })
        .run()
        .unwrap();
    m.sweep_stale_databases().unwrap();
    let names = database_names();
    assert!(
        !names.contains(&silent),
        "a silent remote owner's database is dropped"
    );
    assert!(
        !names.contains(&no_record),
        "a database without a lease record is dropped"
    );
    assert!(
        names.contains(&alive_elsewhere),
        "a live remote owner's database is kept"
    );
    assert!(
        names.contains(m.database_name()),
        "our own database is kept"
    );
    let leases = other_db(LEASES_DATABASE).collection::<Document>("leases");
    assert!(leases
        .find_one(doc! { "_id": &silent })
        .run()
        .unwrap()
        .is_none());
    m.disconnect().unwrap();
}

/// A sweeper configured with a short TTL must not drop the databases of an owner with a
/// longer one: each record carries its owner's expiry, in server time.
#[test]
fn a_sweeper_uses_each_owners_expiry_in_server_time() {
    let pid = std::process::id();
    let tag = format!("{:06x}", pid & 0xff_ffff);
    let default_owner = format!("vq_fab_{pid}_11_{tag}");
    let expired = format!("vq_fab_{pid}_12_{tag}");
    let _cleanup = DropOnExit(vec![default_owner.clone(), expired.clone()]);
    let now = server_now();
    // Heartbeat 45 s ago, TTL 600 s (the default): alive for another 555 s.
    fabricate_database(
        &default_owner,
        Some(lease_record(
            &default_owner,
            "another-machine",
            1,
            plus_ms(now, -45_000),
            600_000,
        )),
    );
    // Heartbeat 45 s ago, TTL 30 s: expired 15 s ago.
    fabricate_database(
        &expired,
        Some(lease_record(
            &expired,
            "another-machine",
            1,
            plus_ms(now, -45_000),
            30_000,
        )),
    );

    let mut m = Manager::new(mongo().lease_ttl(Duration::from_secs(30)));
    m.connect().unwrap();
    m.sweep_stale_databases().unwrap();
    let names = database_names();
    assert!(
        names.contains(&default_owner),
        "an owner whose own expiry has not passed is kept, whatever the sweeper's TTL"
    );
    assert!(
        !names.contains(&expired),
        "an owner past its own expiry is dropped"
    );

    // Our own record: written in server time, with our TTL, and renewed by the heartbeat.
    let leases = other_db(LEASES_DATABASE).collection::<Document>("leases");
    let name = m.database_name().to_owned();
    let ours = leases
        .find_one(doc! { "_id": &name })
        .run()
        .unwrap()
        .unwrap();
    let heartbeat = ours.get_datetime("heartbeat").unwrap().timestamp_millis();
    let expires = ours.get_datetime("expires_at").unwrap().timestamp_millis();
    assert_eq!(ours.get_i64("ttl_ms").unwrap(), 30_000);
    assert_eq!(
        expires - heartbeat,
        30_000,
        "expires_at = heartbeat + the owner's TTL"
    );
    let skew = (heartbeat - now.timestamp_millis()).abs();
    assert!(
        skew < 120_000,
        "the heartbeat is the server's time: {ours:?} vs {now:?}"
    );
    m.disconnect().unwrap();

    // The heartbeat renews it (every TTL/4, at least every 250 ms): poll for a later expiry.
    let mut m = Manager::new(mongo().lease_ttl(Duration::from_secs(1)));
    m.connect().unwrap();
    let name = m.database_name().to_owned();
    let expiry = || {
        leases
            .find_one(doc! { "_id": &name })
            .run()
            .unwrap()
            .unwrap()
            .get_datetime("expires_at")
            .unwrap()
            .timestamp_millis()
    };
    let first = expiry();
    let renewed = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        expiry() > first
    });
    assert!(renewed, "the heartbeat moves expires_at forward");
    m.disconnect().unwrap();
    assert!(leases
        .find_one(doc! { "_id": &name })
        .run()
        .unwrap()
        .is_none());
}

/// `database_name()` hands out the database as surely as `database()` does: data written
/// through it before the first checkpoint is part of that checkpoint.
#[test]
fn first_checkpoint_keeps_data_written_through_the_database_name() {
    let mut m = manager();
    m.connect().unwrap();
    let name = m.database_name().to_owned();
    other_db(&name)
        .collection::<Document>("seeded")
        .insert_many([doc! { "_id": 1 }, doc! { "_id": 2 }])
        .run()
        .unwrap();
    m.checkpoint("seeded").unwrap();
    other_db(&name)
        .collection::<Document>("seeded")
        .insert_one(doc! { "_id": 3 })
        .run()
        .unwrap();
    m.rollback("seeded").unwrap();
    assert_eq!(
        documents(&name, "seeded"),
        vec![doc! { "_id": 1 }, doc! { "_id": 2 }],
        "the seeded data survives the rollback"
    );
    m.discard("seeded").unwrap();
    assert_eq!(documents(&name, "seeded").len(), 2);
    m.disconnect().unwrap();
}

fn lock_record(database: &str) -> Option<Document> {
    other_db(LEASES_DATABASE)
        .collection::<Document>("locks")
        .find_one(doc! { "_id": format!("shared:{database}") })
        .run()
        .unwrap()
}

/// `isolation: shared`: tests of different processes (nextest) take turns on the database.
#[test]
fn shared_database_is_locked_across_processes() {
    let shared = format!("venomqa_test_sharedlock_{}", std::process::id());
    let _cleanup = DropOnExit(vec![shared.clone()]);
    let shared_manager = |timeout_ms| {
        Manager::new(
            MongoDb::from_url(&url())
                .unwrap()
                .database(&shared)
                .isolation(Isolation::Shared)
                .shared_lock_timeout(Duration::from_millis(timeout_ms)),
        )
    };

    // Another process holds it (its outermost checkpoint is open).
    let mut holder = spawn_helper_with("shared_hold", &[("VQ_MONGODB_SHARED", &shared)]);
    assert_eq!(wait_for_line(&mut holder, "HELD="), shared);
    let lock = lock_record(&shared).expect("the holder's lock");
    assert_eq!(lock.get_i64("pid").unwrap(), i64::from(holder.id()));

    let mut m = shared_manager(500);
    m.connect().unwrap();
    let e = m.checkpoint("mine").unwrap_err();
    assert!(e.to_string().contains("isolation: shared"), "{e}");
    assert!(m.checkpoints().is_empty());
    assert_eq!(
        documents(&shared, "kv"),
        vec![doc! { "_id": "k", "v": "holder" }],
        "the holder's writes are untouched"
    );

    // The holder dies without cleaning up: its lock is taken over at once (same machine).
    holder.kill().unwrap();
    holder.wait().unwrap();
    m.checkpoint("mine").unwrap();
    let lock = lock_record(&shared).expect("our lock");
    assert_eq!(lock.get_i64("pid").unwrap(), i64::from(std::process::id()));

    // Within one process too: a second manager waits, and gets it once the first is done.
    let mut second = shared_manager(300);
    second.connect().unwrap();
    assert!(second.checkpoint("theirs").is_err());
    m.discard("mine").unwrap();
    assert!(
        lock_record(&shared).is_none(),
        "released with the outermost checkpoint"
    );
    second.checkpoint("theirs").unwrap();
    assert!(lock_record(&shared).is_some());
    second.disconnect().unwrap();
    assert!(lock_record(&shared).is_none(), "released at disconnect");
    m.disconnect().unwrap();
}

/// Not a test of its own: the helper process of `killed_process_leaves_nothing_behind`.
#[test]
#[ignore = "helper process, started by killed_process_leaves_nothing_behind"]
fn child_process_helper() {
    match std::env::var("VQ_MONGODB_CHILD").as_deref() {
        Ok("hold") => {
            let mut m = manager();
            m.connect().unwrap();
            m.checkpoint("held").unwrap();
            m.database()
                .collection::<Document>("held")
                .insert_one(doc! { "x": 1 })
                .run()
                .unwrap();
            println!("DB={}", m.database_name());
            std::thread::sleep(Duration::from_secs(120));
        }
        Ok("shared_hold") => {
            let shared = std::env::var("VQ_MONGODB_SHARED").unwrap();
            other_db(&shared)
                .collection::<Document>("kv")
                .insert_one(doc! { "_id": "k", "v": "holder" })
                .run()
                .unwrap();
            let mut m = Manager::new(
                MongoDb::from_url(&url())
                    .unwrap()
                    .database(&shared)
                    .isolation(Isolation::Shared),
            );
            m.connect().unwrap();
            m.checkpoint("held").unwrap();
            println!("HELD={shared}");
            std::thread::sleep(Duration::from_secs(120));
        }
        Ok("connect") => {
            // A new process: its first connection sweeps.
            let mut m = manager();
            m.connect().unwrap();
            m.disconnect().unwrap();
            println!("DONE");
        }
        _ => {}
    }
}

fn spawn_helper(mode: &str) -> std::process::Child {
    spawn_helper_with(mode, &[])
}

fn spawn_helper_with(mode: &str, env: &[(&str, &str)]) -> std::process::Child {
    Command::new(crate::support::this_binary())
        .envs(env.iter().copied())
        .args([
            "mongodb::child_process_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("VQ_MONGODB_CHILD", mode)
        .env("VENOMQA_MONGODB_URL", url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_line(child: &mut std::process::Child, prefix: &str) -> String {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        // libtest prints "test child_process_helper ... " before the test's own output.
        if let Some(at) = line.find(prefix) {
            return line[at + prefix.len()..].trim().to_owned();
        }
    }
    let _ = child.kill();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    panic!("the helper process printed no {prefix:?}: {stderr}");
}

#[test]
fn killed_process_leaves_nothing_behind() {
    let mut holder = spawn_helper("hold");
    let name = wait_for_line(&mut holder, "DB=");
    assert!(database_names().contains(&name));
    let leases = other_db(LEASES_DATABASE).collection::<Document>("leases");
    let lease = leases
        .find_one(doc! { "_id": &name })
        .run()
        .unwrap()
        .expect("lease record");
    assert_eq!(lease.get_i64("pid").unwrap(), i64::from(holder.id()));

    // While its owner lives, nobody drops it.
    let mut m = manager();
    m.connect().unwrap();
    m.sweep_stale_databases().unwrap();
    assert!(
        database_names().contains(&name),
        "a live process's database is kept"
    );
    m.disconnect().unwrap();

    holder.kill().unwrap(); // SIGKILL: no cleanup runs in the child
    holder.wait().unwrap();
    // Left behind by the killed process, unless another process (a concurrent nextest
    // run) connected in the meantime and swept it already: either is fine. What matters is
    // that it is gone once a new process has connected.

    // The next process to connect drops it.
    let next = spawn_helper("connect").wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&next.stdout);
    assert!(
        next.status.success() && stdout.contains("DONE"),
        "{stdout}{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert!(
        !database_names().contains(&name),
        "{name} was dropped by the next process"
    );
    assert!(
        leases
            .find_one(doc! { "_id": &name })
            .run()
            .unwrap()
            .is_none(),
        "and its lease record"
    );
}

#[test]
fn unreachable_server_gives_a_clear_error() {
    let url =
        "mongodb://ann:s3cr3tpw@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300";
    let mut m = Manager::new(MongoDb::from_url(url).unwrap());
    let e = m.connect().unwrap_err();
    let text = e.to_string();
    eprintln!("{text}");
    assert!(matches!(e, Error::Connect { .. }), "{text}");
    assert!(
        text.contains("could not connect to mongodb at mongodb://ann:***@127.0.0.1:1/"),
        "{text}"
    );
    assert!(text.contains("VENOMQA_MONGODB_URL"), "{text}");
    assert!(!text.contains("s3cr3tpw"), "{text}");
    assert!(!m.is_connected());
    assert!(matches!(m.checkpoint("x"), Err(Error::NotConnected { .. })));
}

#[test]
fn bad_url_gives_a_clear_error() {
    for url in [
        "http://127.0.0.1:27017",
        "mongodb://ann:hunter22@127.0.0.1:notaport/",
        "not a url",
    ] {
        let e = MongoDb::from_url(url).unwrap().connect().unwrap_err();
        let text = e.to_string();
        eprintln!("{text}");
        assert!(matches!(e, Error::Connect { .. }), "{text}");
        assert!(
            text.contains("not a valid MongoDB connection string"),
            "{text}"
        );
        assert!(!text.contains("hunter22"), "{text}");
    }
}

#[cfg(feature = "tokio")]
mod async_tests {
    use super::*;
    use venomqa::mongodb::driver;

    #[venom_test(backend = "mongodb")]
    async fn async_tests_get_an_async_handle_and_sync_checkpoints(db: &mut MongoDbSession) {
        let name = db.database_name().to_owned();
        let items = db.async_database().collection::<Document>("items");
        items.insert_many(typed_documents()).await.unwrap();

        // Checkpoints are sync calls, made here from inside the test's runtime.
        db.create_checkpoint("inside_async").unwrap();
        items.delete_many(doc! {}).await.unwrap();
        items.insert_one(doc! { "late": true }).await.unwrap();
        db.rollback("inside_async").unwrap();

        // An independent async client reads back what the server holds.
        let other = driver::Client::with_uri_str(url()).await.unwrap();
        let mut cursor = other
            .database(&name)
            .collection::<Document>("items")
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap();
        let mut back = Vec::new();
        while cursor.advance().await.unwrap() {
            back.push(Document::try_from(cursor.current()).unwrap());
        }
        assert_eq!(back.len(), 50);
        assert!(back
            .iter()
            .all(|d| matches!(d.get("price"), Some(Bson::Decimal128(_)))));
        assert_eq!(
            other
                .database(&name)
                .collection::<Document>("items")
                .count_documents(doc! { "late": true })
                .await
                .unwrap(),
            0
        );

        db.checkpoint("block", |db| {
            // The sync handle works here too (this block runs on the runtime's thread).
            let _ = db.database_name();
        })
        .unwrap();
    }
}

// ---- the checkpoint-semantics suite, and the shape of the messages ----

/// Documents `{ v: <value> }` in the collection `vq_probe` of the session's database.
struct Docs;

impl venomqa::conformance::Probe for Docs {
    fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
        let m = m.connection::<MongoDb>()?;
        m.database()
            .collection::<Document>("vq_probe")
            .insert_one(doc! { "v": value })
            .run()
            .map(drop)
            .map_err(|e| Error::backend("mongodb", "probe insert", e))
    }

    fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
        let m = m.connection::<MongoDb>()?;
        let docs: Vec<Document> = m
            .database()
            .collection::<Document>("vq_probe")
            .find(doc! {})
            .run()
            .and_then(|c| c.collect())
            .map_err(|e| Error::backend("mongodb", "probe read", e))?;
        Ok(docs.iter().filter_map(|d| d.get_i64("v").ok()).collect())
    }
}

#[test]
fn conformance_with_a_database_per_lease() {
    venomqa::conformance::run("mongodb", Docs);
}

#[test]
fn conformance_on_a_shared_database() {
    venomqa::conformance::run("mongodb_shared", Docs);
}

#[test]
fn failed_hooks_leave_the_stack_unchanged() {
    venomqa::conformance::faults(mongo());
    venomqa::conformance::faults(
        MongoDb::from_url(&url())
            .unwrap()
            .database(format!("venomqa_test_faults_{}", std::process::id()))
            .isolation(Isolation::Shared),
    );
    let _ = other_db(&format!("venomqa_test_faults_{}", std::process::id()))
        .drop()
        .run();
}

/// The backend's main errors are one line of at most 300 characters, without runs of
/// spaces, and never show the password.
#[test]
fn error_messages_are_one_short_line() {
    let mut errors: Vec<(&str, Error)> = Vec::new();
    let unreachable =
        "mongodb://ann:s3cr3tpw@127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300";
    errors.push((
        "unreachable",
        MongoDb::from_url(unreachable)
            .unwrap()
            .connect()
            .unwrap_err(),
    ));
    errors.push((
        "bad url",
        MongoDb::from_url("mongodb://ann:s3cr3tpw@127.0.0.1:notaport/")
            .unwrap()
            .connect()
            .unwrap_err(),
    ));
    let config = BackendConfig::new("mongodb")
        .with_option("isolation", "shared")
        .with_option("template_database", "seed");
    errors.push((
        "template with shared",
        MongoDbStateManager::from_config(&config).unwrap_err(),
    ));
    let shared = format!("venomqa_test_msg_{}", std::process::id());
    let _cleanup = DropOnExit(vec![shared.clone()]);
    let shared_backend = || {
        MongoDb::from_url(&url())
            .unwrap()
            .database(&shared)
            .isolation(Isolation::Shared)
            .shared_lock_timeout(Duration::from_millis(200))
    };
    let mut holder = Manager::new(shared_backend());
    holder.connect().unwrap();
    holder.checkpoint("held").unwrap();
    let mut waiter = Manager::new(shared_backend());
    waiter.connect().unwrap();
    errors.push(("shared lock", waiter.checkpoint("mine").unwrap_err()));
    holder.disconnect().unwrap();
    for (what, e) in errors {
        let text = e.to_string();
        println!("{what}: {text}");
        assert!(
            !text.contains('\n') && !text.contains("  "),
            "{what}: not one line: {text}"
        );
        assert!(text.len() <= 300, "{what}: {} chars: {text}", text.len());
        assert!(!text.contains("s3cr3tpw"), "{what}: {text}");
    }
}
