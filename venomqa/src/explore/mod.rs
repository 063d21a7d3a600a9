//! Exploration (feature `explore`): find the bug no written journey covers, by trying
//! sequences of actions against a real API, checking invariants after every step, and
//! backtracking with capture rollbacks.
//!
//! The Python VenomQA's explorer, in Rust, one concept for one:
//!
//! | VenomQA (Python) | venomqa (Rust) |
//! |---|---|
//! | `Action(name, execute=fn(api, ctx), precondition=fn(ctx))` | [`Action::new`]`(name, \|client, ctx\| ..)`[`.precondition(\|ctx\| ..)`](Action::precondition) |
//! | `Invariant(name, check, severity)` | [`Invariant::new`]`(name, \|check\| ..)`[`.severity(..)`](Invariant::severity) (the journeys' invariant) |
//! | `World(api, state_manager)` | [`World::new`]`(name)` (actions, invariants, setup) + the [`Explorer`]'s client and state manager |
//! | `Agent(world, actions, invariants, strategy, max_steps).explore()` | [`Explorer::new`]`(&world, client)`[`.state_manager(db)`](Explorer::state_manager)[`.strategy(..)`](Explorer::strategy)[`.run()`](Explorer::run) |
//! | `BFS()`, `DFS()`, `Random(seed)`, `CoverageGuided()` | [`Strategy::Bfs`], [`Strategy::Dfs`], [`Strategy::Random`], [`Strategy::CoverageGuided`] |
//! | `ExplorationResult`, `Violation` | [`ExplorationResult`], [`Violation`] |
//!
//! Every backtrack is a rollback of a **capture** state manager
//! ([`StateManager::captures`](crate::StateManager::captures)), so what the API server
//! wrote in its own process is undone; the explorer refuses any other state manager. A
//! state is recognised by a fingerprint of the capture diff since the exploration's root
//! and the context, so no state is explored twice. A violation is shrunk to a sequence
//! from which no action can be removed, and comes with a [`Journey`](crate::journey::Journey)
//! that reproduces it and the Rust source of a `#[venom_test]` to paste.
//!
//! ```
//! use venomqa::explore::{Action, Explorer, Strategy, World};
//! use venomqa::journey::{Invariant, StepError};
//! # use venomqa::journey::{Client, Method, Request, Response};
//! # use venomqa::{sqlite::SqliteStateManager, BackendConfig, StateManager};
//! # let file = std::env::temp_dir().join(format!("venomqa-doc-explore-{}.sqlite", std::process::id()));
//! # let _ = std::fs::remove_file(&file);
//! # let mut db = SqliteStateManager::from_config(&BackendConfig::new("sqlite")
//! #     .with_url(file.to_str().unwrap()).with_option("isolation", "capture"))?;
//! # db.connect()?;
//! # db.connection()?.execute_batch("CREATE TABLE account (balance INTEGER NOT NULL); INSERT INTO account VALUES (10)").unwrap();
//! # // The app: withdrawals of 7 are checked against the balance, except the "fast" kind.
//! # let app_db = file.clone();
//! # let client = Client::with_transport("http://bank.test", move |req: &Request| {
//! #     let conn = rusqlite::Connection::open(&app_db).unwrap();
//! #     let balance: i64 = conn.query_row("SELECT balance FROM account", [], |r| r.get(0)).unwrap();
//! #     Ok(match (req.method, req.path()) {
//! #         (Method::Post, "/withdraw") if balance < 7 => Response::new(422),
//! #         (Method::Post, "/withdraw") | (Method::Post, "/fast_withdraw") => {
//! #             conn.execute("UPDATE account SET balance = balance - 7", []).unwrap();
//! #             Response::new(200)
//! #         }
//! #         _ => Response::new(200).with_json(&serde_json::json!({"balance": balance})),
//! #     })
//! # });
//!
//! let world = World::new("bank")
//!     .action(Action::new("withdraw", |client, _ctx| Ok(client.post("/withdraw").send()?)))
//!     .action(Action::new("fast_withdraw", |client, _ctx| Ok(client.post("/fast_withdraw").send()?)))
//!     .invariant(Invariant::new("balance never below 0", |check| {
//!         let balance = check.client().get("/balance").send()?.value("/balance")?;
//!         if balance.as_i64() < Some(0) {
//!             return Err(StepError::msg(format!("the balance is {balance}")));
//!         }
//!         Ok(())
//!     }));
//!
//! // `client`: a client of the API server, started on `db.url()`; `db`: a state manager
//! // with capture isolation (here a SQLite file).
//! let result = Explorer::new(&world, client)
//!     .state_manager(&mut db)
//!     .strategy(Strategy::Bfs)
//!     .max_depth(3)
//!     .run()?;
//! println!("{result}"); // the summary, the coverage, each violation and how to reproduce it
//! let violation = result.violation("balance never below 0").expect("found");
//! assert_eq!(violation.sequence(), ["withdraw", "fast_withdraw"]);
//! assert!(!result.passed());
//! # drop(db); let _ = std::fs::remove_file(&file);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, doc(cfg(feature = "explore")))]

