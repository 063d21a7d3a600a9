//! Checkpoint names and the checkpoint stack: the one copy of the rules every backend
//! shares.
//!
//! A [`Stack`] validates names, refuses duplicates and unknown names, keeps the target of a
//! rollback and drops the later checkpoints, drops the target of a release and everything
//! after it, leaves itself unchanged when the backend's I/O fails, and emits a `tracing`
//! event for every change. Typed backends get it through [`Manager`](crate::Manager); a
//! hand-written [`StateManager`](crate::StateManager) can hold one too.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;
use std::time::Instant;

use crate::error::{Error, Result};

/// The longest checkpoint name, in bytes. PostgreSQL truncates identifiers at 63 bytes, so
/// a longer name could silently collide with another one there.
pub const MAX_NAME_LEN: usize = 63;

/// A valid checkpoint name.
///
/// A name starts with an ASCII letter or `_`, continues with ASCII letters, digits or `_`,
/// and is 1 to 63 bytes long. Names are validated, never rewritten: `a-b` and `a b` are
/// errors, not two spellings of `a_b` (the Python original maps both to one savepoint).
/// Every valid name is a valid unquoted identifier on every SQL backend; backends quote it
/// anyway.
///
/// ```
/// use venomqa::checkpoint::Name;
///
/// let name = Name::new("before_signup")?;
/// assert_eq!(name, "before_signup");
/// assert!(Name::new("_2nd").is_ok());
/// assert!(Name::new("2nd").is_err());
/// assert!(Name::new("a-b").is_err());
/// assert!(Name::new("x; DROP TABLE users").is_err());
/// # Ok::<(), venomqa::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<str>);

impl Name {
    /// `name`, if it follows the naming rule; otherwise [`Error::InvalidCheckpoint`]
    /// saying which part it breaks.
    pub fn new(name: &str) -> Result<Name> {
        let invalid = |reason: String| Error::InvalidCheckpoint {
            name: name.to_owned(),
            reason,
        };
        let Some(first) = name.chars().next() else {
            return Err(invalid("it is empty".into()));
        };
        if name.len() > MAX_NAME_LEN {
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
        Ok(Name(name.into()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        &*self.0 == other.as_str()
    }
}

impl PartialEq<Name> for str {
    fn eq(&self, other: &Name) -> bool {
        self == &*other.0
    }
}

impl PartialEq<Name> for &str {
    fn eq(&self, other: &Name) -> bool {
        *self == &*other.0
    }
}

impl TryFrom<&str> for Name {
    type Error = Error;
    fn try_from(name: &str) -> Result<Name> {
        Name::new(name)
    }
}

impl std::str::FromStr for Name {
    type Err = Error;
    fn from_str(name: &str) -> Result<Name> {
        Name::new(name)
    }
}

/// Checks a checkpoint name against the rule every backend shares (see [`Name`]).
///
/// ```
/// assert!(venomqa::validate_checkpoint_name("before_signup").is_ok());
/// assert!(venomqa::validate_checkpoint_name("a b").is_err());
/// ```
pub fn validate_checkpoint_name(name: &str) -> Result<()> {
    Name::new(name).map(drop)
}

/// Where a checkpoint sits in the stack, as a backend's hooks see it.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    name: &'a Name,
    depth: usize,
    parent: Option<&'a Name>,
}

impl<'a> Point<'a> {
    /// The checkpoint's name.
    pub fn name(&self) -> &'a Name {
        self.name
    }

    /// Its position: 0 for the outermost checkpoint (where SQL backends begin their
    /// transaction), 1 for the next, and so on.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Whether it is the outermost checkpoint.
    pub fn is_outermost(&self) -> bool {
        self.depth == 0
    }

    /// The checkpoint just below it, if any.
    pub fn parent(&self) -> Option<&'a Name> {
        self.parent
    }
}

