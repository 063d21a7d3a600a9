//! Shrinking: each violation's sequence is cut down (delta debugging: remove chunks,
//! halving their size when none can go) to one from which no action can be removed and
//! that still violates the same invariant, by replaying candidates from the root state.

use crate::explore::report::PathStep;
use crate::journey::{Context, Exchange};

use super::navigate::ROOT;
use super::step::{Checks, StepRun};
use super::{Engine, Fault, Frame};

impl Engine<'_> {
    /// Shrinks every violation found; a fault stops shrinking (what is left keeps the
    /// sequence it was found with).
    pub(super) async fn shrink_all(&mut self) -> Result<(), Fault> {
        for i in 0..self.found.len() {
            if self.found[i].sequence.is_empty() {
                continue;
            }
            let target = self.found[i].target;
            let original = self.found[i].sequence.clone();
            let Some(mut cur) = self
                .replay(&original, target)
                .await?
                .map(|r| original[..r].to_vec())
            else {
                self.warnings.push(format!(
                    "the violation of {:?} did not happen again when its sequence was replayed: an action or the API is not deterministic; it is reported as found",
                    self.found[i].name
                ));
                continue;
            };
            let mut n = 2;
            while cur.len() >= 2 {
                let chunk = cur.len().div_ceil(n);
                let mut reduced = false;
                let mut start = 0;
                while start < cur.len() {
                    let mut candidate = cur[..start].to_vec();
                    candidate.extend_from_slice(&cur[(start + chunk).min(cur.len())..]);
                    start += chunk;
                    if candidate.is_empty() {
                        continue;
                    }
                    if let Some(r) = self.replay(&candidate, target).await? {
                        candidate.truncate(r);
                        cur = candidate;
                        n = (n - 1).max(2);
                        reduced = true;
                        break;
                    }
                }
                if !reduced {
                    if n >= cur.len() {
                        break;
                    }
                    n = (n * 2).min(cur.len());
                }
            }
            // Run it once more, recording what the report shows.
            if let Some(details) = self.replay_recorded(&cur, target).await? {
                let f = &mut self.found[i];
                f.sequence = cur;
                f.shrunk = true;
                f.path = details.path;
                f.exchanges = details.exchanges;
                f.check_exchanges = details.check_exchanges;
                f.message = details.message;
            }
        }
        Ok(())
    }

    /// Runs `seq` from the root state, checking only `target`; the length of the prefix
    /// after which it is violated, or `None` (not violated, or an action not enabled).
    async fn replay(&mut self, seq: &[u16], target: Option<usize>) -> Result<Option<usize>, Fault> {
        Ok(self.replay_inner(seq, target, false).await?.map(|d| d.len))
    }

    async fn replay_recorded(
        &mut self,
        seq: &[u16],
        target: Option<usize>,
    ) -> Result<Option<Replayed>, Fault> {
        self.replay_inner(seq, target, true).await
    }

    async fn replay_inner(
        &mut self,
        seq: &[u16],
        target: Option<usize>,
        record: bool,
    ) -> Result<Option<Replayed>, Fault> {
        if self.stack.len() > 1 {
            self.rollback_to(0)?;
        }
        let mut ctx = self.stack[0].ctx.clone();
        let mut path = Vec::new();
        for (i, &a) in seq.iter().enumerate() {
            if !self.precondition(a, &ctx)? {
                return Ok(None);
            }
            let run = self
                .step_unfingerprinted(a, &mut ctx, target, record)
                .await?;
            self.counters.shrink_steps += 1;
            // The position moved: the next replay must roll back.
            self.stack.push(Frame {
                node: None,
                via: Some(a),
                ctx: Context::new(),
                checkpoint: false,
                outcome: run.outcome.clone(),
                diff: None,
            });
            if record {
                path.push(PathStep {
                    action: self.world.actions[a as usize].name.clone(),
                    outcome: run.outcome.clone(),
                    diff: run.diff.clone(),
                });
            }
            if let Some((_, message)) = run.violations.into_iter().next() {
                return Ok(Some(Replayed {
                    len: i + 1,
                    path,
                    exchanges: run.exchanges,
                    check_exchanges: run.check_exchanges,
                    message,
                }));
            }
        }
        Ok(None)
    }

    /// A step while shrinking: only the target is checked, no fingerprint; the diff is
    /// read only when recording.
    async fn step_unfingerprinted(
        &mut self,
        a: u16,
        ctx: &mut Context,
        target: Option<usize>,
        record: bool,
    ) -> Result<StepRun, Fault> {
        let mut run = self.step_with(a, ctx, Checks::One(target), false).await?;
        if record {
            let manager = &mut *self.manager;
            run.diff = crate::journey::offload(|| manager.diff(ROOT)).ok();
        }
        Ok(run)
    }
}

/// What a recorded replay saw at the violation.
struct Replayed {
    len: usize,
    path: Vec<PathStep>,
    exchanges: Vec<Exchange>,
    check_exchanges: Vec<Exchange>,
    message: String,
}