mod engine;
mod error;
mod explorer;
mod outcome;
mod report;
mod repro;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use crate::journey::{Check, Invariant, Severity, StepError};
use crate::journey::{CheckFn, Client, Context, StepFn};
pub use error::ExploreError;
pub use explorer::{Explorer, DEFAULT_MAX_DEPTH, DEFAULT_MAX_STEPS, EXPLORE_CHECKPOINT};
pub use report::{
    ActionCoverage, Coverage, ExplorationResult, Fault, FaultKind, PathStep, StateGraph,
    StopReason, Transition, Violation,
};
pub use repro::RustTemplate;

/// The name under which a server error (a 5xx answer to any action) is reported, when
/// [`World::server_errors_are_violations`] is on (the default).
pub const SERVER_ERRORS: &str = "the API never answers 5xx";

type PreconditionFn = Arc<dyn Fn(&Context) -> bool + Send + Sync>;

/// Something that can happen to the API: a named closure over the HTTP client and the
/// context, with an optional precondition on the context.
///
/// An action's `Err` is an outcome, not a failure: the explorer records it (as it records
/// a 4xx) and goes on from the state the server left. Only invariants, and 5xx answers
/// (see [`World::server_errors_are_violations`]), make violations. A panic, or an
/// unreachable server, stops the exploration as a [`Fault`].
///
/// ```
/// use venomqa::explore::Action;
///
/// let pay = Action::new("pay_order", |client, ctx| {
///     let order = ctx.i64("order")?;
///     let paid = client.post(&format!("/orders/{order}/pay")).send()?;
///     if paid.status() == 200 {
///         ctx.set("order_status", "paid");
///     }
///     Ok(())
/// })
/// .precondition(|ctx| ctx.contains("order"))
/// .description("pay the open order by card");
/// assert_eq!(pay.name(), "pay_order");
/// ```
#[derive(Clone)]
pub struct Action {
    name: String,
    run: StepFn,
    precondition: Option<PreconditionFn>,
    description: Option<String>,
}

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Action")
            .field("name", &self.name)
            .field("precondition", &self.precondition.is_some())
            .finish_non_exhaustive()
    }
}

