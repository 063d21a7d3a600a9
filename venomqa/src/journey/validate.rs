//! [`Journey::validate`]: what the runner checks before a journey runs (names, the
//! checkpoints branches are on, empty paths), every problem named.

use std::collections::HashSet;

use super::definition::{Item, Journey, Step};
use super::runner::JourneyError;

impl Journey {
    /// Checks the journey before it runs: every problem, each naming what it is about.
    ///
    /// - the journey has a name and at least one item; steps and paths have names;
    /// - checkpoint names follow venomqa's rule and do not start with `venomqa_`;
    /// - no duplicate checkpoint, no duplicate path name in the journey, no duplicate
    ///   step name in a sequence (the main one or a path);
    /// - a branch is on a checkpoint made before it and not discarded since (a branch
    ///   rolls back to its checkpoint, which discards the checkpoints made after it);
    /// - a branch has at least one path, and every path at least one step.
    pub fn validate(&self) -> Result<(), JourneyError> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("the journey has no name".to_owned());
        }
        if self.items.is_empty() {
            problems.push("it has no steps".to_owned());
        }
        let mut active: Vec<&str> = Vec::new();
        let mut made: HashSet<&str> = HashSet::new();
        let mut main_steps: HashSet<&str> = HashSet::new();
        let mut paths: Vec<(&str, &str)> = Vec::new();
        let mut branch_no = 0;
        for item in &self.items {
            match item {
                Item::Step(step) => {
                    check_step(step, "the journey's steps", &mut main_steps, &mut problems)
                }
                Item::Checkpoint(c) => {
                    if let Err(e) = crate::validate_checkpoint_name(&c.name) {
                        problems.push(format!("checkpoint {:?}: {e}", c.name));
                    } else if c.name.starts_with("venomqa_") {
                        problems.push(format!(
                            "checkpoint {:?}: names starting with venomqa_ are reserved for venomqa",
                            c.name
                        ));
                    } else if !made.insert(&c.name) {
                        problems.push(format!("checkpoint {:?} is made twice", c.name));
                    } else {
                        active.push(&c.name);
                    }
                }
                Item::Branch(b) => {
                    branch_no += 1;
                    match active.iter().position(|c| *c == b.checkpoint) {
                        Some(at) => active.truncate(at + 1),
                        None if made.contains(b.checkpoint.as_str()) => problems.push(format!(
                            "branch {branch_no} is on checkpoint {:?}, which an earlier branch's rollbacks discarded (a rollback to a checkpoint discards the later ones); make the checkpoint again after that branch",
                            b.checkpoint
                        )),
                        None => problems.push(format!(
                            "branch {branch_no} is on checkpoint {:?}, which is not made before it (checkpoints available there: {})",
                            b.checkpoint,
                            if active.is_empty() { "none".to_owned() } else { active.join(", ") }
                        )),
                    }
                    if b.paths.is_empty() {
                        problems.push(format!("the branch from {:?} has no paths", b.checkpoint));
                    }
                    for p in &b.paths {
                        if p.name.trim().is_empty() {
                            problems.push(format!(
                                "a path of the branch from {:?} has no name",
                                b.checkpoint
                            ));
                        } else if let Some((_, first)) = paths.iter().find(|(n, _)| *n == p.name) {
                            problems.push(format!(
                                "path {:?} appears twice (in the branches from {first:?} and {:?}); path names are unique in a journey",
                                p.name, b.checkpoint
                            ));
                        } else {
                            paths.push((&p.name, &b.checkpoint));
                        }
                        if p.steps.is_empty() {
                            problems.push(format!(
                                "path {:?} of the branch from {:?} has no steps",
                                p.name, b.checkpoint
                            ));
                        }
                        let mut names = HashSet::new();
                        let place = format!("path {:?}", p.name);
                        for s in &p.steps {
                            check_step(s, &place, &mut names, &mut problems);
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(JourneyError::Invalid {
                journey: self.name.clone(),
                problems,
            })
        }
    }
}

fn check_step<'a>(
    step: &'a Step,
    place: &str,
    names: &mut HashSet<&'a str>,
    problems: &mut Vec<String>,
) {
    if step.name.trim().is_empty() {
        problems.push(format!("a step of {place} has no name"));
    } else if !names.insert(&step.name) {
        problems.push(format!(
            "step {:?} appears twice in {place}; step names are unique in a sequence",
            step.name
        ));
    }
    if step.expect_failure && step.expected_status.is_some_and(|s| s < 400) {
        problems.push(format!(
            "step {:?} of {place} expects failure and status {}, which is a success",
            step.name,
            step.expected_status.unwrap_or_default()
        ));
    }
}
