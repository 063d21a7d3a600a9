//! [`Invariant`]: a rule checked after every step, and [`Check`], what it looks at.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

#[cfg(feature = "journey-async")]
use crate::journey::call::{caught, Local};
use crate::journey::client::Client;
use crate::journey::context::Context;
use crate::journey::report::Severity;
use crate::journey::StepError;
use crate::state::StateManager;

/// A rule checked after every step that passed: "no order without a user", "stock never
/// below 0". A violation fails the step, naming the invariant and the step.
///
/// ```
/// use venomqa::journey::Invariant;
/// use venomqa::sqlite::Sqlite;
///
/// let stock = Invariant::new("stock never below 0", |check| {
///     let db = check.connection::<Sqlite>()?;
///     let n: i64 = db.query_row("SELECT COUNT(*) FROM products WHERE stock < 0", [], |r| r.get(0))?;
///     if n > 0 {
///         return Err(venomqa::journey::StepError::msg(format!("{n} products have negative stock")));
///     }
///     Ok(())
/// });
/// let health = Invariant::new("the API answers", |check| {
///     check.client().get("/health").send()?.expect_status(200)?;
///     Ok(())
/// });
/// # let _ = (stock, health);
/// ```
#[derive(Clone)]
pub struct Invariant {
    name: String,
    pub(crate) check: CheckFn,
    severity: Severity,
}

impl std::fmt::Debug for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invariant")
            .field("name", &self.name)
            .field("severity", &self.severity)
            .finish_non_exhaustive()
    }
}

impl Invariant {
    /// An invariant named `name`: `check` returns `Err` (or panics) when it is violated.
    /// Its severity is [`Severity::Critical`] until [`severity`](Self::severity) says
    /// otherwise.
    pub fn new<F>(name: impl Into<String>, check: F) -> Self
    where
        F: Fn(&mut Check<'_>) -> Result<(), StepError> + Send + Sync + 'static,
    {
        Self::with_check(name.into(), CheckFn::Blocking(Arc::new(check)))
    }

    /// An invariant whose check is an async closure, which `.await`s its requests
    /// (feature `journey-async`; the journey runs with
    /// [`JourneyRunner::run_async`](super::JourneyRunner::run_async)).
    ///
    /// ```
    /// use venomqa::journey::Invariant;
    ///
    /// let health = Invariant::new_async("the API answers", async |check| {
    ///     check.client().get("/health").await?.expect_status(200)?;
    ///     Ok(())
    /// });
    /// # let _ = health;
    /// ```
    #[cfg(feature = "journey-async")]
    pub fn new_async<F>(name: impl Into<String>, check: F) -> Self
    where
        F: AsyncFn(&mut Check<'_>) -> Result<(), StepError> + Send + Sync + 'static,
    {
        Self::with_check(name.into(), CheckFn::nonblocking(check))
    }

    fn with_check(name: String, check: CheckFn) -> Self {
        Invariant {
            name,
            check,
            severity: Severity::Critical,
        }
    }

    /// Whether its check is async ([`Invariant::new_async`]).
    pub fn is_async(&self) -> bool {
        self.check.is_async()
    }

    /// How bad a violation is, for reports (the explorer's violations carry it; the
    /// journey runner reports every violated invariant as critical).
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The invariant's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its severity.
    pub fn get_severity(&self) -> Severity {
        self.severity
    }
}

/// What an [`Invariant`] looks at: the client, the context, the database (through the
/// state manager), and where the journey is.
pub struct Check<'r> {
    client: &'r Client,
    context: &'r Context,
    manager: Option<&'r mut dyn StateManager>,
    step: &'r str,
    path: Option<&'r str>,
}

impl std::fmt::Debug for Check<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("step", &self.step)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'r> Check<'r> {
    /// What an invariant checks after `step` (of `path`, if any): the explorer builds
    /// these too.
    pub(crate) fn new(
        client: &'r Client,
        context: &'r Context,
        manager: Option<&'r mut dyn StateManager>,
        step: &'r str,
        path: Option<&'r str>,
    ) -> Self {
        Check {
            client,
            context,
            manager,
            step,
            path,
        }
    }
}

impl Check<'_> {
    /// The journey's HTTP client.
    pub fn client(&self) -> &Client {
        self.client
    }

