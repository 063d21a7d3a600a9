//! The [`StateManager`] protocol, the reusable [`BaseStateManager`], and the checkpoint
//! naming rule every backend shares.

use std::any::Any;
use std::ops::{Deref, DerefMut};

use crate::error::{Error, Result};

/// The longest checkpoint name, in bytes. PostgreSQL truncates identifiers at 63 bytes, so
/// a longer name could silently collide with another one there.
pub const MAX_CHECKPOINT_NAME_LEN: usize = 63;

/// Checks a checkpoint name against the rule every backend shares.
///
/// A name starts with an ASCII letter or `_`, continues with ASCII letters, digits or `_`,
/// and is 1 to 63 bytes long. Names are never rewritten: `a-b` and `a b` are errors, not
/// two spellings of `a_b` (the Python original maps both to the same savepoint). The rule
/// makes every name a valid unquoted identifier on every SQL backend, and backends quote
/// it anyway.
///
/// ```
/// use venomqa::validate_checkpoint_name;
/// assert!(validate_checkpoint_name("before_signup").is_ok());
/// assert!(validate_checkpoint_name("_2nd").is_ok());
/// assert!(validate_checkpoint_name("2nd").is_err());
/// assert!(validate_checkpoint_name("a-b").is_err());
/// assert!(validate_checkpoint_name("x; DROP TABLE users").is_err());
/// ```
pub fn validate_checkpoint_name(name: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidCheckpoint {
        name: name.to_owned(),
        reason,
    };
    let Some(first) = name.chars().next() else {
        return Err(invalid("it is empty".into()));
    };
    if name.len() > MAX_CHECKPOINT_NAME_LEN {
        return Err(invalid(format!("it is {} bytes long", name.len())));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(invalid(format!("it starts with {first:?}")));
    }
    if let Some((at, c)) = name
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
    {
        return Err(invalid(format!("it contains {c:?} at byte {at}")));
    }
    Ok(())
}

/// The protocol every backend implements: the seven operations of the reference
/// document, plus a health check and a fast "discard" with defaults.
///
/// Checkpoints form a stack with database semantics:
///
/// - [`checkpoint`](Self::checkpoint) pushes a new name (duplicates are an error);
/// - [`rollback`](Self::rollback) to `x` restores the state at `x`, keeps `x` and discards
///   every checkpoint made after it;
/// - [`release`](Self::release) of `x` discards `x` and every later checkpoint and keeps
///   the changes. On SQL backends, releasing the outermost checkpoint commits;
/// - [`discard`](Self::discard) of `x` rolls back to `x` and then releases it, leaving
///   the state exactly as it was before `checkpoint(x)`.
///
/// [`BaseStateManager`] implements the bookkeeping; a backend adds the I/O. The trait is
/// object safe: the registry stores `Box<dyn StateManager>`, and
/// [`downcast_mut`](trait.StateManager.html#method.downcast_mut) gets the concrete type back.
///
/// ```
/// use venomqa::{BaseStateManager, Result, StateManager};
///
/// /// A counter whose value is checkpointed.
/// struct Counter { base: BaseStateManager, value: i64, saved: Vec<i64> }
///
/// impl StateManager for Counter {
///     fn connect(&mut self) -> Result<()> { self.base.set_connected(true); Ok(()) }
///     fn disconnect(&mut self) -> Result<()> { self.base.set_connected(false); Ok(()) }
///     fn is_connected(&self) -> bool { self.base.is_connected() }
///     fn checkpoints(&self) -> &[String] { self.base.checkpoints() }
///     fn checkpoint(&mut self, name: &str) -> Result<()> {
///         let (value, saved) = (self.value, &mut self.saved);
///         self.base.checkpoint(name, |_, _| { saved.push(value); Ok(()) })
///     }
///     fn rollback(&mut self, name: &str) -> Result<()> {
///         let (value, saved) = (&mut self.value, &mut self.saved);
///         self.base.rollback(name, |index, _| {
///             *value = saved[index];
///             saved.truncate(index + 1);
///             Ok(())
///         })
///     }
///     fn release(&mut self, name: &str) -> Result<()> {
///         let saved = &mut self.saved;
///         self.base.release(name, |index, _| { saved.truncate(index); Ok(()) })
///     }
///     fn reset(&mut self) -> Result<()> {
///         self.base.ensure_connected()?;
///         self.value = 0;
///         self.saved.clear();
///         self.base.clear_checkpoints();
///         Ok(())
///     }
/// }
///
/// let mut c = Counter { base: BaseStateManager::new("counter", ""), value: 1, saved: vec![] };
/// c.connect()?;
/// c.checkpoint("start")?;
/// c.value = 42;
/// c.rollback("start")?;
/// assert_eq!(c.value, 1);
/// # Ok::<(), venomqa::Error>(())
/// ```
pub trait StateManager: Any + Send {
    /// Establishes the connection to the database or service.
    fn connect(&mut self) -> Result<()>;

