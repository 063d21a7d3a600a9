// The sqlx session tests, shared by tests/it/sqlx_postgres.rs, sqlx_mysql.rs and
// sqlx_sqlite.rs (`sqlx_tests!("entry")` in each). The calling file defines:
// - `Db`: its session type; `Conn`: sqlx's connection type; `Backend`: its backend type;
// - `ENTRY`: its backend's name (in-memory for SQLite), for the conformance suite;
// - `$shared` (the macro's argument): an entry whose database an independent connection can read (a server
//   database, or an SQLite file), and `independent()`: such a connection;
// - `backend()`: its backend for `conformance::faults`.
//
// Every claim about what was rolled back is read through `independent()`, never through
// the session's own connection. The schema comes from `sqlx::migrate!` (registered below
// for each entry), so every test also checks the migrations.

macro_rules! sqlx_tests {
    ($shared:tt) => {
        use std::panic::catch_unwind;
        use std::sync::atomic::{AtomicUsize, Ordering};

        use sqlx::{Acquire, Connection};
        use venomqa::conformance::{self, Probe};
        use venomqa::sqlx::block_on;
        use venomqa::{venom_test, Error, StateManager};

        static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./sqlx_migrations");

        venomqa::register_setup!($shared, venomqa::sqlx::migrate(&MIGRATOR));
        venomqa::register_setup!(ENTRY, venomqa::sqlx::migrate(&MIGRATOR));

        /// How many committed rows carry `marker`, read by an independent connection.
        fn committed(marker: &str) -> i64 {
            let mut conn = independent();
            let n = block_on(
                sqlx::query_scalar::<_, i64>(&format!(
                    "SELECT COUNT(*) FROM vq_sqlx_items WHERE marker = '{marker}'"
                ))
                .fetch_one(&mut conn),
            )
            .unwrap();
            block_on(conn.close()).unwrap();
            n
        }

        /// How many rows carry `marker`, as the session sees them.
        async fn seen(db: &mut Db, marker: &str) -> i64 {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT COUNT(*) FROM vq_sqlx_items WHERE marker = '{marker}'"
            ))
            .fetch_one(&mut *db)
            .await
            .unwrap()
        }

        async fn insert(conn: &mut Conn, marker: &str) {
            sqlx::query(&format!(
                "INSERT INTO vq_sqlx_items (marker) VALUES ('{marker}')"
            ))
            .execute(conn)
            .await
            .unwrap();
        }

        #[venom_test(config = $shared)]
        async fn returns(db: &mut Db) {
            insert(db.conn(), "returns").await;
            assert_eq!(seen(db, "returns").await, 1);
        }

        #[venom_test(config = $shared)]
        fn sync_test(db: &mut Db) {
            block_on(insert(db.conn(), "sync_test"));
        }

        #[test]
        #[allow(unnameable_test_items)] // the tests inside are called, not collected
        fn rolled_back_after_return_err_and_panic() {
            #[venom_test(config = $shared)]
            async fn returns_err(db: &mut Db) -> Result<(), String> {
                insert(db.conn(), "returns_err").await;
                Err("the test fails".to_owned())
            }
            #[venom_test(config = $shared)]
            async fn panics(db: &mut Db) {
                insert(db.conn(), "panics").await;
                db.create_checkpoint("left_open").unwrap();
                insert(db.conn(), "panics").await;
                panic!("the test panics");
            }
            returns();
            assert!(returns_err().is_err());
            assert!(catch_unwind(panics).is_err());
            sync_test();
            for marker in ["returns", "returns_err", "panics", "sync_test"] {
                assert_eq!(committed(marker), 0, "{marker}: rolled back");
            }
        }

        #[venom_test(config = $shared)]
        async fn nested(db: &mut Db) -> venomqa::Result<()> {
            insert(db.conn(), "nested_outer").await;
            // A block (sync: it blocks on the connection inside this async test).
            let inside = db.checkpoint("block", |db| {
                block_on(insert(db.conn(), "nested_block"));
                db.checkpoint("deeper", |db| {
                    block_on(insert(db.conn(), "nested_block"));
                })
                .unwrap();
                block_on(seen(db, "nested_block"))
            })?;
            assert_eq!(inside, 1, "the deeper block was undone when it ended");
            assert_eq!(seen(db, "nested_block").await, 0, "the block was undone");
            assert_eq!(
                seen(db, "nested_outer").await,
                1,
                "the test's own row stays"
            );

            // Explicit checkpoints with awaits between them.
            db.create_checkpoint("a")?;
            insert(db.conn(), "nested_a").await;
            db.create_checkpoint("b")?;
            insert(db.conn(), "nested_b").await;
            db.rollback("a")?;
            assert_eq!(seen(db, "nested_a").await + seen(db, "nested_b").await, 0);
            assert_eq!(db.checkpoints(), [venomqa::ROOT_CHECKPOINT, "a"]);
            insert(db.conn(), "nested_a").await;
            db.release("a")?;
            assert_eq!(seen(db, "nested_a").await, 1, "a release keeps the changes");

            // sqlx's own transactions nest as savepoints inside the test's transaction.
            let mut tx = db.begin().await.unwrap();
            insert(&mut tx, "nested_tx_committed").await;
            tx.commit().await.unwrap();
            let mut tx = Connection::begin(db.conn()).await.unwrap();
            insert(&mut tx, "nested_tx_rolled_back").await;
            tx.rollback().await.unwrap();
            {
                let mut tx = db.begin().await.unwrap();
                insert(&mut tx, "nested_tx_dropped").await;
            }
            db.checkpoint("after_tx", |db| block_on(insert(db.conn(), "nested_block")))?;
            assert_eq!(seen(db, "nested_tx_committed").await, 1);
            assert_eq!(seen(db, "nested_tx_rolled_back").await, 0);
            assert_eq!(seen(db, "nested_tx_dropped").await, 0);
            assert_eq!(seen(db, "nested_block").await, 0);
            Ok(())
        }

        #[test]
        fn nested_blocks_and_sqlx_transactions() {
            nested().unwrap();
            for marker in [
                "nested_outer",
                "nested_block",
                "nested_a",
                "nested_b",
                "nested_tx_committed",
            ] {
                assert_eq!(committed(marker), 0, "{marker}: rolled back");
            }
        }

        /// The next parallel test's number.
        static PARALLEL: AtomicUsize = AtomicUsize::new(0);

        #[venom_test(config = $shared)]
        async fn parallel_one(db: &mut Db) {
            let marker = format!("parallel_{}", PARALLEL.fetch_add(1, Ordering::Relaxed));
            insert(db.conn(), &marker).await;
            tokio::task::yield_now().await;
            let visible: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM vq_sqlx_items WHERE marker LIKE 'parallel%'",
            )
            .fetch_one(&mut *db)
            .await
            .unwrap();
            assert_eq!(visible, 1, "a test sees its own row only");
        }

        #[test]
        fn parallel_async_tests() {
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        for _ in 0..5 {
                            parallel_one();
                        }
                    });
                }
            });
            let mut conn = independent();
            let left: i64 = block_on(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM vq_sqlx_items WHERE marker LIKE 'parallel%'",
                )
                .fetch_one(&mut conn),
            )
            .unwrap();
            assert_eq!(left, 0, "every parallel test was rolled back");
        }

        /// The migrations ran once on this database, however many processes and pools ran them.
        #[venom_test(config = $shared)]
        async fn migrations_ran_once(db: &mut Db) {
            let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM vq_sqlx_migration_runs")
                .fetch_one(&mut *db)
                .await
                .unwrap();
            assert_eq!(runs, 1);
            let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(&mut *db)
                .await
                .unwrap();
            assert_eq!(applied, MIGRATOR.iter().count() as i64);
        }

        /// A COMMIT run on the test's connection fails the test: its data was committed.

        #[test]
        #[allow(unnameable_test_items)] // the test inside is called, not collected
        fn a_commit_inside_the_test_is_reported() {
            #[venom_test(config = $shared)]
            async fn commit_in_test(db: &mut Db) {
                insert(db.conn(), "commit_in_test").await;
                sqlx::raw_sql("COMMIT").execute(db.conn()).await.unwrap();
            }
            let panic = catch_unwind(commit_in_test).expect_err("the test must fail");
            let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(text.contains("gone"), "{text}");
            // Clean up what it committed.
            let mut conn = independent();
            block_on(
                sqlx::query("DELETE FROM vq_sqlx_items WHERE marker = 'commit_in_test'")
                    .execute(&mut conn),
            )
            .unwrap();
        }

        #[test]
        fn the_session_type_chooses_the_backend() {
            let db = Db::builder().open().unwrap();
            assert_eq!(db.backend_name(), ENTRY);
            let err = <venomqa::Session>::builder()
                .backend(ENTRY)
                .run(|db| db.diff().map(drop))
                .expect_err("no capture isolation");
            assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        }

        struct Table;

        impl Probe for Table {
            fn insert(&self, m: &mut dyn StateManager, value: i64) -> venomqa::Result<()> {
                let conn = m.connection::<Backend>()?;
                block_on(
                    sqlx::query(&format!("INSERT INTO vq_sqlx_probe (v) VALUES ({value})"))
                        .execute(conn),
                )
                .map_err(|e| Error::backend(ENTRY, "probe insert", e))?;
                Ok(())
            }

            fn values(&self, m: &mut dyn StateManager) -> venomqa::Result<Vec<i64>> {
                let conn = m.connection::<Backend>()?;
                block_on(sqlx::query_scalar("SELECT v FROM vq_sqlx_probe").fetch_all(conn))
                    .map_err(|e| Error::backend(ENTRY, "probe read", e))
            }
        }

        #[test]
        fn conformance() {
            conformance::run(ENTRY, Table);
        }

        #[test]
        fn conformance_faults() {
            conformance::faults(backend());
        }
    };
}
