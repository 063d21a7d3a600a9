//! What a journey is made of: [`Step`]s, [`Checkpoint`]s, [`Branch`]es of [`Path`]s, as
//! [`Item`]s of a [`Journey`], each built with chained calls.

use std::fmt;
use std::time::Duration;

use super::call::StepFn;
use super::client::Client;
use super::context::Context;
use super::step_error::StepError;

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
    pub(crate) action: StepFn,
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
        Self::with_action(name.into(), StepFn::blocking(action))
    }

    /// A step named `name` running the async closure `action(client, ctx)`, which
    /// `.await`s its requests (feature `journey-async`). Run the journey with
    /// [`JourneyRunner::run_async`](super::JourneyRunner::run_async); blocking steps and
    /// async ones mix in one journey.
    ///
    /// ```
    /// use venomqa::journey::Step;
    ///
    /// let step = Step::new_async("add_to_cart", async |client, ctx| {
    ///     let cart = client.post("/cart").await?.expect_status(201)?;
    ///     ctx.set("cart_id", cart.value("/id")?);
    ///     Ok(())
    /// });
    /// assert_eq!(step.name(), "add_to_cart");
    /// ```
    #[cfg(feature = "journey-async")]
    pub fn new_async<T, F>(name: impl Into<String>, action: F) -> Self
    where
        F: AsyncFn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        Self::with_action(name.into(), StepFn::nonblocking(action))
    }

    /// A step named `name` running `action`, blocking or async.
    pub(crate) fn with_action(name: String, action: StepFn) -> Self {
        Step {
            name,
            action,
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

    /// Whether its action is async ([`Step::new_async`]).
    pub fn is_async(&self) -> bool {
        self.action.is_async()
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

    /// The first async step, main or of a path.
    pub(crate) fn first_async_step(&self) -> Option<&Step> {
        self.items
            .iter()
            .flat_map(|i| match i {
                Item::Step(s) => vec![s],
                Item::Branch(b) => b.paths.iter().flat_map(|p| &p.steps).collect(),
                Item::Checkpoint(_) => Vec::new(),
            })
            .find(|s| s.is_async())
    }
}
