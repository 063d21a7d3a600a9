//! The workers of a run: checking and checkpointing each one's state manager, running
//! the journey on each, and merging what they produced into one journey order.

use std::time::{Duration, Instant};

use super::error::JourneyError;
use super::exec::{Exec, Settings};
use super::state::StateHandle;
use super::JOURNEY_CHECKPOINT;
use crate::journey::client::Client;
use crate::journey::report::ItemResult;
use crate::journey::Journey;
use crate::state::StateManager;

/// What one worker produced.
pub(super) struct Lane {
    pub(super) items: Vec<ItemResult>,
    pub(super) main_diff: Option<Result<crate::capture::Diff, String>>,
    pub(super) rollbacks: usize,
    pub(super) rollback_time: Duration,
    pub(super) cleanup: Duration,
    pub(super) state_errors: Vec<String>,
}

/// Checks, and checkpoints, one worker's state manager before the journey.
pub(super) fn prepare(handle: &mut StateHandle<'_>, journey: &str) -> Result<(), JourneyError> {
    if !handle.get_ref().is_connected() {
        return Err(JourneyError::State {
            journey: journey.to_owned(),
            operation: "checking the state manager".to_owned(),
            source: Box::new(crate::Error::unsupported(
                handle.label(),
                "a journey while disconnected",
                "call connect() first",
            )),
        });
    }
    if !handle.get_ref().captures() {
        return Err(JourneyError::NoCapture {
            journey: journey.to_owned(),
            manager: handle.label().to_owned(),
        });
    }
    crate::journey::call::offload(|| handle.get().checkpoint(JOURNEY_CHECKPOINT)).map_err(
        |source| JourneyError::State {
            journey: journey.to_owned(),
            operation: format!("checkpoint {JOURNEY_CHECKPOINT:?} before the journey"),
            source: Box::new(source),
        },
    )
}

/// Runs the journey on one worker, then discards its journey checkpoint.
pub(super) async fn run_lane(
    settings: Settings<'_>,
    worker: usize,
    client: &Client,
    manager: Option<&mut dyn StateManager>,
    journey: &Journey,
) -> Lane {
    let mut exec = Exec {
        client,
        manager,
        settings,
        worker,
        rollbacks: 0,
        rollback_time: Duration::ZERO,
        state_errors: Vec::new(),
    };
    let (items, main_diff) = exec.journey(journey).await;
    let mut cleanup = Duration::ZERO;
    if let Some(m) = exec.manager.as_deref_mut() {
        let t = Instant::now();
        if let Err(e) = crate::journey::call::offload(|| m.discard(JOURNEY_CHECKPOINT)) {
            exec.state_errors.push(format!(
                "rolling back to {JOURNEY_CHECKPOINT:?} at the end of the journey failed, so the database may keep the journey's writes: {e}"
            ));
        }
        cleanup = t.elapsed();
    }
    Lane {
        items,
        main_diff,
        rollbacks: exec.rollbacks,
        rollback_time: exec.rollback_time,
        cleanup,
        state_errors: exec.state_errors,
    }
}

/// One result from the workers' lanes: the main steps of worker 0, each path from the
/// worker that ran it (path `i` on worker `i % n`), times and errors added up.
pub(super) fn merge(mut lanes: Vec<Lane>, n: usize, workers: &[(Client, StateHandle<'_>)]) -> Lane {
    let mut first = lanes.remove(0);
    for (k, lane) in lanes.iter_mut().enumerate() {
        let w = k + 1;
        let base = workers.get(k).map_or("", |(c, _)| c.base_url());
        for item in &lane.items {
            if let ItemResult::Step(s) = item {
                if let Some(e) = s.error() {
                    first.state_errors.push(format!(
                        "worker {w} ({base}): main step {:?} failed, so its paths were skipped: {e}",
                        s.name
                    ));
                }
            }
        }
        first.rollbacks += lane.rollbacks;
        first.rollback_time += lane.rollback_time;
        first.cleanup = first.cleanup.max(lane.cleanup);
        first.state_errors.extend(
            lane.state_errors
                .drain(..)
                .map(|e| format!("worker {w} ({base}): {e}")),
        );
    }
    let mut global = 0;
    for (i, item) in first.items.iter_mut().enumerate() {
        let ItemResult::Branch(branch) = item else {
            continue;
        };
        for (j, path) in branch.path_results.iter_mut().enumerate() {
            let owner = global % n;
            global += 1;
            if owner == 0 {
                continue;
            }
            if let Some(ItemResult::Branch(theirs)) = lanes[owner - 1].items.get_mut(i) {
                std::mem::swap(path, &mut theirs.path_results[j]);
                branch.duration = branch.duration.max(theirs.duration);
            }
        }
    }
    first
}
