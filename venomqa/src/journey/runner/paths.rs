//! A branch's paths: each dealt to its worker, run from the branch's checkpoint (the
//! database rolled back to it, the context restored), and rolled back after.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::exec::{Exec, Saved};
use crate::journey::report::{BranchResult, PathResult, Place, Status, StepResult};
use crate::journey::Branch;

impl Exec<'_> {
    /// Runs the paths of `b` that are this worker's, from checkpoint `saved` (the one `b`
    /// is on); `next_path` counts the journey's paths, for dealing them to workers. Returns
    /// the branch's result, and why the run should stop (fail_fast, a failed rollback).
    pub(super) async fn branch(
        &mut self,
        b: &Branch,
        saved: &mut Saved,
        next_path: &mut usize,
        started: Instant,
    ) -> (BranchResult, Option<String>) {
        let mut paths = Vec::new();
        let mut halt: Option<String> = None;
        for path in &b.paths {
            let index = *next_path;
            *next_path += 1;
            if index % self.settings.workers != self.worker {
                // Another worker runs it; merge() puts its result here.
                paths.push(PathResult::skipped(
                    path,
                    &b.checkpoint,
                    "run by another worker",
                ));
                continue;
            }
            if halt.is_none() && self.settings.halt.load(Ordering::Relaxed) {
                halt = Some("another worker stopped the run".to_owned());
            }
            if let Some(reason) = &halt {
                paths.push(PathResult::skipped(path, &b.checkpoint, reason));
                continue;
            }
            if saved.dirty {
                if let Err(e) = self.rollback(&b.checkpoint) {
                    halt = Some(e);
                    paths.push(PathResult::skipped(
                        path,
                        &b.checkpoint,
                        halt.as_deref().unwrap_or_default(),
                    ));
                    continue;
                }
                saved.dirty = false;
            }
            let path_started = Instant::now();
            let mut pctx = saved.context.clone();
            let mut steps = Vec::new();
            let mut failed: Option<String> = None;
            for step in &path.steps {
                if let Some(f) = &failed {
                    steps.push(StepResult::skipped(step, f));
                    continue;
                }
                let place = Place {
                    path: Some(path.name.clone()),
                };
                let r = self.step(step, &mut pctx, &place).await;
                saved.dirty = true;
                if r.status == Status::Failed {
                    failed = Some(format!("step {:?} failed", step.name));
                }
                steps.push(r);
            }
            let diff = if failed.is_some() {
                self.diff(&b.checkpoint)
            } else {
                None
            };
            let rolled_back = self.rollback(&b.checkpoint);
            match &rolled_back {
                Ok(()) => saved.dirty = false,
                Err(e) => halt = Some(e.clone()),
            }
            if failed.is_some() && self.settings.fail_fast && halt.is_none() {
                halt = Some(format!("fail_fast: path {:?} failed", path.name));
            }
            if halt.is_some() {
                self.settings.halt.store(true, Ordering::Relaxed);
            }
            paths.push(PathResult::new(
                path,
                &b.checkpoint,
                steps,
                path_started.elapsed(),
                diff,
            ));
        }
        (
            BranchResult::new(&b.checkpoint, paths, started.elapsed()),
            halt,
        )
    }
}
