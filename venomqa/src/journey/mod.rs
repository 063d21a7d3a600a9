//! Journeys (feature `journey`): drive an HTTP API through steps, checkpoints and
//! branches of paths, with the database rolled back to the checkpoint before each path.
//!
//! The Python VenomQA's runner, in Rust, one concept for one:
//!
//! | VenomQA (Python) | venomqa (Rust) |
//! |---|---|
//! | `Journey(name, steps=[...])` | [`Journey::new`]`(name)` + [`step`](Journey::step) / [`checkpoint`](Journey::checkpoint) / [`branch`](Journey::branch) |
//! | `Step(name, action=fn(client, ctx), expected_status, expect_failure, timeout, retries)` | [`Step::new`]`(name, \|client, ctx\| ..)` + [`expect_status`](Step::expect_status), [`expect_failure`](Step::expect_failure), [`timeout`](Step::timeout), [`retries`](Step::retries) (`args`: capture them in the closure) |
//! | `Checkpoint(name)` | [`Checkpoint::new`]`(name)`, or [`Journey::checkpoint`] |
//! | `Branch(checkpoint_name, paths=[Path(name, steps)])` | [`Branch::new`]`(checkpoint)` + [`path`](Branch::path)`(`[`Path::new`]`(name).step(..))` |
//! | `Client(base_url)` | [`Client::new`]`(base_url)` (ureq), or any [`Transport`] |
//! | `ctx` (`ExecutionContext`) | [`Context`]: `set`, `get`, `get_as::<T>()` |
//! | `JourneyRunner(client, state_manager, parallel_paths, fail_fast).run(journey)` | [`JourneyRunner::new`]`(client)`[`.state_manager(m)`](JourneyRunner::state_manager)[`.fail_fast(true)`](JourneyRunner::fail_fast)[`.run(&journey)`](JourneyRunner::run) |
//! | `JourneyResult`, `StepResult`, `BranchResult`, `PathResult`, `Issue` | [`JourneyResult`], [`StepResult`], [`BranchResult`], [`PathResult`], [`Issue`] |
//! | `Invariant` (newer API) | [`Invariant::new`]`(name, \|check\| ..)`, checked after every step |
//!
//! The API server runs in another process and writes on its own connections, so the
//! runner needs a state manager whose rollbacks undo those writes: capture isolation
//! ([`StateManager::captures`](crate::StateManager::captures)). It refuses any other.
//!
//! ```
//! use venomqa::journey::{Branch, Client, Journey, JourneyRunner, Path, Step};
//! # use venomqa::journey::{Method, Request, Response};
//! # use venomqa::{sqlite::SqliteStateManager, BackendConfig, StateManager};
//! # let file = std::env::temp_dir().join(format!("venomqa-doc-journey-{}.sqlite", std::process::id()));
//! # let _ = std::fs::remove_file(&file);
//! # let mut db = SqliteStateManager::from_config(&BackendConfig::new("sqlite")
//! #     .with_url(file.to_str().unwrap()).with_option("isolation", "capture"))?;
//! # db.connect()?;
//! # db.connection()?.execute_batch("CREATE TABLE cart (item TEXT)").unwrap();
//! # // The app: an in-process handler writing on its own connection to the file.
//! # let app_db = file.clone();
//! # let client = Client::with_transport("http://shop.test", move |req: &Request| {
//! #     let conn = rusqlite::Connection::open(&app_db).unwrap();
//! #     Ok(match (req.method, req.path()) {
//! #         (Method::Post, "/cart") => {
//! #             conn.execute("INSERT INTO cart VALUES ('x')", []).unwrap();
//! #             Response::new(201).with_json(&serde_json::json!({"id": 1}))
//! #         }
//! #         _ => {
//! #             let n: i64 = conn.query_row("SELECT COUNT(*) FROM cart", [], |r| r.get(0)).unwrap();
//! #             Response::new(200).with_json(&serde_json::json!({"items": n}))
//! #         }
//! #     })
//! # });
//!
//! let journey = Journey::new("checkout")
//!     .step(Step::new("add_to_cart", |client, ctx| {
//!         let cart = client.post("/cart").send()?.expect_status(201)?;
//!         ctx.set("cart_id", cart.value("/id")?);
//!         Ok(())
//!     }))
//!     .checkpoint("cart_full")
//!     .branch(
//!         Branch::new("cart_full")
//!             .path(Path::new("look").step(Step::new("one_item", |client, ctx| {
//!                 let id = ctx.i64("cart_id")?;
//!                 client.get(&format!("/carts/{id}")).send()?.expect_json("/items", 1)?;
//!                 Ok(())
//!             })))
//!             .path(Path::new("add_more").step(Step::new("add", |client, _| {
//!                 client.post("/cart").send()?.expect_status(201)?;
//!                 client.get("/carts/1").send()?.expect_json("/items", 2)?;
//!                 Ok(())
//!             }))),
//!     );
//!
//! // `client`: Client::new("http://127.0.0.1:8000") for a server started on `db.url()`;
//! // `db`: a state manager with capture isolation (here a SQLite file).
//! let result = JourneyRunner::new(client).state_manager(&mut db).run(&journey)?;
//! println!("{result}"); // the tree: journey > branch > path > step
//! result.assert_passed();
//! assert_eq!(result.rollbacks(), 2);
//! # let n: i64 = db.connection()?.query_row("SELECT COUNT(*) FROM cart", [], |r| r.get(0)).unwrap();
//! # assert_eq!(n, 0, "the journey left the database as it found it");
//! # drop(db); let _ = std::fs::remove_file(&file);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, doc(cfg(feature = "journey")))]

mod call;
mod client;
mod context;
mod definition;
mod format;
mod report;
mod runner;
mod step_error;
mod validate;

pub use client::{
    Client, Exchange, HttpError, HttpTransport, Method, RecordedResponse, Request, RequestBuilder,
    Response, SendFuture, Transport, TransportError, TransportErrorKind, UreqTransport,
    DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUT, SECRET_HEADERS,
};
#[cfg(feature = "journey-async")]
pub use client::{HttpService, ServiceTransport};
pub use context::{Context, ContextError};
pub use definition::{Branch, Checkpoint, Item, Journey, Path, Step};
pub use report::{
    junit_xml, BranchResult, FailureKind, Issue, ItemResult, JourneyFailed, JourneyResult,
    PathResult, Severity, Status, StepFailure, StepResult,
};
pub use runner::{Check, Invariant, JourneyError, JourneyRunner, StateHandle, JOURNEY_CHECKPOINT};
pub use step_error::StepError;

// What the explorer (feature `explore`) shares with the runner and its reports.
#[cfg(feature = "explore")]
pub(crate) use call::{now, offload, StepFn};
#[cfg(feature = "explore")]
pub(crate) use format::{cut, fmt_duration};
#[cfg(feature = "explore")]
pub(crate) use report::{
    append_step_summary, diff_details, diff_json, exchange_json, markdown_code, ms, one_line,
    write_report_files, xml,
};
#[cfg(feature = "explore")]
pub(crate) use runner::{panic_message, CheckFn};

#[cfg(all(test, feature = "journey-async"))]
pub(crate) mod async_tests;
#[cfg(test)]
mod tests;
