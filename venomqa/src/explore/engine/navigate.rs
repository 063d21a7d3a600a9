//! Navigation between states: every level of the current position can have a
//! checkpoint (`venomqa_x0` for the root, `venomqa_x1`, ... nested under it); going to a
//! state is a rollback to the deepest checkpoint it shares with the current position, then
//! a replay of the rest of its path.

use std::time::Instant;

use crate::explore::report::FaultKind;

use super::frontier::At;
use super::step::Checks;
use super::{Engine, Fault, Frame};

/// The root state's checkpoint: fingerprints and diffs are relative to it.
pub(super) const ROOT: &str = "venomqa_x0";

/// The checkpoint of the position's level `depth`.
fn frame_checkpoint(depth: usize) -> String {
    format!("venomqa_x{depth}")
}

impl Engine<'_> {
    /// Goes to `at`: a rollback to the deepest checkpoint the current position shares
    /// with it, then a replay of the rest of its path.
    pub(super) async fn go(&mut self, at: At) -> Result<(), Fault> {
        match at {
            At::Frame(k) => {
                if k + 1 < self.stack.len() {
                    self.rollback_to(k)?;
                }
                Ok(())
            }
            At::Node(n) => {
                let path = self.nodes[n].path.clone();
                let mut common = 0;
                while common < path.len()
                    && common + 1 < self.stack.len()
                    && self.stack[common + 1].via == Some(path[common])
                {
                    common += 1;
                }
                if common + 1 < self.stack.len() {
                    self.rollback_to(common)?;
                }
                for &a in &path[common..] {
                    self.ensure_checkpoint()?;
                    let mut ctx = self.stack.last().expect("root").ctx.clone();
                    if !self.precondition(a, &ctx)? {
                        return Err(self.fault(
                            FaultKind::Nondeterministic,
                            Some(a),
                            format!(
                                "replaying the path to a state, action {:?} is not enabled any more: an action or the API is not deterministic (same sequence, other state)",
                                self.world.actions[a as usize].name
                            ),
                        ));
                    }
                    let run = self.step(a, &mut ctx, Checks::None).await?;
                    self.counters.replays += 1;
                    let node = self.seen.get(&run.fp).copied();
                    self.stack.push(Frame {
                        node,
                        via: Some(a),
                        ctx,
                        checkpoint: false,
                        outcome: run.outcome,
                        diff: run.diff,
                    });
                }
                let top = self.stack.last().expect("root").node;
                if top != Some(n) && self.warned.insert(n) {
                    let path = self.names(&self.nodes[n].path).join(", ");
                    self.warnings.push(format!(
                        "replaying [{path}] reached another state than the first time: an action or the API is not deterministic; the exploration goes on from where the replay led"
                    ));
                }
                Ok(())
            }
        }
    }

    pub(super) fn checkpoint(&mut self, name: &str) -> Result<(), Fault> {
        let t = Instant::now();
        let manager = &mut *self.manager;
        let result = crate::journey::offload(|| manager.checkpoint(name));
        self.counters.checkpoint_time += t.elapsed();
        self.counters.checkpoints += 1;
        result.map_err(|e| {
            self.fault(
                FaultKind::StateManager,
                None,
                format!("checkpoint {name:?} failed: {e}"),
            )
        })
    }

    /// Makes the top frame's checkpoint if it has none.
    pub(super) fn ensure_checkpoint(&mut self) -> Result<(), Fault> {
        let k = self.stack.len() - 1;
        if !self.stack[k].checkpoint {
            self.checkpoint(&frame_checkpoint(k))?;
            self.stack[k].checkpoint = true;
        }
        Ok(())
    }

    /// Restores the state of frame `k` (which has a checkpoint), dropping the frames
    /// above it.
    pub(super) fn rollback_to(&mut self, k: usize) -> Result<(), Fault> {
        debug_assert!(self.stack[k].checkpoint);
        let name = frame_checkpoint(k);
        let t = Instant::now();
        let manager = &mut *self.manager;
        let result = crate::journey::offload(|| manager.rollback(&name));
        self.counters.rollback_time += t.elapsed();
        self.counters.rollbacks += 1;
        result.map_err(|e| {
            self.fault(
                FaultKind::StateManager,
                None,
                format!("rollback to checkpoint {name:?} failed, so the next states would not start where they should: {e}"),
            )
        })?;
        self.stack.truncate(k + 1);
        Ok(())
    }
}
