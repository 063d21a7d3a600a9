//! [`JourneyError`]: why a journey did not run.

/// Why a journey did not run. (A journey that ran and failed is a [`JourneyResult`](crate::journey::JourneyResult) whose
/// [`passed`](crate::journey::JourneyResult::passed) is false.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JourneyError {
    /// The journey's definition is wrong; every problem is listed.
    #[error("journey {journey:?} is invalid: {}; fix the journey's definition", problems.join("; "))]
    Invalid {
        /// The journey.
        journey: String,
        /// Each problem, naming the step, path, branch or checkpoint it is about.
        problems: Vec<String>,
    },
    /// The journey has branches, and the runner no state manager to roll back with.
    #[error("journey {journey:?} has branches, but the runner has no state manager to roll the database back between paths; give it one with .state_manager(..)")]
    NoStateManager {
        /// The journey.
        journey: String,
    },
    /// The state manager's rollbacks would not undo what the API server writes.
    #[error("journey {journey:?} refused: {manager} does not capture what other connections write, so the API server's writes would leak from one path into the next and stay after the journey; use capture isolation (SQLite: `isolation: capture` on a file URL) and start the server on the state manager's url()")]
    NoCapture {
        /// The journey.
        journey: String,
        /// The state manager, for the message.
        manager: String,
    },
    /// Parallel paths were asked for where the paths would share one database.
    #[error("journey {journey:?}: parallel_paths({workers}) refused: {reason}")]
    Parallel {
        /// The journey.
        journey: String,
        /// How many workers were asked for.
        workers: usize,
        /// Why it cannot run so.
        reason: String,
    },
    /// A blocking [`run`](crate::journey::JourneyRunner::run) was given async steps or
    /// invariants, which only [`run_async`](crate::journey::JourneyRunner::run_async) can
    /// await.
    #[error("journey {journey:?} has {what}, which a blocking run() cannot await; call .run_async(&journey).await inside a Tokio runtime (#[tokio::test] or an async #[venom_test])")]
    Async {
        /// The journey.
        journey: String,
        /// What is async: the first such step or invariant.
        what: String,
    },
    /// The state manager failed before the journey started.
    #[error("journey {journey:?}: {operation} failed: {source}")]
    State {
        /// The journey.
        journey: String,
        /// What the runner was doing.
        operation: String,
        /// The state manager's error.
        #[source]
        source: Box<crate::Error>,
    },
}
