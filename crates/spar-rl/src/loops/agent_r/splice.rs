//! Agent-R's revision trajectories (Agent-R, Yuan et al. 2025, sec. 3.2, and its
//! `path_collection.py`): pairs of a good and a bad path of one search tree, the bad path's
//! first error, and the splice of the two through a revision turn.
//!
//! * **Pairing**: a terminal leaf's path is *good* when its value `v = Q/N` exceeds `alpha`;
//!   each bad path (in node order) is paired with the good path sharing its longest prefix
//!   of steps, when `v_good - v_bad > beta` (the paper's thresholds `ALPHA` and `BETA`).
//! * **First error**: the paper's actor judges the bad path step by step and cuts at its
//!   first "Bad" step. Here the judge is the search's own value, the current policy's Monte
//!   Carlo estimate of success from each node (the small-scale variant the paper summary
//!   allows): the first step at or after the divergence whose node value `Q/N` is below
//!   `error_threshold`. A tiny model trained from scratch has no verdicts to give, and these
//!   values come from the same policy's rollouts. Late revision cuts at the bad path's end.
//! * **Splice**: the bad path's steps up to and including the error, trained on no token
//!   (loss masked); then the revision: as many `undo` steps as take the environment back to
//!   where the paths diverged, the first of them written after a revision thought (one of
//!   [`REVISION_THOUGHTS`]; when nothing needs undoing, the thought comes before the good
//!   path's next step), then the good path's steps from the divergence on, all trained. The
//!   trajectory is replayed in the environment, so every trained turn is read exactly as
//!   the environment shows it; a splice that does not reach the target is dropped.
//! * Good paths are also kept whole as supervised data (every turn trained).

use spar_core::{Env, Observation};

use super::search::Tree;

/// Revision thoughts, one chosen per splice. The first is Agent-R's own template (its
/// `revision_thoughts` has 20 of that kind); the others are ours, in the same voice.
pub const REVISION_THOUGHTS: &[&str] = &[
    "Thought: I realize my approach was flawed. I need to revise it.",
    "Thought: I took a wrong turn. Let me go back.",
    "Thought: This path cannot reach the target. I will undo it.",
    "Thought: My last step was a mistake. I need to change course.",
];

/// A good and a bad path of one tree (node ids from the root's child to the leaf), the
/// length of their common prefix, and the bad path's error (an index into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The good path.
    pub good: Vec<usize>,
    /// The bad path.
    pub bad: Vec<usize>,
    /// Steps the two paths share (the bad path's step `divergence` is its first own step).
    pub divergence: usize,
}

/// The good paths of `tree` (`v > alpha`), in node order.
pub fn good_paths(tree: &Tree, alpha: f64) -> Vec<Vec<usize>> {
    tree.terminal_leaves()
        .into_iter()
        .filter(|&l| tree.nodes[l].mean() > alpha)
        .map(|l| tree.path(l))
        .collect()
}

/// Agent-R's pairs of `tree`, at most `max_pairs`: each bad leaf (`v <= alpha`, in node
/// order) with the good leaf sharing its longest prefix (the first such in node order),
/// kept when `v_good - v_bad > beta`.
pub fn pairs(tree: &Tree, alpha: f64, beta: f64, max_pairs: usize) -> Vec<Pair> {
    let leaves = tree.terminal_leaves();
    let good: Vec<usize> = leaves
        .iter()
        .copied()
        .filter(|&l| tree.nodes[l].mean() > alpha)
        .collect();
    let mut out = Vec::new();
    for &b in leaves.iter().filter(|l| !good.contains(l)) {
        if out.len() == max_pairs {
            break;
        }
        let bad = tree.path(b);
        let best = good
            .iter()
            .map(|&g| {
                let path = tree.path(g);
                let shared = path.iter().zip(&bad).take_while(|(x, y)| x == y).count();
                (shared, g, path)
            })
            // Agent-R sec. 3.2 (path_collection.py): v_high - v_low > beta, v_high > alpha.
            .filter(|(_, g, _)| tree.nodes[*g].mean() - tree.nodes[b].mean() > beta)
            .fold(
                None,
                |best: Option<(usize, usize, Vec<usize>)>, x| match &best {
                    Some(b) if b.0 >= x.0 => best,
                    _ => Some(x),
                },
            );
        if let Some((divergence, _, path)) = best {
            out.push(Pair {
                good: path,
                bad,
                divergence,
            });
        }
    }
    out
}