    /// Closes the connection. Active checkpoints are forgotten.
    fn disconnect(&mut self) -> Result<()>;

    /// Creates a checkpoint named `name` (see [`validate_checkpoint_name`]).
    fn checkpoint(&mut self, name: &str) -> Result<()>;

    /// Restores the state saved at checkpoint `name`; keeps `name`, discards later ones.
    fn rollback(&mut self, name: &str) -> Result<()>;

    /// Forgets checkpoint `name` and every later one, keeping the changes made since.
    fn release(&mut self, name: &str) -> Result<()>;

    /// Resets the store to a clean state (for SQL: empties the chosen tables) and forgets
    /// every checkpoint.
    fn reset(&mut self) -> Result<()>;

    /// Whether the manager believes it is connected (no round trip; see
    /// [`health_check`](Self::health_check)).
    fn is_connected(&self) -> bool;

    /// The active checkpoints, oldest first.
    fn checkpoints(&self) -> &[String];

    /// Checks that the connection really works (a round trip such as `SELECT 1`).
    ///
    /// The pool calls this before it hands a manager to a test; a manager that fails is
    /// dropped and replaced. The default only asks [`is_connected`](Self::is_connected).
    fn health_check(&mut self) -> bool {
        self.is_connected()
    }

    /// Rolls back to `name` and releases it: the state is as it was just before
    /// `checkpoint(name)`. Sessions end every test and every checkpoint block with this.
    ///
    /// The default calls [`rollback`](Self::rollback) then [`release`](Self::release);
    /// backends override it when they can do both in one round trip (SQL backends end the
    /// whole transaction with one `ROLLBACK` when `name` is the outermost checkpoint).
    fn discard(&mut self, name: &str) -> Result<()> {
        self.rollback(name)?;
        self.release(name)
    }

    /// Runs a setup script (for SQL backends: a file of statements), used by the
    /// registry's once-per-process setup step. The default refuses: backends that are not
    /// scripted take a setup function instead ([`register_setup!`](crate::register_setup)).
    fn execute_script(&mut self, script: &str) -> Result<()> {
        let _ = script;
        Err(Error::unsupported(
            std::any::type_name::<Self>(),
            "setup scripts",
            "register a setup function with venomqa::register_setup! instead of `setup:` files",
        ))
    }

    /// Whether each connection of this manager sees its own private data (an in-memory
    /// SQLite database, the in-memory backend), so the setup step must run on every new
    /// connection instead of once per process. Defaults to `false`.
    fn setup_per_connection(&self) -> bool {
        false
    }
}

impl dyn StateManager {
    /// The concrete manager behind a `dyn StateManager`, if it is an `M`.
    pub fn downcast_mut<M: StateManager>(&mut self) -> Option<&mut M> {
        (self as &mut dyn Any).downcast_mut::<M>()
    }

    /// The concrete manager behind a `dyn StateManager`, if it is an `M`.
    pub fn downcast_ref<M: StateManager>(&self) -> Option<&M> {
        (self as &dyn Any).downcast_ref::<M>()
    }

    /// Whether the manager is an `M`.
    pub fn is<M: StateManager>(&self) -> bool {
        (self as &dyn Any).is::<M>()
    }
}

/// The reusable base of a backend (the reference's `BaseStateManager`): the connected flag,
/// [`ensure_connected`](Self::ensure_connected), and the ordered checkpoint stack with the
/// semantics described on [`StateManager`], plus a `tracing` event for every checkpoint,
/// rollback and release (target `venomqa`, quiet unless a subscriber asks).
///
/// Each stack operation validates, runs the backend's I/O closure, and updates the stack
/// only if the closure succeeded, so a failed operation leaves the stack as it was.
#[derive(Clone)]
pub struct BaseStateManager {
    backend: String,
    url: String,
    connected: bool,
    checkpoints: Vec<String>,
}

