//! One worker's run of a journey: the loop over its items (steps, checkpoints, branches),
//! the checkpoints it keeps with their contexts, and its rollbacks and diffs.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use super::invariant::Invariant;
use super::JOURNEY_CHECKPOINT;
use crate::journey::call::offload;
use crate::journey::client::Client;
use crate::journey::context::Context;
use crate::journey::report::{BranchResult, ItemResult, Place, Status, StepResult};
use crate::journey::{Item, Journey};
use crate::state::StateManager;

/// What every worker of a run shares.
#[derive(Clone, Copy)]
pub(super) struct Settings<'r> {
    pub(super) invariants: &'r [Invariant],
    pub(super) fail_fast: bool,
    pub(super) diffs: bool,
    pub(super) workers: usize,
    /// Set when a worker stops the run (fail_fast, a failed rollback).
    pub(super) halt: &'r AtomicBool,
}

/// One worker's working state.
pub(super) struct Exec<'r> {
    pub(super) client: &'r Client,
    pub(super) manager: Option<&'r mut dyn StateManager>,
    pub(super) settings: Settings<'r>,
    pub(super) worker: usize,
    pub(super) rollbacks: usize,
    pub(super) rollback_time: Duration,
    pub(super) state_errors: Vec<String>,
}

/// A checkpoint the journey made: the context then, and whether anything ran since.
pub(super) struct Saved {
    pub(super) name: String,
    pub(super) context: Context,
    pub(super) dirty: bool,
}

impl Exec<'_> {
    /// Runs the journey's items in order: what each did, and what the journey had changed
    /// in the database when a main step failed.
    pub(super) async fn journey(
        &mut self,
        journey: &Journey,
    ) -> (
        Vec<ItemResult>,
        Option<Result<crate::capture::Diff, String>>,
    ) {
        let mut ctx = Context::new();
        let mut saved: Vec<Saved> = Vec::new();
        let mut out = Vec::new();
        let mut stop: Option<String> = None;
        let mut main_diff = None;
        let mut next_path = 0;
        for item in &journey.items {
            match item {
                Item::Step(step) => {
                    if let Some(reason) = &stop {
                        out.push(ItemResult::Step(StepResult::skipped(step, reason)));
                        continue;
                    }
                    let place = Place { path: None };
                    let result = self.step(step, &mut ctx, &place).await;
                    saved.iter_mut().for_each(|s| s.dirty = true);
                    if result.status == Status::Failed {
                        stop = Some(format!("step {:?} failed", step.name));
                        main_diff = self.diff(JOURNEY_CHECKPOINT);
                    }
                    out.push(ItemResult::Step(result));
                }
                Item::Checkpoint(c) => {
                    if stop.is_some() {
                        out.push(ItemResult::Checkpoint {
                            name: c.name.clone(),
                            made: false,
                        });
                        continue;
                    }
                    let made = match self.manager.as_deref_mut() {
                        Some(m) => match offload(|| m.checkpoint(&c.name)) {
                            Ok(()) => true,
                            Err(e) => {
                                self.state_errors
                                    .push(format!("checkpoint {:?} failed: {e}", c.name));
                                stop = Some(format!("checkpoint {:?} failed", c.name));
                                false
                            }
                        },
                        None => true,
                    };
                    if made {
                        saved.push(Saved {
                            name: c.name.clone(),
                            context: ctx.clone(),
                            dirty: false,
                        });
                    }
                    out.push(ItemResult::Checkpoint {
                        name: c.name.clone(),
                        made,
                    });
                }
                Item::Branch(b) => {
                    let started = Instant::now();
                    if let Some(reason) = &stop {
                        out.push(ItemResult::Branch(BranchResult::skipped(b, reason)));
                        continue;
                    }
                    let at = saved
                        .iter()
                        .position(|s| s.name == b.checkpoint)
                        .expect("validated: the checkpoint is active");
                    // The branch rolls back to its checkpoint, which discards the later ones.
                    saved.truncate(at + 1);
                    let (result, halt) = self
                        .branch(b, &mut saved[at], &mut next_path, started)
                        .await;
                    ctx = saved[at].context.clone();
                    if let Some(h) = halt {
                        if self.settings.fail_fast || !self.state_errors.is_empty() {
                            stop = Some(h);
                        }
                    }
                    out.push(ItemResult::Branch(result));
                }
            }
        }
        (out, main_diff)
    }

    /// Rolls back to `checkpoint`, timed; an error is recorded and returned as a reason.
    pub(super) fn rollback(&mut self, checkpoint: &str) -> Result<(), String> {
        let Some(m) = self.manager.as_deref_mut() else {
            return Ok(());
        };
        let t = Instant::now();
        let result = offload(|| m.rollback(checkpoint));
        self.rollback_time += t.elapsed();
        self.rollbacks += 1;
        result.map_err(|e| {
            let text = format!("rollback to checkpoint {checkpoint:?} failed, so the next paths would not start from it: {e}");
            self.state_errors.push(text.clone());
            text
        })
    }

    /// What the database changed since `checkpoint` (or why that could not be read), unless
    /// the runner's diffs are off.
    pub(super) fn diff(
        &mut self,
        checkpoint: &str,
    ) -> Option<Result<crate::capture::Diff, String>> {
        if !self.settings.diffs {
            return None;
        }
        let m = self.manager.as_deref_mut()?;
        Some(offload(|| m.diff(checkpoint)).map_err(|e| e.to_string()))
    }
}