impl Action {
    /// An action named `name` running `run(client, ctx)`; what it returns on success is
    /// ignored (so `|c, _| Ok(c.post("/x").send()?)` is an action).
    pub fn new<T, F>(name: impl Into<String>, run: F) -> Self
    where
        F: Fn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        Self::with_run(name.into(), StepFn::blocking(run))
    }

    /// An action running the async closure `run(client, ctx)`, which `.await`s its
    /// requests (feature `journey-async`); the explorer runs it with
    /// [`Explorer::run_async`].
    ///
    /// ```
    /// use venomqa::explore::Action;
    ///
    /// let pay = Action::new_async("pay_order", async |client, ctx| {
    ///     let order = ctx.i64("order")?;
    ///     if client.post(&format!("/orders/{order}/pay")).await?.status() == 200 {
    ///         ctx.set("order_status", "paid");
    ///     }
    ///     Ok(())
    /// })
    /// .precondition(|ctx| ctx.contains("order"));
    /// assert!(pay.is_async());
    /// ```
    #[cfg(feature = "journey-async")]
    pub fn new_async<T, F>(name: impl Into<String>, run: F) -> Self
    where
        F: AsyncFn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        Self::with_run(name.into(), StepFn::nonblocking(run))
    }

    fn with_run(name: String, run: StepFn) -> Self {
        Action {
            name,
            run,
            precondition: None,
            description: None,
        }
    }

    /// Whether it is async ([`Action::new_async`]).
    pub fn is_async(&self) -> bool {
        self.run.is_async()
    }

    /// When the action can run: a test of the context (Python's `precondition`). Without
    /// one it can always run.
    pub fn precondition<F>(mut self, precondition: F) -> Self
    where
        F: Fn(&Context) -> bool + Send + Sync + 'static,
    {
        self.precondition = Some(Arc::new(precondition));
        self
    }

    /// A description, shown in reports.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// The action's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What the explorer explores: the actions, the invariants checked after every step, an
/// optional setup run once before the first state, and what defines a state.
///
/// The API server and its database are the [`Explorer`]'s: its client and its state
/// manager (capture isolation). A world is a value, cloned cheaply (its closures are
/// shared), so a test can build it once and use it to explore and to reproduce.
///
/// ```
/// use venomqa::explore::{Action, World};
/// use venomqa::journey::{Invariant, Severity};
///
/// let world = World::new("shop")
///     .setup(|client, ctx| {
///         let user = client.post("/users").json(&serde_json::json!({"email": "a@b.c"})).send()?;
///         ctx.set("token", user.value("/token")?);
///         Ok(())
///     })
///     .action(Action::new("open_order", |c, ctx| Ok(c.post("/orders").bearer(ctx.str("token")?).send()?)))
///     .invariant(Invariant::new("the API answers", |check| {
///         check.client().get("/health").send()?.expect_status(200)?;
///         Ok(())
///     }).severity(Severity::High))
///     .fingerprint_ignores(["token"]); // a random token does not make another state
/// assert_eq!(world.action_names(), ["open_order"]);
/// world.validate()?;
/// # Ok::<(), venomqa::explore::ExploreError>(())
/// ```
#[derive(Clone)]
pub struct World {
    name: String,
    setup: Option<StepFn>,
    actions: Vec<Action>,
    invariants: Vec<Invariant>,
    ignored: Vec<String>,
    observers: Vec<(String, CheckFn<Value>)>,
    server_errors: bool,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("name", &self.name)
            .field("setup", &self.setup.is_some())
            .field("actions", &self.action_names())
            .field("invariants", &self.invariants)
            .field("fingerprint_ignores", &self.ignored)
            .finish_non_exhaustive()
    }
}

