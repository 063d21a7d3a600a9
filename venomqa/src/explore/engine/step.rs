//! A step: run an action (its precondition first), read what it did (status class,
//! outcome, error, 5xx answers), check the invariants, and fingerprint the state it left.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::capture::Diff;
use crate::explore::outcome::{is_violation, transport};
use crate::explore::report::FaultKind;
use crate::journey::{panic_message, Check, Context, Exchange};

use super::{Engine, Fault};

/// Which invariants a step checks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Checks {
    /// Every invariant, and the 5xx rule.
    All,
    /// Only this one (shrinking): an invariant index, or `None` for the 5xx rule.
    One(Option<usize>),
    /// None (replaying a path to a state already checked).
    None,
}

/// What one action did.
pub(super) struct StepRun {
    pub(super) exchanges: Vec<Exchange>,
    pub(super) check_exchanges: Vec<Exchange>,
    pub(super) class: String,
    pub(super) outcome: String,
    pub(super) error: Option<String>,
    /// (invariant index or None for the 5xx rule, message)
    pub(super) violations: Vec<(Option<usize>, String)>,
    pub(super) fp: u128,
    pub(super) diff: Option<Diff>,
}

impl Engine<'_> {
    /// The actions enabled in `ctx`, in the world's order.
    pub(super) fn enabled(&mut self, ctx: &Context) -> Result<Vec<u16>, Fault> {
        let mut out = Vec::new();
        for a in 0..self.world.actions.len() as u16 {
            if self.precondition(a, ctx)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    pub(super) fn precondition(&self, a: u16, ctx: &Context) -> Result<bool, Fault> {
        let world = self.world;
        let action = &world.actions[a as usize];
        let Some(pre) = &action.precondition else {
            return Ok(true);
        };
        catch_unwind(AssertUnwindSafe(|| pre(ctx))).map_err(|p| {
            self.fault(
                FaultKind::PreconditionPanicked,
                None,
                format!(
                    "the precondition of action {:?} panicked: {}",
                    action.name,
                    panic_message(&*p)
                ),
            )
        })
    }

    /// Runs action `a` on `ctx`, then the checks, then the fingerprint.
    pub(super) async fn step(
        &mut self,
        a: u16,
        ctx: &mut Context,
        checks: Checks,
    ) -> Result<StepRun, Fault> {
        self.step_with(a, ctx, checks, true).await
    }

    pub(super) async fn step_with(
        &mut self,
        a: u16,
        ctx: &mut Context,
        checks: Checks,
        fingerprint: bool,
    ) -> Result<StepRun, Fault> {
        let world = self.world;
        let action = &world.actions[a as usize];
        let _ = self.client.take_exchanges();
        let outcome = action.run.call(self.client, ctx).await;
        let exchanges = self.client.take_exchanges();
        let last = exchanges.last().map(|e| e.summary());
        let error = match outcome {
            Err(p) => {
                return Err(self.fault(
                    FaultKind::ActionPanicked,
                    Some(a),
                    format!(
                        "action {:?} panicked: {}{}",
                        action.name,
                        panic_message(&*p),
                        last.map(|l| format!(" (last request: {l})"))
                            .unwrap_or_default()
                    ),
                ))
            }
            Ok(Err(e)) if transport(&e) => {
                return Err(self.fault(
                    FaultKind::ServerUnreachable,
                    Some(a),
                    format!(
                        "action {:?} could not get an answer: {}",
                        action.name,
                        e.chain()
                    ),
                ))
            }
            Ok(Err(e)) => Some(e.chain()),
            Ok(Ok(())) => None,
        };
        let status = exchanges
            .last()
            .and_then(|e| e.response.as_ref().ok().map(|r| r.status));
        let class = match (status, &error) {
            (Some(s), _) => s.to_string(),
            (None, Some(_)) => "error".to_owned(),
            (None, None) => "no request".to_owned(),
        };
        let outcome = match (&last, &error) {
            (Some(l), None) => l.clone(),
            (Some(l), Some(e)) => format!("{l}; error: {}", crate::journey::cut(e, 160)),
            (None, Some(e)) => format!("error: {}", crate::journey::cut(e, 160)),
            (None, None) => "no request".to_owned(),
        };
        let mut violations = Vec::new();
        if self.world.server_errors && matches!(checks, Checks::All | Checks::One(None)) {
            if let Some(e) = exchanges
                .iter()
                .find(|e| e.response.as_ref().is_ok_and(|r| r.status >= 500))
            {
                let body = e
                    .response
                    .as_ref()
                    .map(|r| r.body.clone())
                    .unwrap_or_default();
                violations.push((
                    None,
                    format!(
                        "{} answered with a server error; response body: {}",
                        e.summary(),
                        crate::journey::cut(&body, 300)
                    ),
                ));
            }
        }
        let name = action.name.clone();
        violations.extend(self.check(ctx, &name, checks, Some(a)).await?);
        let check_exchanges = self.client.take_exchanges();
        let (fp, diff) = if fingerprint {
            self.fingerprint(ctx, Some(a)).await?
        } else {
            (0, None)
        };
        Ok(StepRun {
            exchanges,
            check_exchanges,
            class,
            outcome,
            error,
            violations,
            fp,
            diff,
        })
    }

    /// The invariants after a step: which are violated, or a fault when one could not
    /// check.
    pub(super) async fn check(
        &mut self,
        ctx: &Context,
        step: &str,
        checks: Checks,
        action: Option<u16>,
    ) -> Result<Vec<(Option<usize>, String)>, Fault> {
        let world = self.world;
        let mut violated = Vec::new();
        for (i, invariant) in world.invariants.iter().enumerate() {
            match checks {
                Checks::None => break,
                Checks::One(t) if t != Some(i) => continue,
                _ => {}
            }
            let mut check = Check::new(self.client, ctx, Some(&mut *self.manager), step, None);
            let outcome = invariant.check.call(&mut check).await;
            let problem = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(e)) if transport(&e) => {
                    return Err(self.fault(
                        FaultKind::ServerUnreachable,
                        action,
                        format!(
                            "invariant {:?} could not reach the API after step {step:?}: {}",
                            invariant.name(),
                            e.chain()
                        ),
                    ))
                }
                Ok(Err(e)) if is_violation(&e) => e.chain(),
                Ok(Err(e)) => {
                    return Err(self.fault(
                        FaultKind::InvariantFailed,
                        action,
                        format!(
                            "invariant {:?} could not check after step {step:?}: {} (an invariant reports a violation with Err(StepError::msg(..)) or a response expectation; other errors mean it could not check)",
                            invariant.name(),
                            e.chain()
                        ),
                    ))
                }
                Err(p) => {
                    return Err(self.fault(
                        FaultKind::InvariantFailed,
                        action,
                        format!(
                            "invariant {:?} panicked after step {step:?}: {}",
                            invariant.name(),
                            panic_message(&*p)
                        ),
                    ))
                }
            };
            violated.push((Some(i), problem));
        }
        Ok(violated)
    }
}