/// The ordered stack of active checkpoints, each with the mark its backend returned.
///
/// Every operation validates the name, finds it, runs the backend's hook, and changes the
/// stack only if the hook succeeded. The marks a rollback or release drops are returned,
/// so the caller can free what they hold.
///
/// ```
/// use venomqa::checkpoint::Stack;
///
/// // A hand-written manager of one number: the mark is the saved value.
/// let mut value = 1;
/// let mut stack = Stack::new("counter");
/// stack.push("start", |_| Ok(value))?;
/// value = 42;
/// stack.rollback("start", |_, saved| { value = *saved; Ok(()) })?;
/// assert_eq!(value, 1);
/// assert_eq!(stack.names(), ["start"]);
/// assert!(stack.push("start", |_| Ok(value)).is_err(), "duplicate");
/// stack.release("start", |_, _| Ok(()))?;
/// assert!(stack.is_empty());
/// # Ok::<(), venomqa::Error>(())
/// ```
pub struct Stack<M> {
    backend: Cow<'static, str>,
    names: Vec<Name>,
    marks: Vec<M>,
}

impl<M> fmt::Debug for Stack<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("backend", &self.backend)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl<M> Stack<M> {
    /// An empty stack; `backend` names it in tracing events.
    pub fn new(backend: impl Into<Cow<'static, str>>) -> Self {
        Stack {
            backend: backend.into(),
            names: Vec::new(),
            marks: Vec::new(),
        }
    }

    /// The active checkpoints, oldest first.
    pub fn names(&self) -> &[Name] {
        &self.names
    }

    /// The marks, oldest first, with their names.
    pub fn iter(&self) -> impl Iterator<Item = (&Name, &M)> {
        self.names.iter().zip(&self.marks)
    }

