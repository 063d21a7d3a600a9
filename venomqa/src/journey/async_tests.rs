//! Async journeys (feature `journey-async`): async steps and invariants, an axum `Router`
//! called in process and served on a port, writing to a SQLite file on its own
//! connections, with a capture state manager on that file. An independent connection is
//! the oracle for what the rollbacks left.

use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::*;
use crate::sqlite::SqliteStateManager;
use crate::{BackendConfig, StateManager};

/// A SQLite file with table `items`, and a capture manager on it; both gone when dropped.
pub(crate) struct Db {
    pub(crate) manager: SqliteStateManager,
    pub(crate) file: PathBuf,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.manager.disconnect();
        for ext in ["", "-wal", "-shm", ".venomqa-lock"] {
            let _ = std::fs::remove_file(format!("{}{ext}", self.file.display()));
        }
    }
}

pub(crate) fn db(tag: &str) -> Db {
    static N: AtomicUsize = AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "venomqa-async-journey-{tag}-{}-{}.sqlite",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
             INSERT INTO items (name) VALUES ('seed');",
        )
        .unwrap();
    let mut manager = SqliteStateManager::from_config(
        &BackendConfig::new("sqlite")
            .with_url(file.to_str().unwrap())
            .with_option("isolation", "capture"),
    )
    .unwrap();
    manager.connect().unwrap();
    Db { manager, file }
}