/// Shows the URL with its password replaced by `***`.
impl std::fmt::Debug for BaseStateManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseStateManager")
            .field("backend", &self.backend)
            .field("url", &self.redacted_url())
            .field("connected", &self.connected)
            .field("checkpoints", &self.checkpoints)
            .finish()
    }
}

impl BaseStateManager {
    /// A disconnected base for backend `backend` (used in messages) at `url`.
    pub fn new(backend: impl Into<String>, url: impl Into<String>) -> Self {
        BaseStateManager {
            backend: backend.into(),
            url: url.into(),
            connected: false,
            checkpoints: Vec::new(),
        }
    }

    /// The backend's name, for messages.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The connection URL as given (may contain a password: never print it; see
    /// [`redacted_url`](Self::redacted_url)).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection URL with its password replaced by `***`.
    pub fn redacted_url(&self) -> String {
        crate::redact_url(&self.url)
    }

    /// Whether [`set_connected(true)`](Self::set_connected) was called last.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Records a connect or disconnect. Disconnecting forgets every checkpoint.
    pub fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
        if !connected {
            self.checkpoints.clear();
        }
    }

    /// `Err(Error::NotConnected)` unless connected.
    pub fn ensure_connected(&self) -> Result<()> {
        if self.connected {
            Ok(())
        } else {
            Err(Error::NotConnected {
                backend: self.backend.clone(),
            })
        }
    }

    /// The active checkpoints, oldest first.
    pub fn checkpoints(&self) -> &[String] {
        &self.checkpoints
    }

    /// Forgets every checkpoint (after a reset, or when the backend ended its transaction).
    pub fn clear_checkpoints(&mut self) {
        self.checkpoints.clear();
    }

    /// Pushes checkpoint `name` after `io(name, active)` succeeds, where `active` is the
    /// stack before the push (empty for the outermost checkpoint, where SQL backends begin
    /// their transaction).
    pub fn checkpoint(
        &mut self,
        name: &str,
        io: impl FnOnce(&str, &[String]) -> Result<()>,
    ) -> Result<()> {
        self.ensure_connected()?;
        validate_checkpoint_name(name)?;
        if self.checkpoints.iter().any(|c| c == name) {
            return Err(Error::DuplicateCheckpoint {
                name: name.to_owned(),
            });
        }
        io(name, &self.checkpoints)?;
        self.checkpoints.push(name.to_owned());
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, depth = self.checkpoints.len(), "checkpoint created");
        Ok(())
    }

    /// Rolls back to `name`: runs `io(index, discarded)`, where `index` is `name`'s position
    /// in the stack and `discarded` the checkpoints after it, then drops those.
    pub fn rollback(
        &mut self,
        name: &str,
        io: impl FnOnce(usize, &[String]) -> Result<()>,
    ) -> Result<()> {
        let index = self.position(name)?;
        io(index, &self.checkpoints[index + 1..])?;
        self.checkpoints.truncate(index + 1);
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, "rolled back to checkpoint");
        Ok(())
    }

    /// Releases `name`: runs `io(index, released)`, where `released` is `name` and every
    /// later checkpoint, then drops them.
    pub fn release(
        &mut self,
        name: &str,
        io: impl FnOnce(usize, &[String]) -> Result<()>,
    ) -> Result<()> {
        let index = self.position(name)?;
        io(index, &self.checkpoints[index..])?;
        self.checkpoints.truncate(index);
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, "checkpoint released");
        Ok(())
    }

    /// Rolls back to `name` and releases it in one step: runs `io(index, dropped)` where
    /// `dropped` is `name` and every later checkpoint, then drops them.
    pub fn discard(
        &mut self,
        name: &str,
        io: impl FnOnce(usize, &[String]) -> Result<()>,
    ) -> Result<()> {
        let index = self.position(name)?;
        io(index, &self.checkpoints[index..])?;
        self.checkpoints.truncate(index);
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, "rolled back and released checkpoint");
        Ok(())
    }

    /// Where `name` is in the stack, or the error a rollback/release of it returns.
    pub fn position(&self, name: &str) -> Result<usize> {
        self.ensure_connected()?;
        validate_checkpoint_name(name)?;
        self.checkpoints
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::UnknownCheckpoint {
                name: name.to_owned(),
                active: if self.checkpoints.is_empty() {
                    "none".to_owned()
                } else {
                    self.checkpoints.join(", ")
                },
            })
    }
}