    /// The context after the step.
    pub fn context(&self) -> &Context {
        self.context
    }

    /// The step just run.
    pub fn step(&self) -> &str {
        self.step
    }

    /// The path being run, if the step is in one.
    pub fn path(&self) -> Option<&str> {
        self.path
    }

    /// The runner's state manager, or an error when it has none.
    pub fn state_manager(&mut self) -> Result<&mut dyn StateManager, StepError> {
        match self.manager.as_deref_mut() {
            Some(m) => Ok(m),
            None => Err(StepError::msg(
                "the runner has no state manager; give it one with .state_manager(..)",
            )),
        }
    }

    /// The runner's state manager as an `M`, or an error naming the type asked for. For a
    /// typed backend's database, [`connection`](Self::connection) is simpler: it works
    /// whether the runner was given a session (a pooled
    /// [`Connected<B>`](crate::Connected)) or a standalone [`Manager<B>`](crate::Manager).
    pub fn manager<M: StateManager>(&mut self) -> Result<&mut M, StepError> {
        self.state_manager()?.downcast_mut::<M>().ok_or_else(|| {
            StepError::msg(format!(
                "the runner's state manager is not a {}",
                std::any::type_name::<M>()
            ))
        })
    }

    /// The native connection of the runner's state manager, a typed backend `B`'s
    /// (`check.connection::<Sqlite>()?` is a `rusqlite::Connection`), or an error saying
    /// it is of another backend.
    pub fn connection<B: crate::Backend>(&mut self) -> Result<&mut B::Conn, StepError> {
        Ok(self.state_manager()?.connection::<B>()?)
    }
}

type BlockingCheck<T> = dyn Fn(&mut Check<'_>) -> Result<T, StepError> + Send + Sync;
#[cfg(feature = "journey-async")]
type AsyncCheck<T> = dyn for<'a, 'r> Fn(&'a mut Check<'r>) -> Local<'a, T> + Send + Sync;

/// A closure over a [`Check`], blocking or async: an invariant's check (`T = ()`), an
/// explorer's observation (`T` = the value observed).
pub(crate) enum CheckFn<T = ()> {
    /// A blocking closure.
    Blocking(Arc<BlockingCheck<T>>),
    /// An async closure.
    #[cfg(feature = "journey-async")]
    Async(Arc<AsyncCheck<T>>),
}

impl<T> Clone for CheckFn<T> {
    fn clone(&self) -> Self {
        match self {
            CheckFn::Blocking(f) => CheckFn::Blocking(Arc::clone(f)),
            #[cfg(feature = "journey-async")]
            CheckFn::Async(f) => CheckFn::Async(Arc::clone(f)),
        }
    }
}

impl<T: 'static> CheckFn<T> {
    /// An async check.
    #[cfg(feature = "journey-async")]
    pub(crate) fn nonblocking<F>(check: F) -> Self
    where
        F: AsyncFn(&mut Check<'_>) -> Result<T, StepError> + Send + Sync + 'static,
    {
        let check = Arc::new(check);
        CheckFn::Async(Arc::new(move |c| {
            let check = Arc::clone(&check);
            Box::pin(async move { check(c).await })
        }))
    }

    /// Runs the check on `check`: what it returned, or its panic.
    pub(crate) async fn call(
        &self,
        check: &mut Check<'_>,
    ) -> std::thread::Result<Result<T, StepError>> {
        match self {
            CheckFn::Blocking(f) => catch_unwind(AssertUnwindSafe(|| f(check))),
            #[cfg(feature = "journey-async")]
            CheckFn::Async(f) => caught(f(check)).await,
        }
    }

    /// Whether it is async.
    pub(crate) fn is_async(&self) -> bool {
        !matches!(self, CheckFn::Blocking(_))
    }
}
