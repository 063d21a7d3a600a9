//! [`StateHandle`]: the state manager a runner checkpoints and rolls back with, owned,
//! borrowed, or a session's.

use crate::session::{Session, SessionManager};
use crate::state::StateManager;

/// The state manager a runner rolls back with: owned, borrowed, or a session's.
///
/// Built by `From`: a [`Manager`](crate::Manager) (owned), `&mut M` for any manager,
/// `&mut dyn StateManager`,
/// `Box<dyn StateManager>`, or `&mut Session` (any session type; the journey's checkpoints
/// nest under the session's root).
pub struct StateHandle<'a> {
    inner: Inner<'a>,
    label: String,
}

enum Inner<'a> {
    Owned(Box<dyn StateManager>),
    Borrowed(&'a mut dyn StateManager),
}

impl std::fmt::Debug for StateHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateHandle")
            .field("manager", &self.label)
            .finish()
    }
}

impl StateHandle<'_> {
    /// The manager.
    pub fn get(&mut self) -> &mut dyn StateManager {
        match &mut self.inner {
            Inner::Owned(m) => m.as_mut(),
            Inner::Borrowed(m) => &mut **m,
        }
    }

    /// The manager, for reading.
    pub fn get_ref(&self) -> &dyn StateManager {
        match &self.inner {
            Inner::Owned(m) => m.as_ref(),
            Inner::Borrowed(m) => &**m,
        }
    }

    /// What the manager is, for messages (`the state manager venomqa::Manager<..Sqlite>`).
    pub fn label(&self) -> &str {
        &self.label
    }
}

fn type_label<M>() -> String {
    format!("the state manager {}", std::any::type_name::<M>())
}

impl<B: crate::Backend> From<crate::Manager<B>> for StateHandle<'_> {
    fn from(m: crate::Manager<B>) -> Self {
        StateHandle {
            inner: Inner::Owned(Box::new(m)),
            label: type_label::<crate::Manager<B>>(),
        }
    }
}

impl<'a, M: StateManager> From<&'a mut M> for StateHandle<'a> {
    fn from(m: &'a mut M) -> Self {
        StateHandle {
            inner: Inner::Borrowed(m),
            label: type_label::<M>(),
        }
    }
}

impl<'a> From<&'a mut dyn StateManager> for StateHandle<'a> {
    fn from(m: &'a mut dyn StateManager) -> Self {
        StateHandle {
            inner: Inner::Borrowed(m),
            label: "the state manager".to_owned(),
        }
    }
}

impl From<Box<dyn StateManager>> for StateHandle<'_> {
    fn from(m: Box<dyn StateManager>) -> Self {
        StateHandle {
            inner: Inner::Owned(m),
            label: "the state manager".to_owned(),
        }
    }
}

impl<'a, M: ?Sized + SessionManager> From<&'a mut Session<M>> for StateHandle<'a> {
    fn from(s: &'a mut Session<M>) -> Self {
        let label = format!(
            "the {} session of {} (entry {:?})",
            s.backend_name(),
            s.test_name(),
            s.config().entry
        );
        StateHandle {
            inner: Inner::Borrowed(s.state_manager()),
            label,
        }
    }
}