/// A connected manager that disconnects when dropped (the reference's context manager).
///
/// ```
/// use venomqa::{Connected, StateManager};
/// use venomqa::memory::MemoryStateManager;
///
/// let mut store = Connected::new(MemoryStateManager::new())?;
/// store.set("k", "v");
/// store.checkpoint("start")?;
/// store.set("k", "changed");
/// store.rollback("start")?;
/// assert_eq!(store.get("k"), Some("v"));
/// // dropped here: disconnect() runs
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Debug)]
pub struct Connected<M: StateManager> {
    manager: Option<M>,
}

impl<M: StateManager> Connected<M> {
    /// Connects `manager` and wraps it.
    pub fn new(mut manager: M) -> Result<Self> {
        manager.connect()?;
        Ok(Connected {
            manager: Some(manager),
        })
    }

    /// Disconnects now, returning the error that `Drop` would have to swallow.
    pub fn close(mut self) -> Result<()> {
        match self.manager.take() {
            Some(mut m) => m.disconnect(),
            None => Ok(()),
        }
    }
}

impl<M: StateManager> Deref for Connected<M> {
    type Target = M;
    fn deref(&self) -> &M {
        self.manager.as_ref().expect("manager present until drop")
    }
}

impl<M: StateManager> DerefMut for Connected<M> {
    fn deref_mut(&mut self) -> &mut M {
        self.manager.as_mut().expect("manager present until drop")
    }
}

impl<M: StateManager> Drop for Connected<M> {
    fn drop(&mut self) {
        if let Some(mut m) = self.manager.take() {
            if let Err(e) = m.disconnect() {
                tracing::warn!(target: "venomqa", error = %e, "disconnect on drop failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_rejected_never_rewritten() {
        let hostile = [
            "",
            "a-b",
            "a b",
            "a;b",
            "x\"; DROP TABLE users; --",
            "x`; DROP TABLE users; --",
            "x'; DROP TABLE users; --",
            "a\0b",
            "1abc",
            "sp\u{e9}cial",
            "tab\there",
            "new\nline",
            "a.b",
            "$dollar",
            &"a".repeat(64),
        ];
        for name in hostile {
            let err = validate_checkpoint_name(name).expect_err(name);
            assert!(
                matches!(err, Error::InvalidCheckpoint { .. }),
                "{name:?}: {err}"
            );
        }
        for ok in ["a", "_", "A_1", "before_signup", &"a".repeat(63)] {
            validate_checkpoint_name(ok).unwrap();
        }
    }

    fn connected() -> BaseStateManager {
        let mut b = BaseStateManager::new("test", "");
        b.set_connected(true);
        b
    }

    #[test]
    fn stack_semantics() {
        let mut b = connected();
        for n in ["a", "b", "c"] {
            b.checkpoint(n, |_, _| Ok(())).unwrap();
        }
        assert!(matches!(
            b.checkpoint("b", |_, _| Ok(())),
            Err(Error::DuplicateCheckpoint { .. })
        ));
        b.rollback("b", |i, discarded| {
            assert_eq!(i, 1);
            assert_eq!(discarded, ["c"]);
            Ok(())
        })
        .unwrap();
        assert_eq!(b.checkpoints(), ["a", "b"]);
        b.release("a", |i, released| {
            assert_eq!(i, 0);
            assert_eq!(released, ["a", "b"]);
            Ok(())
        })
        .unwrap();
        assert!(b.checkpoints().is_empty());
        assert!(matches!(
            b.rollback("a", |_, _| Ok(())),
            Err(Error::UnknownCheckpoint { .. })
        ));
    }

    #[test]
    fn failed_io_leaves_the_stack_unchanged() {
        let mut b = connected();
        b.checkpoint("a", |_, _| Ok(())).unwrap();
        let fail = |_: usize, _: &[String]| Err(Error::backend("test", "x", "boom"));
        assert!(b
            .checkpoint("b", |_, _| Err(Error::backend("test", "x", "boom")))
            .is_err());
        assert!(b.release("a", fail).is_err());
        assert!(b.rollback("a", fail).is_err());
        assert_eq!(b.checkpoints(), ["a"]);
    }

    #[test]
    fn debug_never_shows_the_password() {
        let b = BaseStateManager::new("mysql", "mysql://root:hunter2@db/app");
        let text = format!("{b:?}");
        assert!(
            !text.contains("hunter2") && text.contains("root:***@db"),
            "{text}"
        );
    }

    #[test]
    fn not_connected() {
        let mut b = BaseStateManager::new("test", "");
        let e = b.checkpoint("a", |_, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("not connected"), "{e}");
    }
}
