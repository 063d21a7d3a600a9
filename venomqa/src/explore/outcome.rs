//! How the explorer reads an `Err` from an action or an invariant: no answer from the
//! server (a fault), a violation, or a failure to check.

use crate::journey::{HttpError, StepError};

/// Whether `e` means no answer came (the server is down, not listening, or hangs).
pub(crate) fn transport(e: &StepError) -> bool {
    matches!(
        e.downcast_ref::<HttpError>(),
        Some(
            HttpError::Unreachable { .. } | HttpError::Timeout { .. } | HttpError::Transport { .. }
        )
    )
}

/// Whether an invariant's `Err` reports a violation (a message, or a response that is
/// not what it expects) rather than a failure to check.
pub(crate) fn is_violation(e: &StepError) -> bool {
    e.is_message()
        || matches!(
            e.downcast_ref::<HttpError>(),
            Some(HttpError::Status { .. } | HttpError::Body { .. } | HttpError::Json { .. })
        )
}
