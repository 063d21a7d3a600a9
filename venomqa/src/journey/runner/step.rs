//! Running one step: its attempts (retries), judging each against what the step expects,
//! then the invariants; and the text of a panic.

use std::time::Instant;

use super::exec::Exec;
use super::invariant::Check;
use crate::journey::client::{Exchange, HttpError};
use crate::journey::context::Context;
use crate::journey::format::cut;
use crate::journey::report::{FailureKind, Place, Status, StepFailure, StepResult};
use crate::journey::{Step, StepError};

impl Exec<'_> {
    /// Runs `step` (at `place`) on `ctx`, trying again up to its retries, then checks the
    /// invariants if it passed: what it did, with every exchange.
    pub(super) async fn step(
        &mut self,
        step: &Step,
        ctx: &mut Context,
        place: &Place,
    ) -> StepResult {
        let started = Instant::now();
        let _ = self.client.take_exchanges();
        self.client.set_step_timeout(step.timeout);
        let mut exchanges = Vec::new();
        let mut attempts = 0;
        let mut failure = loop {
            attempts += 1;
            let before = (step.retries > 0).then(|| ctx.clone());
            let outcome = step.action.call(self.client, ctx).await;
            let mut recorded = self.client.take_exchanges();
            let failure = judge(step, outcome, &recorded);
            exchanges.append(&mut recorded);
            match failure {
                Some(_) if attempts <= step.retries => {
                    if let Some(before) = before {
                        *ctx = before;
                    }
                }
                other => break other,
            }
        };
        self.client.set_step_timeout(None);
        if failure.is_none() {
            failure = self.invariants(step, ctx, place).await;
            exchanges.append(&mut self.client.take_exchanges());
        }
        StepResult {
            name: step.name.clone(),
            description: step.description.clone(),
            status: if failure.is_some() {
                Status::Failed
            } else {
                Status::Passed
            },
            duration: started.elapsed(),
            attempts,
            exchanges,
            failure,
        }
    }

    /// The first invariant violated after `step`, as its failure.
    async fn invariants(
        &mut self,
        step: &Step,
        ctx: &Context,
        place: &Place,
    ) -> Option<StepFailure> {
        for invariant in self.settings.invariants {
            let mut check = Check::new(
                self.client,
                ctx,
                self.manager.as_deref_mut(),
                &step.name,
                place.path.as_deref(),
            );
            let outcome = invariant.check.call(&mut check).await;
            let problem = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.chain(),
                Err(panic) => format!("it panicked: {}", panic_message(&*panic)),
            };
            return Some(StepFailure::new(
                FailureKind::Invariant,
                format!(
                    "invariant {:?} violated after step {:?}{}: {problem}",
                    invariant.name(),
                    step.name,
                    place
                        .path
                        .as_ref()
                        .map(|p| format!(" of path {p:?}"))
                        .unwrap_or_default()
                ),
            ));
        }
        None
    }
}

/// Whether an attempt of `step` failed, and how.
fn judge(
    step: &Step,
    outcome: std::thread::Result<Result<(), StepError>>,
    recorded: &[Exchange],
) -> Option<StepFailure> {
    let last = recorded.last();
    let last_status = last.and_then(|e| e.response.as_ref().ok().map(|r| r.status));
    match outcome {
        Err(panic) => Some(StepFailure::new(
            FailureKind::Panic,
            format!("the step panicked: {}", panic_message(&*panic)),
        )),
        Ok(Err(_)) if step.expect_failure => None,
        Ok(Err(e)) => {
            let kind = match e.downcast_ref::<HttpError>() {
                Some(HttpError::Unreachable { .. }) => FailureKind::Unreachable,
                Some(HttpError::Timeout { .. }) => FailureKind::Timeout,
                Some(
                    HttpError::Status { .. } | HttpError::Body { .. } | HttpError::Json { .. },
                ) => FailureKind::Expectation,
                _ => FailureKind::Error,
            };
            Some(StepFailure::new(kind, e.chain()))
        }
        Ok(Ok(())) => {
            if let Some(expected) = step.expected_status {
                match (last, last_status) {
                    (Some(_), Some(actual)) if actual == expected => {}
                    (Some(ex), Some(actual)) => {
                        let body = ex
                            .response
                            .as_ref()
                            .map(|r| r.body.clone())
                            .unwrap_or_default();
                        return Some(StepFailure::new(
                            FailureKind::Expectation,
                            format!(
                                "{} {}: expected status {expected}, got {actual}; response body: {}",
                                ex.method,
                                ex.url,
                                if body.is_empty() { "(empty body)".to_owned() } else { cut(&body, 300) }
                            ),
                        ));
                    }
                    (Some(ex), None) => {
                        return Some(StepFailure::new(
                            FailureKind::Expectation,
                            format!(
                                "{} {}: expected status {expected}, got no response",
                                ex.method, ex.url
                            ),
                        ))
                    }
                    (None, _) => {
                        return Some(StepFailure::new(
                            FailureKind::Expectation,
                            format!("expected status {expected}, but the step sent no request"),
                        ))
                    }
                }
            }
            if step.expect_failure {
                match last_status {
                    Some(s) if s >= 400 => None,
                    _ => Some(StepFailure::new(
                        FailureKind::UnexpectedSuccess,
                        format!(
                            "expected this step to fail, but it succeeded{}",
                            last.map(|e| format!(" ({})", e.summary()))
                                .unwrap_or_default()
                        ),
                    )),
                }
            } else {
                None
            }
        }
    }
}

/// The text of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