impl World {
    /// An empty world named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        World {
            name: name.into(),
            setup: None,
            actions: Vec::new(),
            invariants: Vec::new(),
            ignored: Vec::new(),
            observers: Vec::new(),
            server_errors: true,
        }
    }

    /// Runs once, after the exploration's checkpoint and before the first state: create
    /// the catalogue, sign the users up, store their tokens in the context. It is undone
    /// with everything else at the end. Its failure stops the exploration as a
    /// [`Fault`] of kind [`FaultKind::Setup`].
    pub fn setup<T, F>(mut self, setup: F) -> Self
    where
        F: Fn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        self.setup = Some(StepFn::blocking(setup));
        self
    }

    /// An async setup (feature `journey-async`): [`setup`](Self::setup) as an async
    /// closure, for [`Explorer::run_async`].
    #[cfg(feature = "journey-async")]
    pub fn setup_async<T, F>(mut self, setup: F) -> Self
    where
        F: AsyncFn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        self.setup = Some(StepFn::nonblocking(setup));
        self
    }

    /// What is async in the world (its setup, actions, invariants), for a blocking run
    /// to refuse: the first one found.
    pub(crate) fn first_async(&self) -> Option<String> {
        if self.setup.as_ref().is_some_and(StepFn::is_async) {
            return Some("an async setup".to_owned());
        }
        if let Some(a) = self.actions.iter().find(|a| a.is_async()) {
            return Some(format!("the async action {:?}", a.name));
        }
        if let Some(i) = self.invariants.iter().find(|i| i.is_async()) {
            return Some(format!("the async invariant {:?}", i.name()));
        }
        self.observers
            .iter()
            .find(|(_, o)| o.is_async())
            .map(|(name, _)| format!("the async observation {name:?}"))
    }

    /// Adds an action.
    pub fn action(mut self, action: Action) -> Self {
        self.actions.push(action);
        self
    }

    /// Adds actions.
    pub fn actions(mut self, actions: impl IntoIterator<Item = Action>) -> Self {
        self.actions.extend(actions);
        self
    }

    /// Adds an invariant, checked after every step. Its `Err` from
    /// [`StepError::msg`], or from a response expectation
    /// ([`expect_status`](crate::journey::Response::expect_status), `expect_json`, `json`),
    /// is a **violation**; any other `Err` (a failed query, an unreachable server) or a
    /// panic means it could not check, and stops the exploration as a [`Fault`].
    pub fn invariant(mut self, invariant: Invariant) -> Self {
        self.invariants.push(invariant);
        self
    }

    /// Context keys that do not tell states apart (random tokens, timestamps): the
    /// fingerprint leaves them out.
    pub fn fingerprint_ignores<S: Into<String>>(
        mut self,
        keys: impl IntoIterator<Item = S>,
    ) -> Self {
        self.ignored.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Adds an observation to the state's fingerprint: a value read through the client
    /// or the database. The capture diff lists an inserted row by its key only, so two
    /// states that differ only in a value of a row inserted since the root (an order
    /// opened and then cancelled) look the same to it; store such values in the context,
    /// or observe them here.
    pub fn observe<F>(mut self, name: impl Into<String>, observe: F) -> Self
    where
        F: Fn(&mut Check<'_>) -> Result<Value, StepError> + Send + Sync + 'static,
    {
        self.observers
            .push((name.into(), CheckFn::Blocking(Arc::new(observe))));
        self
    }

    /// An async observation (feature `journey-async`): [`observe`](Self::observe) as an
    /// async closure, for [`Explorer::run_async`].
    #[cfg(feature = "journey-async")]
    pub fn observe_async<F>(mut self, name: impl Into<String>, observe: F) -> Self
    where
        F: AsyncFn(&mut Check<'_>) -> Result<Value, StepError> + Send + Sync + 'static,
    {
        self.observers
            .push((name.into(), CheckFn::nonblocking(observe)));
        self
    }

    /// Whether a 5xx answer to any request of an action is a violation (of
    /// [`SERVER_ERRORS`], severity high). On by default.
    pub fn server_errors_are_violations(mut self, on: bool) -> Self {
        self.server_errors = on;
        self
    }

    /// The world's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The actions' names, in order.
    pub fn action_names(&self) -> Vec<&str> {
        self.actions.iter().map(|a| a.name.as_str()).collect()
    }

    /// The invariants (cheap clones), for a [`JourneyRunner`](crate::journey::JourneyRunner)
    /// running a reproduction.
    pub fn invariants(&self) -> Vec<Invariant> {
        self.invariants.clone()
    }

    /// Checks the definition: a name, at least one action, unique non-empty action and
    /// invariant names. Every problem is listed.
    pub fn validate(&self) -> Result<(), ExploreError> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("the world has no name".to_owned());
        }
        if self.actions.is_empty() {
            problems.push("it has no actions; add some with .action(Action::new(..))".to_owned());
        }
        let mut names = HashSet::new();
        for a in &self.actions {
            if a.name.trim().is_empty() {
                problems.push("an action has no name".to_owned());
            } else if !names.insert(a.name.as_str()) {
                problems.push(format!(
                    "action {:?} appears twice; action names are unique",
                    a.name
                ));
            }
        }
        let mut names = HashSet::new();
        for i in &self.invariants {
            if i.name().trim().is_empty() {
                problems.push("an invariant has no name".to_owned());
            } else if !names.insert(i.name()) || (self.server_errors && i.name() == SERVER_ERRORS) {
                problems.push(format!(
                    "invariant {:?} appears twice; invariant names are unique",
                    i.name()
                ));
            }
        }
        if self.actions.len() > u16::MAX as usize {
            problems.push(format!(
                "it has {} actions; at most 65535",
                self.actions.len()
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ExploreError::Invalid {
                world: self.name.clone(),
                problems,
            })
        }
    }

    /// A journey that runs the world's setup and then the actions named in `sequence`,
    /// each as one step, exactly as the explorer ran them: an action's `Err` is not a
    /// failure (except an unreachable server), a precondition that does not hold is,
    /// and so is a 5xx answer when [`server_errors_are_violations`](Self::server_errors_are_violations)
    /// is on. Run it with the world's [`invariants`](Self::invariants):
    ///
    /// ```no_run
    /// # use venomqa::explore::World;
    /// # use venomqa::journey::{Client, JourneyRunner};
    /// # fn f(world: World, client: Client, db: &mut venomqa::sqlite::SqliteStateManager) -> Result<(), Box<dyn std::error::Error>> {
    /// let journey = world.journey("repro", &["open_order", "pay_order"])?;
    /// let result = JourneyRunner::new(client)
    ///     .state_manager(db)
    ///     .invariants(world.invariants())
    ///     .run(&journey)?;
    /// result.assert_passed(); // fails while the bug is there
    /// # Ok(()) }
    /// ```
    pub fn journey<S: AsRef<str>>(
        &self,
        name: &str,
        sequence: &[S],
    ) -> Result<crate::journey::Journey, ExploreError> {
        let indices = sequence
            .iter()
            .map(|s| {
                let s = s.as_ref();
                self.actions
                    .iter()
                    .position(|a| a.name == s)
                    .ok_or_else(|| ExploreError::UnknownAction {
                        world: self.name.clone(),
                        action: s.to_owned(),
                        known: self.action_names().join(", "),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(repro::journey(self, name, &indices))
    }

    pub(crate) fn action_at(&self, i: usize) -> &Action {
        &self.actions[i]
    }
}

/// How the explorer picks the next (state, action) pair to try.
///
/// Every strategy tries each enabled action of each state it reaches, once, up to the
/// maximum depth, and recognises states it has seen (so each is expanded once); they
/// differ in the order, which matters when a budget stops the run first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// Breadth first: every state at depth 1, then depth 2, ...; the first violation of
    /// each invariant is one of the shortest. Moving to the next state of a level rolls
    /// back to the deepest common checkpoint and replays the rest of its path.
    Bfs,
    /// Depth first, actions in the world's order: one rollback per step, no replays.
    Dfs,
    /// A random untried (state, action) pair each step, from a seeded generator: the same
    /// seed against the same API explores in the same order.
    Random {
        /// The generator's seed.
        seed: u64,
    },
    /// Prefer what has not been seen: the untried pair whose action has run least often,
    /// from a state whose arrival showed a new (action, status class) pair, nearest the
    /// current state; ties broken by a seeded generator.
    CoverageGuided {
        /// The tie-breaking generator's seed.
        seed: u64,
    },
}

impl Strategy {
    /// `bfs`, `dfs`, `random(seed 7)`, `coverage-guided(seed 7)`.
    pub fn label(&self) -> String {
        match self {
            Strategy::Bfs => "bfs".to_owned(),
            Strategy::Dfs => "dfs".to_owned(),
            Strategy::Random { seed } => format!("random (seed {seed})"),
            Strategy::CoverageGuided { seed } => format!("coverage-guided (seed {seed})"),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(all(test, feature = "journey-async"))]
mod async_tests;
#[cfg(test)]
mod tests;
