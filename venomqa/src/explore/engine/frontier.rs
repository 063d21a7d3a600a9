//! The frontier: which (state, action) pair the engine tries next. One [`Frontier`] per
//! [`Strategy`]: breadth first ([`Bfs`]), depth first ([`Dfs`]), random ([`Random`]) and
//! coverage-guided ([`CoverageGuided`]). The random ones draw from `fastrand`'s seeded
//! generator, so a seed gives the same order in every run of a build.

use std::collections::VecDeque;

use crate::explore::report::ActionCoverage;
use crate::explore::Strategy;

use super::{Frame, Node};

/// Where to run the next action from.
pub(super) enum At {
    /// Frame `k` of the current position.
    Frame(usize),
    /// A node, reached by its path.
    Node(usize),
}

/// What a frontier sees when it picks: the states (whose untried actions it takes), the
/// current position, and how often each action has run.
pub(super) struct View<'v> {
    /// Every state reached, by id.
    pub(super) nodes: &'v mut [Node],
    /// The current position, the root first.
    pub(super) stack: &'v [Frame],
    /// Each action's coverage, in the world's order.
    pub(super) coverage: &'v [ActionCoverage],
}

/// The order in which (state, action) pairs are tried.
pub(super) trait Frontier {
    /// A state to expand: new, or re-opened because it was reached by a shorter path.
    fn push(&mut self, node: usize);

    /// The next (where, action) to try, taken out of its state's untried actions; `None`
    /// when nothing is left.
    fn pick(&mut self, view: &mut View<'_>) -> Option<(At, u16)>;
}

/// The frontier of `strategy`.
pub(super) fn for_strategy(strategy: Strategy) -> Box<dyn Frontier> {
    match strategy {
        Strategy::Bfs => Box::new(Bfs::default()),
        Strategy::Dfs => Box::new(Dfs),
        Strategy::Random { seed } => Box::new(Random {
            open: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        }),
        Strategy::CoverageGuided { seed } => Box::new(CoverageGuided {
            open: Vec::new(),
            seed,
        }),
    }
}

/// Breadth first: the states in the order they were reached, each until its actions are
/// all tried, in the world's order.
#[derive(Default)]
pub(super) struct Bfs {
    queue: VecDeque<usize>,
}

impl Frontier for Bfs {
    fn push(&mut self, node: usize) {
        self.queue.push_back(node);
    }

    fn pick(&mut self, view: &mut View<'_>) -> Option<(At, u16)> {
        while let Some(&n) = self.queue.front() {
            if view.nodes[n].untried.is_empty() {
                self.queue.pop_front();
                continue;
            }
            let a = view.nodes[n].untried.remove(0);
            return Some((At::Node(n), a));
        }
        None
    }
}

/// Depth first: the deepest state of the current position with an untried action, the
/// actions in the world's order. It needs no list of its own: the position is one.
pub(super) struct Dfs;

impl Frontier for Dfs {
    fn push(&mut self, _node: usize) {}

    fn pick(&mut self, view: &mut View<'_>) -> Option<(At, u16)> {
        for k in (0..view.stack.len()).rev() {
            if let Some(n) = view.stack[k].node {
                // Only where the state's own (shortest) path puts it: a state met again
                // deeper, as on a cycle, is expanded where it was found.
                if view.nodes[n].path.len() == k && !view.nodes[n].untried.is_empty() {
                    let a = view.nodes[n].untried.remove(0);
                    return Some((At::Frame(k), a));
                }
            }
        }
        // Not reached in a depth-first run (a state off the current path is done), but a
        // state re-opened elsewhere is still explored.
        let n = view.nodes.iter().position(|n| !n.untried.is_empty())?;
        let a = view.nodes[n].untried.remove(0);
        Some((At::Node(n), a))
    }
}

/// Random: a random state with untried actions, then a random one of them, from a
/// seeded generator.
pub(super) struct Random {
    open: Vec<usize>,
    rng: fastrand::Rng,
}

impl Frontier for Random {
    fn push(&mut self, node: usize) {
        self.open.push(node);
    }

