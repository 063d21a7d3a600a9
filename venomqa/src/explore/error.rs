//! [`ExploreError`]: why an exploration did not start (an invalid world, no state manager,
//! one that does not capture, a failed first checkpoint).

/// Why an exploration did not start. (One that ran and found violations, hit a fault or
/// a budget is an [`ExplorationResult`](super::ExplorationResult).)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExploreError {
    /// The world's definition is wrong; every problem is listed.
    #[error("world {world:?} is invalid: {}; fix the world's definition", problems.join("; "))]
    Invalid {
        /// The world.
        world: String,
        /// Each problem.
        problems: Vec<String>,
    },
    /// A sequence names an action the world does not have.
    #[error("world {world:?} has no action {action:?} (its actions: {known}); check the sequence against the world the explorer ran")]
    UnknownAction {
        /// The world.
        world: String,
        /// The name asked for.
        action: String,
        /// The world's actions.
        known: String,
    },
    /// The explorer has no state manager to roll back with.
    #[error("exploring world {world:?} needs a state manager to roll the database back between sequences; give the explorer one with .state_manager(..)")]
    NoStateManager {
        /// The world.
        world: String,
    },
    /// The state manager's rollbacks would not undo what the API server writes.
    #[error("exploring world {world:?} refused: {manager} does not capture what other connections write, so the API server's writes would leak from one sequence into the next and stay after the exploration; use capture isolation (`isolation: capture`) and start the server on the state manager's url()")]
    NoCapture {
        /// The world.
        world: String,
        /// The state manager, for the message.
        manager: String,
    },
    /// A blocking [`run`](super::Explorer::run) was given an async setup, action or
    /// invariant, which only [`run_async`](super::Explorer::run_async) can await.
    #[error("world {world:?} has {what}, which a blocking run() cannot await; call .run_async().await inside a Tokio runtime (#[tokio::test] or an async #[venom_test])")]
    Async {
        /// The world.
        world: String,
        /// What is async: the first one found.
        what: String,
    },
    /// The state manager failed before the exploration started.
    #[error("exploring world {world:?}: {operation} failed: {source}")]
    State {
        /// The world.
        world: String,
        /// What the explorer was doing.
        operation: String,
        /// The state manager's error.
        #[source]
        source: Box<crate::Error>,
    },
}