    /// How many checkpoints are active.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no checkpoint is active.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn point(&self, index: usize) -> Point<'_> {
        Point {
            name: &self.names[index],
            depth: index,
            parent: index.checked_sub(1).map(|i| &self.names[i]),
        }
    }

    /// Where `name` is in the stack, or the error a rollback or release of it returns.
    pub fn position(&self, name: &str) -> Result<usize> {
        Name::new(name)?;
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| Error::UnknownCheckpoint {
                name: name.to_owned(),
                active: if self.names.is_empty() {
                    "none".to_owned()
                } else {
                    self.names.join(", ")
                },
            })
    }

    /// Checkpoint `name` and its mark, without changing anything.
    pub fn get(&self, name: &str) -> Result<(Point<'_>, &M)> {
        let index = self.position(name)?;
        Ok((self.point(index), &self.marks[index]))
    }

    /// Creates checkpoint `name`: validates it, refuses a duplicate, then pushes the mark
    /// `hook` returns for it.
    pub fn push(&mut self, name: &str, hook: impl FnOnce(Point<'_>) -> Result<M>) -> Result<()> {
        let name = Name::new(name)?;
        if self.names.contains(&name) {
            return Err(Error::DuplicateCheckpoint {
                name: name.to_string(),
            });
        }
        let depth = self.names.len();
        let started = Instant::now();
        let mark = hook(Point {
            name: &name,
            depth,
            parent: self.names.last(),
        })?;
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = %name, depth, elapsed_us = micros(started), "checkpoint created");
        self.names.push(name);
        self.marks.push(mark);
        Ok(())
    }

    /// Rolls back to `name`: runs `hook` with its mark, then drops every later checkpoint,
    /// returning their marks (newest first). `name` stays active.
    pub fn rollback(
        &mut self,
        name: &str,
        hook: impl FnOnce(Point<'_>, &M) -> Result<()>,
    ) -> Result<Vec<M>> {
        let index = self.position(name)?;
        let started = Instant::now();
        hook(self.point(index), &self.marks[index])?;
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, elapsed_us = micros(started), "rolled back to checkpoint");
        Ok(self.truncate(index + 1))
    }

    /// Releases `name`: runs `hook` with its mark, then drops it and every later
    /// checkpoint, returning their marks (newest first). The changes stay.
    pub fn release(
        &mut self,
        name: &str,
        hook: impl FnOnce(Point<'_>, &M) -> Result<()>,
    ) -> Result<Vec<M>> {
        let index = self.position(name)?;
        let started = Instant::now();
        hook(self.point(index), &self.marks[index])?;
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, elapsed_us = micros(started), "checkpoint released");
        Ok(self.truncate(index))
    }

    /// Rolls back to `name` and releases it in one step: runs `hook` with its mark, then
    /// drops it and every later checkpoint, returning their marks (newest first).
    pub fn discard(
        &mut self,
        name: &str,
        hook: impl FnOnce(Point<'_>, &M) -> Result<()>,
    ) -> Result<Vec<M>> {
        let index = self.position(name)?;
        let started = Instant::now();
        hook(self.point(index), &self.marks[index])?;
        tracing::debug!(target: "venomqa", backend = %self.backend, checkpoint = name, elapsed_us = micros(started), "rolled back and released checkpoint");
        Ok(self.truncate(index))
    }

    /// Forgets every checkpoint, returning their marks (newest first).
    pub fn clear(&mut self) -> Vec<M> {
        self.truncate(0)
    }

    fn truncate(&mut self, len: usize) -> Vec<M> {
        self.names.truncate(len);
        let mut dropped = self.marks.split_off(len);
        dropped.reverse();
        dropped
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
            let err = Name::new(name).expect_err(name);
            assert!(
                matches!(err, Error::InvalidCheckpoint { .. }),
                "{name:?}: {err}"
            );
        }
        for ok in ["a", "_", "A_1", "before_signup", &"a".repeat(63)] {
            Name::new(ok).unwrap();
        }
    }

    #[test]
    fn stack_semantics() {
        let mut s = Stack::new("test");
        for (i, n) in ["a", "b", "c"].into_iter().enumerate() {
            s.push(n, |at| {
                assert_eq!(at.depth(), i);
                assert_eq!(at.is_outermost(), i == 0);
                Ok(i)
            })
            .unwrap();
        }
        assert!(matches!(
            s.push("b", |_| Ok(9)),
            Err(Error::DuplicateCheckpoint { .. })
        ));
        let dropped = s
            .rollback("b", |at, mark| {
                assert_eq!((at.depth(), *mark), (1, 1));
                assert_eq!(at.parent().map(Name::as_str), Some("a"));
                Ok(())
            })
            .unwrap();
        assert_eq!(dropped, [2]);
        assert_eq!(s.names(), ["a", "b"]);
        let dropped = s.release("a", |_, mark| {
            assert_eq!(*mark, 0);
            Ok(())
        });
        assert_eq!(dropped.unwrap(), [1, 0]);
        assert!(s.is_empty());
        assert!(matches!(
            s.rollback("a", |_, _| Ok(())),
            Err(Error::UnknownCheckpoint { .. })
        ));
    }

    #[test]
    fn failed_hooks_leave_the_stack_unchanged() {
        let mut s = Stack::new("test");
        s.push("a", |_| Ok(1)).unwrap();
        s.push("b", |_| Ok(2)).unwrap();
        let boom = || Error::backend("test", "x", "boom");
        assert!(s.push("c", |_| Err::<i32, _>(boom())).is_err());
        assert!(s.release("a", |_, _| Err(boom())).is_err());
        assert!(s.rollback("a", |_, _| Err(boom())).is_err());
        assert!(s.discard("a", |_, _| Err(boom())).is_err());
        assert!(s.push("x-y", |_| Ok(3)).is_err());
        assert_eq!(s.names(), ["a", "b"]);
        assert_eq!(s.iter().map(|(_, m)| *m).collect::<Vec<_>>(), [1, 2]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

        /// A name is accepted exactly when it follows the rule; nothing panics, and an
        /// accepted name is returned unchanged.
        #[test]
        fn names_follow_the_rule(raw in "\\PC{0,70}") {
            let valid = !raw.is_empty()
                && raw.len() <= MAX_NAME_LEN
                && raw.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            match Name::new(&raw) {
                Ok(name) => prop_assert!(valid && name == raw.as_str(), "{:?} accepted", raw),
                Err(e) => {
                    let invalid_error = matches!(e, Error::InvalidCheckpoint { .. });
                    prop_assert!(!valid && invalid_error, "{:?} refused with {}", raw, e);
                    prop_assert!(!e.to_string().contains('\n'));
                }
            }
        }
    }
}

/// Microseconds since `since`, for events and the cost report.
pub(crate) fn micros(since: Instant) -> u64 {
    crate::util::micros(since.elapsed())
}
