//! The backend of `#[venom_test]` inferred from the session parameter's type: every
//! built-in typed session runs on its own backend (and that backend's `venomqa.yaml`
//! entry) with no `backend = ".."`; a registration of the type's backend under another
//! name runs too; a configuration entry or a registration for another backend fails the
//! test before its body runs, saying which entry and file chose it. (A built-in backend
//! named in the attribute that is not the type's is a compile error: `ui/fail`.)

use venomqa::memory::{Memory, MemorySession};
use venomqa::sqlite::SqliteSession;
use venomqa::{venom_test, Manager};

// The memory backend under another name.
venomqa::register_backend!("scratch", |_config| Ok(Manager::new(Memory)));

#[venom_test]
fn sqlite_is_inferred(db: &mut SqliteSession) {
    assert_eq!(
        (db.backend_name(), db.config().entry.as_str()),
        ("sqlite", "sqlite")
    );
    // The `sqlite` entry of tests/venomqa.yaml applies: its setup created `items`.
    db.conn()
        .execute("INSERT INTO items (marker) VALUES ('inferred')", [])
        .unwrap();
    let n: i64 = db
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM items WHERE marker = 'inferred'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[venom_test]
fn memory_is_inferred(db: &mut MemorySession) {
    assert_eq!(
        (db.backend_name(), db.config().entry.as_str()),
        ("memory", "memory")
    );
    db.connection().set("k", "v");
    assert_eq!(db.connection_ref().get("k"), Some("v"));
}

#[venom_test(backend = "scratch")]
fn a_factory_of_the_types_backend_runs(db: &mut MemorySession) {
    assert_eq!(db.backend_name(), "scratch");
    db.connection().set("k", "v");
}

#[venom_test(config = "sqlite_file")]
#[should_panic(
    expected = "its parameter is a session on \"memory\", but config = \"sqlite_file\" (in "
)]
fn an_entry_for_another_backend_fails_naming_it(_db: &mut MemorySession) {
    unreachable!("the body does not run");
}

#[venom_test(backend = "scratch")]
#[should_panic(
    expected = "its parameter is a session on \"sqlite\", but backend = \"scratch\" is registered for another type;"
)]
fn a_registration_for_another_backend_fails_naming_it(_db: &mut SqliteSession) {
    unreachable!("the body does not run");
}

/// The message names the file the entry came from and says what to do.
#[test]
fn the_entry_conflict_message_is_one_clear_line() {
    let message = std::panic::catch_unwind(|| {
        an_entry_for_another_backend_fails_naming_it();
    })
    .expect_err("the test fails");
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message")
        .clone();
    assert!(message.contains("tests/venomqa.yaml"), "{message}");
    assert!(
        message.contains("venomqa.yaml) is for \"sqlite\""),
        "{message}"
    );
    assert!(
        message.contains("take `&mut venomqa::Session` or the session type of \"sqlite\""),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.len() <= 300 + "tests/venomqa.yaml".len() + env!("CARGO_MANIFEST_DIR").len(),
        "{} chars: {message}",
        message.len()
    );
}

#[cfg(feature = "mysql")]
#[venom_test]
fn mysql_is_inferred(db: &mut venomqa::mysql::MySqlSession) {
    use venomqa::mysql::driver::prelude::Queryable;
    assert_eq!(
        (db.backend_name(), db.config().entry.as_str()),
        ("mysql", "mysql")
    );
    // The `mysql` entry's setup created the shared tables.
    db.conn()
        .query_drop("INSERT INTO vq_mysql_items (label) VALUES ('vq_inferred')")
        .unwrap();
    let n: Option<i64> = db
        .conn()
        .query_first("SELECT COUNT(*) FROM vq_mysql_items WHERE label = 'vq_inferred'")
        .unwrap();
    assert_eq!(n, Some(1), "only this test's uncommitted row");
}

#[cfg(feature = "postgres")]
#[venom_test]
fn postgres_is_inferred(db: &mut venomqa::postgres::PostgresSession) {
    assert_eq!(
        (db.backend_name(), db.config().entry.as_str()),
        ("postgres", "postgres")
    );
    db.client()
        .batch_execute("CREATE TEMP TABLE vq_inferred (v INT); INSERT INTO vq_inferred VALUES (7)")
        .unwrap();
    let v: i32 = db
        .client()
        .query_one("SELECT v FROM vq_inferred", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, 7);
}

#[cfg(feature = "redis")]
#[venom_test]
fn redis_is_inferred(db: &mut venomqa::redis::RedisSession) {
    use venomqa::redis::redis;
    assert_eq!(
        (db.backend_name(), db.config().entry.as_str()),
        ("redis", "redis")
    );
    redis::cmd("SET")
        .arg("vq_inferred")
        .arg("x")
        .exec(db.conn())
        .unwrap();
    let v: String = redis::cmd("GET")
        .arg("vq_inferred")
        .query(db.conn())
        .unwrap();
    assert_eq!(v, "x");
}

#[cfg(feature = "mongodb")]
#[venom_test]
fn mongodb_is_inferred(db: &mut venomqa::mongodb::MongoDbSession) {
    use venomqa::mongodb::bson::{doc, Document};
    assert_eq!(
        (db.backend_name(), db.config().entry.as_str()),
        ("mongodb", "mongodb")
    );
    let items = db.database().collection::<Document>("items");
    items.insert_one(doc! { "v": 7 }).run().unwrap();
    assert_eq!(items.count_documents(doc! {}).run().unwrap(), 1);
}

// The server backends named as well as typed: the compile-time check agrees.
#[cfg(feature = "mysql")]
#[venom_test(backend = "mysql")]
fn mysql_named_and_typed(db: &mut venomqa::mysql::MySqlSession) {
    assert_eq!(db.backend_name(), "mysql");
}

#[cfg(feature = "postgres")]
#[venom_test(backend = "postgres")]
fn postgres_named_and_typed(db: &mut venomqa::postgres::PostgresSession) {
    assert_eq!(db.backend_name(), "postgres");
}

#[cfg(feature = "redis")]
#[venom_test(backend = "redis")]
fn redis_named_and_typed(db: &mut venomqa::redis::RedisSession) {
    assert_eq!(db.backend_name(), "redis");
}

#[cfg(feature = "mongodb")]
#[venom_test(backend = "mongodb")]
fn mongodb_named_and_typed(db: &mut venomqa::mongodb::MongoDbSession) {
    assert_eq!(db.backend_name(), "mongodb");
}

/// `Session` says no backend: it runs where the attribute says.
#[venom_test(backend = "scratch")]
fn untyped_sessions_run_where_the_attribute_says(db: &mut venomqa::Session) {
    assert_eq!(db.backend_name(), "scratch");
    assert!(db
        .state_manager()
        .is::<venomqa::Connected<venomqa::memory::Memory>>());
}
