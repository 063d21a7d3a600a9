//! [`StepError`]: the error a step or an invariant returns, any error or a message.

use std::fmt;

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