    fn pick(&mut self, view: &mut View<'_>) -> Option<(At, u16)> {
        loop {
            if self.open.is_empty() {
                return None;
            }
            let i = self.rng.usize(..self.open.len());
            let n = self.open[i];
            if view.nodes[n].untried.is_empty() {
                self.open.swap_remove(i);
                continue;
            }
            let j = self.rng.usize(..view.nodes[n].untried.len());
            let a = view.nodes[n].untried.remove(j);
            return Some((At::Node(n), a));
        }
    }
}

/// Coverage-guided: the untried pair whose action has run least often, from a state whose
/// arrival showed a new (action, status class) pair, on the current position, nearest the
/// root; ties broken by a seeded draw per (state, action).
pub(super) struct CoverageGuided {
    open: Vec<usize>,
    seed: u64,
}

impl CoverageGuided {
    /// The tie-break of action `a` from state `n`: the same in every pick.
    fn tie_break(&self, n: usize, a: u16) -> u64 {
        fastrand::Rng::with_seed(self.seed ^ ((n as u64) << 16) ^ u64::from(a)).u64(..)
    }
}

impl Frontier for CoverageGuided {
    fn push(&mut self, node: usize) {
        self.open.push(node);
    }

    fn pick(&mut self, view: &mut View<'_>) -> Option<(At, u16)> {
        self.open.retain(|&n| !view.nodes[n].untried.is_empty());
        // (runs of the action, not novel, not on the current path, depth, tie-break)
        type Key = (usize, u8, u8, usize, u64);
        let mut best: Option<(Key, usize, usize)> = None;
        for &n in &self.open {
            let node = &view.nodes[n];
            let depth = node.path.len();
            let on_stack = view.stack.get(depth).is_some_and(|f| f.node == Some(n));
            for (j, &a) in node.untried.iter().enumerate() {
                let key = (
                    view.coverage[a as usize].runs,
                    u8::from(!node.novel),
                    u8::from(!on_stack),
                    depth,
                    self.tie_break(n, a),
                );
                if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
                    best = Some((key, n, j));
                }
            }
        }
        let (_, n, j) = best?;
        let a = view.nodes[n].untried.remove(j);
        Some((At::Node(n), a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::Context;

    /// Every pair a frontier picks from three states of three actions each, the root
    /// (state 0) being the current position.
    fn picks(strategy: Strategy) -> Vec<(usize, u16)> {
        let mut nodes: Vec<Node> = (0..3u16)
            .map(|n| Node {
                path: if n == 0 { Vec::new() } else { vec![n - 1] },
                untried: vec![0, 1, 2],
                novel: true,
            })
            .collect();
        let stack = [Frame {
            node: Some(0),
            via: None,
            ctx: Context::new(),
            checkpoint: true,
            outcome: "setup".to_owned(),
            diff: None,
        }];
        let coverage: Vec<_> = ["a", "b", "c"].map(ActionCoverage::new).into();
        let mut frontier = for_strategy(strategy);
        (0..3).for_each(|n| frontier.push(n));
        let mut out = Vec::new();
        let mut view = View {
            nodes: &mut nodes,
            stack: &stack,
            coverage: &coverage,
        };
        while let Some((at, a)) = frontier.pick(&mut view) {
            let n = match at {
                At::Frame(k) => stack[k].node.unwrap(),
                At::Node(n) => n,
            };
            out.push((n, a));
        }
        out
    }

    #[test]
    fn every_frontier_picks_each_pair_once_and_a_seed_gives_one_order() {
        let all: Vec<(usize, u16)> = (0..3).flat_map(|n| (0..3).map(move |a| (n, a))).collect();
        assert_eq!(picks(Strategy::Bfs), all, "breadth first: in order");
        assert_eq!(
            picks(Strategy::Dfs),
            all,
            "depth first: the position, then the rest"
        );
        for strategy in [
            Strategy::Random { seed: 7 },
            Strategy::CoverageGuided { seed: 7 },
        ] {
            let order = picks(strategy);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, all, "{strategy}");
            assert_eq!(
                order,
                picks(strategy),
                "{strategy}: the same seed, the same order"
            );
        }
    }
}