/// The bad path's first error (an index into `pair.bad`): the first step at or after the
/// divergence whose node value is below `threshold`, else its last step.
pub fn first_error(tree: &Tree, pair: &Pair, threshold: f64) -> usize {
    (pair.divergence..pair.bad.len())
        .find(|&k| tree.nodes[pair.bad[k]].mean() < threshold)
        .unwrap_or(pair.bad.len() - 1)
}

/// A trajectory to learn from: each turn's observation, the completion, and whether its
/// tokens are trained on.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// The turns in order.
    pub turns: Vec<(Observation, String, bool)>,
}

impl Trajectory {
    /// Turns whose loss is on.
    pub fn trained(&self) -> impl Iterator<Item = &(Observation, String, bool)> {
        self.turns.iter().filter(|t| t.2)
    }
}

/// Plays `steps` (text, trained) from `tree`'s root: the trajectory and the numbers before
/// each turn; `None` unless the target is reached at the last step exactly (and not before).
fn replay(tree: &Tree, steps: &[(String, bool)]) -> Option<(Trajectory, Vec<Vec<u64>>)> {
    let mut env = tree.nodes[0].env.clone();
    let mut turns = Vec::with_capacity(steps.len());
    let mut numbers = Vec::with_capacity(steps.len());
    for (text, trained) in steps {
        if env.is_done() {
            return None;
        }
        turns.push((env.observation(0), text.clone(), *trained));
        numbers.push(env.state().numbers.clone());
        env.step(0, text);
    }
    env.reached().then_some((Trajectory { turns }, numbers))
}

/// A good path as a trajectory, every turn trained.
pub fn good_trajectory(tree: &Tree, path: &[usize]) -> Option<Trajectory> {
    let steps: Vec<(String, bool)> = path
        .iter()
        .map(|&n| (tree.nodes[n].text.clone(), true))
        .collect();
    replay(tree, &steps).map(|(t, _)| t)
}

/// The revision trajectory of `pair` cut after the bad path's step `error`, with revision
/// thought `thought`; `None` when the bad path undid steps from before the divergence, or
/// the spliced steps do not reach the target.
pub fn splice(tree: &Tree, pair: &Pair, error: usize, thought: &str) -> Option<Trajectory> {
    let d = pair.divergence;
    let at_divergence = match d {
        0 => 0,
        _ => pair.bad[d - 1],
    };
    let depth = |n: usize| tree.nodes[n].env.state().depth();
    let undo = depth(pair.bad[error]).checked_sub(depth(at_divergence))?;
    let mut steps: Vec<(String, bool)> = pair.bad[..=error]
        .iter()
        .map(|&n| (tree.nodes[n].text.clone(), false))
        .collect();
    let mut revision: Vec<String> = vec!["undo".to_string(); undo];
    revision.extend(pair.good[d..].iter().map(|&n| tree.nodes[n].text.clone()));
    revision[0] = format!("{thought}\n{}", revision[0]);
    steps.extend(revision.into_iter().map(|t| (t, true)));
    let (trajectory, numbers) = replay(tree, &steps)?;
    // The undo steps must have brought back the numbers of the divergence.
    let back = &numbers[error + 1 + undo];
    (back == &tree.nodes[at_divergence].env.state().numbers).then_some(trajectory)
}

#[cfg(test)]
mod tests;