/// Every row of `items`, read by a connection of its own (not the manager's).
pub(crate) fn dump(file: &FsPath) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(file).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, name FROM items ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The app: `POST /items {"name"}` (201 with the id, 409 when taken), `GET /items` (the
/// count), `DELETE /items` (all gone); a connection of its own per request.
pub(crate) fn router(file: &FsPath) -> Router {
    async fn open(file: &FsPath) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(file).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        conn
    }
    Router::new()
        .route(
            "/items",
            post(
                |State(file): State<PathBuf>, Json(body): Json<Value>| async move {
                    let conn = open(&file).await;
                    match conn.execute(
                        "INSERT INTO items (name) VALUES (?1)",
                        [body["name"].as_str().unwrap_or_default()],
                    ) {
                        Ok(_) => (
                            StatusCode::CREATED,
                            Json(json!({"id": conn.last_insert_rowid()})),
                        ),
                        Err(_) => (StatusCode::CONFLICT, Json(json!({"error": "name taken"}))),
                    }
                },
            )
            .get(|State(file): State<PathBuf>| async move {
                let conn = open(&file).await;
                let n: i64 = conn
                    .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))
                    .unwrap();
                Json(json!({"count": n}))
            })
            .delete(|State(file): State<PathBuf>| async move {
                open(&file).await.execute("DELETE FROM items", []).unwrap();
                StatusCode::NO_CONTENT
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .with_state(file.to_owned())
}

/// The paths of `result`'s failures, in order.
fn failed_paths(result: &JourneyResult) -> Vec<&str> {
    result
        .issues
        .iter()
        .map(|f| f.path.as_deref().unwrap_or(""))
        .collect()
}

fn add(step: &str, name: &'static str) -> Step {
    Step::new_async(step, async move |client, ctx| {
        let r = client
            .post("/items")
            .json(&json!({ "name": name }))
            .await?
            .expect_status(201)?;
        ctx.set(name, r.value("/id")?);
        Ok(())
    })
}

fn expect_count(step: &str, n: i64) -> Step {
    Step::new_async(step, async move |client, _| {
        client.get("/items").await?.expect_json("/count", n)?;
        Ok(())
    })
}

/// A journey whose paths each start from one item added after the seed: a path that
/// deletes everything, one that adds two (the second a duplicate, expected to fail), one
/// that panics after writing, and blocking and async steps mixed.
fn journey() -> Journey {
    Journey::new("items")
        .step(add("add_a", "a"))
        .checkpoint("one_more")
        .branch(
            Branch::new("one_more")
                .path(
                    Path::new("wipe")
                        .step(Step::new_async("delete_all", async |client, _| {
                            client.delete("/items").await?.expect_status(204)?;
                            Ok(())
                        }))
                        .step(expect_count("none_left", 0)),
                )
                .path(
                    Path::new("grow")
                        .step(expect_count("two_to_start", 2))
                        .step(add("add_b", "b"))
                        .step(
                            Step::new_async("add_a_again", async |client, _| {
                                client.post("/items").json(&json!({"name": "a"})).await?;
                                Ok(())
                            })
                            .expect_failure(),
                        )
                        .step(Step::new("blocking_count", |client, ctx| {
                            // A blocking step in an async run: its context is the same.
                            assert!(ctx.get("b").is_some());
                            let _ = client;
                            Ok(())
                        })),
                )
                .path(
                    Path::new("panics")
                        .step(add("add_c", "c"))
                        .step(Step::new_async(
                            "boom",
                            async |_, _| -> Result<(), StepError> {
                                panic!("the step panicked on purpose")
                            },
                        )),
                )
                .path(Path::new("clean_start").step(expect_count("still_two", 2))),
        )
}

#[tokio::test(flavor = "current_thread")]
async fn an_async_journey_runs_against_a_router_in_process_and_leaves_the_baseline() {
    let mut db = db("in-process");
    let before = dump(&db.file);
    let client = Client::service(router(&db.file));
    let result = JourneyRunner::new(client)
        .state_manager(&mut db.manager)
        .run_async(&journey())
        .await
        .unwrap();
    let text = result.to_string();
    assert!(!result.passed(), "{text}");
    let failed = failed_paths(&result);
    assert_eq!(failed, ["panics"], "{text}");
    assert!(text.contains("the step panicked on purpose"), "{text}");
    // Every path ran from the checkpoint: "clean_start" saw neither the wipe, nor b, nor c.
    assert_eq!(result.rollbacks(), 4, "{text}");
    assert_eq!(
        dump(&db.file),
        before,
        "the journey left the database as it found it"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_same_journey_over_http_on_a_port_of_this_runtime() {
    let mut db = db("http");
    let before = dump(&db.file);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Served by this test's own single thread: an awaited request must not block it.
    let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
        listener,
        router(&db.file),
    )));
    let result = JourneyRunner::new(Client::new(url))
        .state_manager(&mut db.manager)
        .run_async(&journey())
        .await
        .unwrap();
    server.abort();
    let failed = failed_paths(&result);
    assert_eq!(failed, ["panics"], "{result}");
    assert_eq!(dump(&db.file), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_invariant_is_checked_after_every_step_on_a_multi_threaded_runtime() {
    let mut db = db("invariant");
    let before = dump(&db.file);
    let at_most_two = Invariant::new_async("at most two items", async |check| {
        let r = check.client().get("/items").await?;
        let n = r.value("/count")?.as_i64().unwrap_or_default();
        if n > 2 {
            return Err(StepError::msg(format!("{n} items")));
        }
        Ok(())
    });
    let result = JourneyRunner::new(Client::service(router(&db.file)))
        .state_manager(&mut db.manager)
        .invariant(at_most_two)
        .run_async(&journey())
        .await
        .unwrap();
    let text = result.to_string();
    // "grow" reaches three items at add_b; "panics" at add_c.
    let places: Vec<(&str, &str)> = result
        .issues
        .iter()
        .map(|f| (f.path.as_deref().unwrap_or(""), f.step.as_str()))
        .collect();
    assert_eq!(places, [("grow", "add_b"), ("panics", "add_c")], "{text}");
    assert!(
        text.contains("invariant \"at most two items\" violated after step \"add_b\""),
        "{text}"
    );
    assert_eq!(dump(&db.file), before);
}

#[test]
fn a_blocking_run_refuses_async_steps_and_invariants_and_names_the_first() {
    let mut db = db("refused");
    let before = dump(&db.file);
    let client = || Client::with_transport("http://x.test", |_: &Request| Ok(Response::new(200)));
    let e = JourneyRunner::new(client())
        .state_manager(&mut db.manager)
        .run(&journey())
        .unwrap_err();
    assert!(matches!(e, JourneyError::Async { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "journey \"items\" has the async step \"add_a\", which a blocking run() cannot await; call .run_async(&journey).await inside a Tokio runtime (#[tokio::test] or an async #[venom_test])"
    );
    let blocking = Journey::new("j").step(Step::new("s", |_, _| Ok(())));
    let e = JourneyRunner::new(client())
        .state_manager(&mut db.manager)
        .invariant(Invariant::new_async("async check", async |_| Ok(())))
        .run(&blocking)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the async invariant \"async check\""),
        "{e}"
    );
    assert_eq!(
        dump(&db.file),
        before,
        "a refused run leaves the database as it was"
    );
    assert!(
        db.manager.checkpoints().is_empty(),
        "and no checkpoint behind"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn parallel_paths_of_an_async_run_share_the_task_each_on_its_own_database() {
    let (mut a, mut b) = (db("parallel-a"), db("parallel-b"));
    let (before_a, before_b) = (dump(&a.file), dump(&b.file));
    // Two apps on two databases, each a router in process under a base URL of its own.
    let app =
        |db: &Db, base: &str| Client::with_transport(base, ServiceTransport::new(router(&db.file)));
    let (app_a, app_b) = (app(&a, "http://app-a"), app(&b, "http://app-b"));
    let result = JourneyRunner::new(app_a)
        .state_manager(&mut a.manager)
        .worker(app_b, &mut b.manager)
        .parallel_paths(2)
        .run_async(&journey())
        .await
        .unwrap();
    let failed = failed_paths(&result);
    assert_eq!(failed, ["panics"], "{result}");
    assert_eq!(result.workers(), 2);
    // Paths 0 and 2 ran on worker 0, 1 and 3 on worker 1: each database saw its own.
    let on_b: Vec<String> = result
        .path_results()
        .filter(|p| {
            p.step_results
                .iter()
                .flat_map(|s| &s.exchanges)
                .any(|e| e.url.starts_with("http://app-b"))
        })
        .map(|p| p.path_name.clone())
        .collect();
    assert_eq!(on_b, ["grow", "clean_start"], "{result}");
    assert_eq!(dump(&a.file), before_a);
    assert_eq!(dump(&b.file), before_b);
}
