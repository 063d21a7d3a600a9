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

mod client;
mod context;
mod format;
mod report;
mod runner;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use client::{
    Client, Exchange, HttpError, Method, RecordedResponse, Request, RequestBuilder, Response,
    Transport, TransportError, TransportErrorKind, UreqTransport, DEFAULT_BODY_LIMIT,
    DEFAULT_TIMEOUT, SECRET_HEADERS,
};
pub use context::{Context, ContextError};
pub use report::{
    junit_xml, BranchResult, FailureKind, Issue, ItemResult, JourneyFailed, JourneyResult,
    PathResult, Severity, Status, StepFailure, StepResult,
};
pub use runner::{Check, Invariant, JourneyError, JourneyRunner, StateHandle, JOURNEY_CHECKPOINT};

// What the explorer (feature `explore`) shares with the runner and its reports.
#[cfg(feature = "explore")]
pub(crate) use format::{cut, fmt_duration};
#[cfg(feature = "explore")]
pub(crate) use report::{diff_details, diff_json, exchange_json, ms, write_report_files, xml};
#[cfg(feature = "explore")]
pub(crate) use runner::panic_message;

/// The error a step or an invariant returns: any error (`?` converts it, keeping its
/// sources for the report) or a message ([`StepError::msg`]).
///
/// Like `anyhow::Error`, it is not itself a `std::error::Error`, so that every error
/// converts into it.
pub struct StepError {
    inner: crate::BoxError,
}

/// The error [`StepError::msg`] makes: a message, nothing underneath. The explorer reads
/// an invariant's `Err` of this kind as a violation, and other errors (a failed query, an
/// unreachable server) as the invariant failing to check.
#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl StepError {
    /// An error with this message.
    pub fn msg(message: impl fmt::Display) -> Self {
        StepError {
            inner: Box::new(Message(message.to_string())),
        }
    }

    /// Whether this is a plain message ([`StepError::msg`]) rather than an error of some
    /// operation converted by `?`.
    pub fn is_message(&self) -> bool {
        self.inner.is::<Message>()
    }

    /// The error of type `E` this wraps, if it is one.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// The message and the messages of its sources, joined by `: ` (a source whose text
    /// the message already holds is left out).
    pub fn chain(&self) -> String {
        let mut text = self.inner.to_string();
        let mut next = self.inner.source();
        while let Some(e) = next {
            let s = e.to_string();
            if !text.contains(&s) {
                text.push_str(": ");
                text.push_str(&s);
            }
            next = e.source();
        }
        text
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StepError {
    fn from(e: E) -> Self {
        StepError { inner: Box::new(e) }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.chain())
    }
}

type Action = Arc<dyn Fn(&Client, &mut Context) -> Result<(), StepError> + Send + Sync>;

/// One step: an action over the HTTP client and the context, with what it must return.
///
/// ```
/// use std::time::Duration;
/// use venomqa::journey::Step;
///
/// let step = Step::new("signup_twice", |client, _ctx| {
///     client.post("/users").json(&serde_json::json!({"email": "ann@example.com"})).send()?;
///     Ok(())
/// })
/// .expect_status(409)          // the last response of the step must be a 409
/// .timeout(Duration::from_secs(2))
/// .retries(1)
/// .description("the e-mail is taken");
/// assert_eq!(step.name(), "signup_twice");
/// ```
#[derive(Clone)]
pub struct Step {
    pub(crate) name: String,
    pub(crate) action: Action,
    pub(crate) expected_status: Option<u16>,
    pub(crate) expect_failure: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) description: Option<String>,
}

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("name", &self.name)
            .field("expected_status", &self.expected_status)
            .field("expect_failure", &self.expect_failure)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// A step named `name` running `action(client, ctx)`. The action fails the step by
    /// returning `Err` (any error, through `?`) or by panicking.
    pub fn new<T, F>(name: impl Into<String>, action: F) -> Self
    where
        F: Fn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        Step {
            name: name.into(),
            action: Arc::new(move |client, ctx| action(client, ctx).map(|_| ())),
            expected_status: None,
            expect_failure: false,
            timeout: None,
            retries: 0,
            description: None,
        }
    }

    /// The status the step's last response must have (Python's `expected_status`).
    pub fn expect_status(mut self, status: u16) -> Self {
        self.expected_status = Some(status);
        self
    }

    /// The step must fail: its action returns `Err`, or its last response is 4xx/5xx
    /// (Python's `expect_failure=True`). A step that succeeds then fails.
    pub fn expect_failure(mut self) -> Self {
        self.expect_failure = true;
        self
    }

    /// The time each request of the step may take (overrides the client's).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How many times to run the action again when it fails (the context is restored
    /// before each try; what the server wrote is not).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// A description, shown in reports.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The step's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A checkpoint: the database and the context are saved here, and a [`Branch`] on it
