//! The states an exploration reached and the transitions between them: the graph the
//! HTML report draws.

/// The state graph of an exploration: each distinct state (the root is state 0) with its
/// depth, and each transition tried, once per (state, action).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct StateGraph {
    /// Each state's depth: the length of the shortest path known to it.
    pub depths: Vec<usize>,
    /// The transitions, in the order they were first tried.
    pub transitions: Vec<Transition>,
}

/// One action tried from a state, and the state it led to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transition {
    /// The state it started from.
    pub from: usize,
    /// The state it reached.
    pub to: usize,
    /// The action, as its index in [`Coverage::actions`](super::Coverage::actions).
    pub action: usize,
    /// What came back: the status of its last response (`"201"`), `"error"` or
    /// `"no request"`.
    pub outcome: String,
    /// Whether an invariant was violated after it.
    pub violated: bool,
}

impl StateGraph {
    /// How many states it has.
    pub fn states(&self) -> usize {
        self.depths.len()
    }
}