/// runs each of its paths from this state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub(crate) name: String,
}

impl Checkpoint {
    /// A checkpoint named `name` (letters, digits and `_`, as any venomqa checkpoint).
    pub fn new(name: impl Into<String>) -> Self {
        Checkpoint { name: name.into() }
    }

    /// The checkpoint's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One path of a [`Branch`]: steps run from the branch's checkpoint.
#[derive(Debug, Clone)]
pub struct Path {
    pub(crate) name: String,
    pub(crate) steps: Vec<Step>,
    pub(crate) description: Option<String>,
}

impl Path {
    /// An empty path named `name` (a journey with an empty path does not validate).
    pub fn new(name: impl Into<String>) -> Self {
        Path {
            name: name.into(),
            steps: Vec::new(),
            description: None,
        }
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds steps.
    pub fn steps(mut self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.steps.extend(steps);
        self
    }

    /// A description, shown in reports.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The path's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Paths that each start from the state at a checkpoint made earlier in the journey.
/// After the branch, the journey goes on from that checkpoint's state too.
#[derive(Debug, Clone)]
pub struct Branch {
    pub(crate) checkpoint: String,
    pub(crate) paths: Vec<Path>,
}

impl Branch {
    /// A branch from checkpoint `checkpoint`, with no paths yet.
    pub fn new(checkpoint: impl Into<String>) -> Self {
        Branch {
            checkpoint: checkpoint.into(),
            paths: Vec::new(),
        }
    }

    /// Adds a path.
    pub fn path(mut self, path: Path) -> Self {
        self.paths.push(path);
        self
    }

    /// Adds paths.
    pub fn paths(mut self, paths: impl IntoIterator<Item = Path>) -> Self {
        self.paths.extend(paths);
        self
    }

    /// The checkpoint it branches from.
    pub fn checkpoint_name(&self) -> &str {
        &self.checkpoint
    }
}

/// One element of a journey: what Python's `Journey(steps=[...])` list holds.
#[derive(Debug, Clone)]
pub enum Item {
    /// A step.
    Step(Step),
    /// A checkpoint.
    Checkpoint(Checkpoint),
    /// A branch of paths from an earlier checkpoint.
    Branch(Branch),
}

impl From<Step> for Item {
    fn from(s: Step) -> Self {
        Item::Step(s)
    }
}

impl From<Checkpoint> for Item {
    fn from(c: Checkpoint) -> Self {
        Item::Checkpoint(c)
    }
}

impl From<Branch> for Item {
    fn from(b: Branch) -> Self {
        Item::Branch(b)
    }
}

/// A named sequence of steps, checkpoints and branches.
///
/// Build it with [`step`](Self::step), [`checkpoint`](Self::checkpoint) and
/// [`branch`](Self::branch), or from a list as in Python with [`items`](Self::items).
/// [`validate`](Self::validate) (which the runner calls first) rejects a branch on an
/// unknown checkpoint, duplicate names and empty paths, naming each.
///
/// ```
/// use venomqa::journey::{Branch, Checkpoint, Journey, Path, Step};
///
/// let noop = || Step::new("noop", |_, _| Ok(()));
/// let journey = Journey::new("broken").items([
///     noop().into(),
///     Checkpoint::new("cart").into(),
///     Branch::new("kart").path(Path::new("pay").step(noop())).into(),
///     Branch::new("cart").path(Path::new("empty")).into(),
/// ]);
/// let e = journey.validate().unwrap_err();
/// assert_eq!(e.to_string(), "journey \"broken\" is invalid: branch 1 is on checkpoint \"kart\", which is not made before it (checkpoints available there: cart); path \"empty\" of the branch from \"cart\" has no steps; fix the journey's definition");
/// ```
#[derive(Debug, Clone)]
pub struct Journey {
    pub(crate) name: String,
    pub(crate) items: Vec<Item>,
    pub(crate) description: Option<String>,
}

impl Journey {
    /// An empty journey named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Journey {
            name: name.into(),
            items: Vec::new(),
            description: None,
        }
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Self {
        self.items.push(Item::Step(step));
        self
    }

    /// Adds a checkpoint named `name`.
    pub fn checkpoint(mut self, name: impl Into<String>) -> Self {
        self.items.push(Item::Checkpoint(Checkpoint::new(name)));
        self
    }

    /// Adds a branch.
    pub fn branch(mut self, branch: Branch) -> Self {
        self.items.push(Item::Branch(branch));
        self
    }

    /// Adds items in order (Python's `steps=[...]`).
    pub fn items(mut self, items: impl IntoIterator<Item = Item>) -> Self {
        self.items.extend(items);
        self
    }

    /// A description, shown in reports.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The journey's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its items, in order.
    pub fn get_items(&self) -> &[Item] {
        &self.items
    }

    /// How many paths its branches hold in all.
    pub fn path_count(&self) -> usize {
        self.items
            .iter()
            .map(|i| match i {
                Item::Branch(b) => b.paths.len(),
                _ => 0,
            })
            .sum()
    }

    /// Checks the journey before it runs: every problem, each naming what it is about.
    ///
    /// - the journey has a name and at least one item; steps and paths have names;
    /// - checkpoint names follow venomqa's rule and do not start with `venomqa_`;
    /// - no duplicate checkpoint, no duplicate path name in the journey, no duplicate
    ///   step name in a sequence (the main one or a path);
    /// - a branch is on a checkpoint made before it and not discarded since (a branch
    ///   rolls back to its checkpoint, which discards the checkpoints made after it);
    /// - a branch has at least one path, and every path at least one step.
    pub fn validate(&self) -> Result<(), JourneyError> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("the journey has no name".to_owned());
        }
        if self.items.is_empty() {
            problems.push("it has no steps".to_owned());
        }
        let mut active: Vec<&str> = Vec::new();
        let mut made: HashSet<&str> = HashSet::new();
        let mut main_steps: HashSet<&str> = HashSet::new();
        let mut paths: Vec<(&str, &str)> = Vec::new();
        let mut branch_no = 0;
        for item in &self.items {
            match item {
                Item::Step(step) => {
                    check_step(step, "the journey's steps", &mut main_steps, &mut problems)
                }
                Item::Checkpoint(c) => {
                    if let Err(e) = crate::validate_checkpoint_name(&c.name) {
                        problems.push(format!("checkpoint {:?}: {e}", c.name));
                    } else if c.name.starts_with("venomqa_") {
                        problems.push(format!(
                            "checkpoint {:?}: names starting with venomqa_ are reserved for venomqa",
                            c.name
                        ));
                    } else if !made.insert(&c.name) {
                        problems.push(format!("checkpoint {:?} is made twice", c.name));
                    } else {
                        active.push(&c.name);
                    }
                }
                Item::Branch(b) => {
                    branch_no += 1;
                    match active.iter().position(|c| *c == b.checkpoint) {
                        Some(at) => active.truncate(at + 1),
                        None if made.contains(b.checkpoint.as_str()) => problems.push(format!(
                            "branch {branch_no} is on checkpoint {:?}, which an earlier branch's rollbacks discarded (a rollback to a checkpoint discards the later ones); make the checkpoint again after that branch",
                            b.checkpoint
                        )),
                        None => problems.push(format!(
                            "branch {branch_no} is on checkpoint {:?}, which is not made before it (checkpoints available there: {})",
                            b.checkpoint,
                            if active.is_empty() { "none".to_owned() } else { active.join(", ") }
                        )),
                    }
                    if b.paths.is_empty() {
                        problems.push(format!("the branch from {:?} has no paths", b.checkpoint));
                    }
                    for p in &b.paths {
                        if p.name.trim().is_empty() {
                            problems.push(format!(
                                "a path of the branch from {:?} has no name",
                                b.checkpoint
                            ));
                        } else if let Some((_, first)) = paths.iter().find(|(n, _)| *n == p.name) {
                            problems.push(format!(
                                "path {:?} appears twice (in the branches from {first:?} and {:?}); path names are unique in a journey",
                                p.name, b.checkpoint
                            ));
                        } else {
                            paths.push((&p.name, &b.checkpoint));
                        }
                        if p.steps.is_empty() {
                            problems.push(format!(
                                "path {:?} of the branch from {:?} has no steps",
                                p.name, b.checkpoint
                            ));
                        }
                        let mut names = HashSet::new();
                        let place = format!("path {:?}", p.name);
                        for s in &p.steps {
                            check_step(s, &place, &mut names, &mut problems);
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(JourneyError::Invalid {
                journey: self.name.clone(),
                problems,
            })
        }
    }
}

fn check_step<'a>(
    step: &'a Step,
    place: &str,
    names: &mut HashSet<&'a str>,
    problems: &mut Vec<String>,
) {
    if step.name.trim().is_empty() {
        problems.push(format!("a step of {place} has no name"));
    } else if !names.insert(&step.name) {
        problems.push(format!(
            "step {:?} appears twice in {place}; step names are unique in a sequence",
            step.name
        ));
    }
    if step.expect_failure && step.expected_status.is_some_and(|s| s < 400) {
        problems.push(format!(
            "step {:?} of {place} expects failure and status {}, which is a success",
            step.name,
            step.expected_status.unwrap_or_default()
        ));
    }
}

#[cfg(test)]
mod tests;
