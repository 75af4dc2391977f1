//! Agent-R's Monte Carlo tree search over a model's steps (Agent-R, Yuan et al. 2025, sec.
//! 3.1, and its `mcts_utils/mcts_raw.py`; `docs/self-correction.md` lists the defaults).
//!
//! A node is the environment after a sequence of the model's steps; the root is the problem.
//! One *iteration*:
//! 1. **Selection**: from the root, while the node is expanded and not terminal, go to the
//!    child of highest `Q/N + c sqrt(ln N_parent / N)` (UCT; an unvisited child scores
//!    `+inf`, the first of them in order wins).
//! 2. **Expansion**: the selected node (not terminal) gets `n_generate_samples` sampled steps,
//!    deduplicated by the step the environment read (two completions that make the same move
//!    are one child; Agent-R deduplicates by response text).
//! 3. **Simulation**: from the first new child, the model plays one step at a time to a
//!    terminal node. The simulated steps are kept as nodes (a chain below the child, not
//!    expanded), so that every leaf of the tree that is terminal ends a played episode and
//!    its path is a whole trajectory.
//! 4. **Backpropagation**: the terminal node's reward is added to `Q` of it and every
//!    ancestor, and `N` of each grows by one.
//!
//! Terminal nodes, with their exact reward (the environment's, nothing estimated): the
//! target reached (1); an invalid step (0: Agent-R's "disaster" nodes, environment score < 0,
//! are terminal with value 0); fewer than two numbers left, the turn limit, or `max_depth`
//! steps (0).
//!
//! All trees of a step advance together, so that every expansion and every simulation round
//! is one batched generation; every generation call draws from its own random streams,
//! `(mix(seed, call), k)` for its `k`-th prompt, so a search is a pure function of the
//! weights and `seed`.

use spar_core::{Env, StepOutcome};
use spar_games::tasks::CountdownStepsEnv;
use spar_lm::sample::SamplingParams;
use spar_lm::tokenizer::TextTokenizer;
use spar_lm::Engine;

use crate::error::Result;
use crate::rollout::prompt::{prompt_ids, PromptStyle};

/// One node: the environment after its path's steps.
#[derive(Debug, Clone)]
pub struct Node {
    /// The parent (`None` at the root).
    pub parent: Option<usize>,
    /// Children, in the order they were added.
    pub children: Vec<usize>,
    /// The completion the model wrote for this step (empty at the root).
    pub text: String,
    /// The step as the environment read it (`25-3=22`; an invalid step: `invalid:` and its
    /// last line): the deduplication key among siblings.
    pub action: String,
    /// The environment after the step.
    pub env: CountdownStepsEnv,
    /// Steps from the root.
    pub depth: usize,
    /// `N`: backpropagations through the node.
    pub visits: u32,
    /// `Q`: the sum of their rewards.
    pub value: f64,
    /// The exact reward when the node is terminal.
    pub terminal: Option<f64>,
    /// Whether the node's steps were sampled (an expanded node is selected through).
    pub expanded: bool,
    /// Whether the step was an invalid move.
    pub invalid: bool,
}

impl Node {
    /// `Q/N`, the node's value; a terminal node never visited is worth its reward.
    pub fn mean(&self) -> f64 {
        match (self.visits, self.terminal) {
            (0, Some(r)) => r,
            (0, None) => 0.0,
            (n, _) => self.value / f64::from(n),
        }
    }
}

/// One search tree.
#[derive(Debug, Clone)]
pub struct Tree {
    /// Every node; node 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// A tree whose root is `env` (reset, no step made).
    pub fn new(env: CountdownStepsEnv) -> Tree {
        Tree {
            nodes: vec![Node {
                parent: None,
                children: Vec::new(),
                text: String::new(),
                action: String::new(),
                env,
                depth: 0,
                visits: 0,
                value: 0.0,
                terminal: None,
                expanded: false,
                invalid: false,
            }],
        }
    }

    /// Plays `text` from `parent`: the child it makes, and whether it is new (a step the
    /// environment reads as an existing child's is that child).
    pub fn add_child(&mut self, parent: usize, text: &str, max_depth: usize) -> (usize, bool) {
        let mut env = self.nodes[parent].env.clone();
        let step = env.step(0, text);
        let (action, invalid) = match &step.outcome {
            StepOutcome::Move { action_text, .. } => (action_text.clone(), false),
            StepOutcome::Invalid { .. } => {
                let last = text.lines().map(str::trim).rfind(|l| !l.is_empty());
                let key: String = last.unwrap_or("").chars().take(40).collect();
                (format!("invalid:{key}"), true)
            }
        };
        if let Some(&existing) = self.nodes[parent]
            .children
            .iter()
            .find(|&&c| self.nodes[c].action == action)
        {
            return (existing, false);
        }
        let depth = self.nodes[parent].depth + 1;
        let terminal = if env.reached() {
            Some(1.0)
        } else if invalid || env.is_done() || env.state().numbers.len() < 2 || depth >= max_depth {
            Some(0.0)
        } else {
            None
        };
        let id = self.nodes.len();
        self.nodes.push(Node {
            parent: Some(parent),
            children: Vec::new(),
            text: text.trim().to_string(),
            action,
            env,
            depth,
            visits: 0,
            value: 0.0,
            terminal,
            expanded: false,
            invalid,
        });
        self.nodes[parent].children.push(id);
        (id, true)
    }

    /// Selection: the node an iteration expands (or, when terminal, backpropagates again).
    pub fn select(&self, c: f64) -> usize {
        let mut at = 0;
        loop {
            let node = &self.nodes[at];
            if node.terminal.is_some() || !node.expanded || node.children.is_empty() {
                return at;
            }
            let ln_parent = f64::from(node.visits.max(1)).ln();
            let mut best = (f64::NEG_INFINITY, node.children[0]);
            for &child in &node.children {
                let n = &self.nodes[child];
                // UCT, Agent-R sec. 3.1 (mcts_raw.py's selection score):
                // Q/N + c sqrt(ln N_parent / N), +inf for an unvisited child.
                let score = match n.visits {
                    0 => f64::INFINITY,
                    v => n.value / f64::from(v) + c * (ln_parent / f64::from(v)).sqrt(),
                };
                if score > best.0 {
                    best = (score, child);
                }
            }
            at = best.1;
        }
    }

    /// Backpropagation: `reward` added to `Q` of `node` and every ancestor, `N` up by one.
    pub fn backpropagate(&mut self, node: usize, reward: f64) {
        let mut at = Some(node);
        while let Some(n) = at {
            self.nodes[n].visits += 1;
            self.nodes[n].value += reward;
            at = self.nodes[n].parent;
        }
    }

    /// The nodes from the root's child down to `leaf` (the steps of its path, in order).
    pub fn path(&self, leaf: usize) -> Vec<usize> {
        let mut path = Vec::new();
        let mut at = leaf;
        while let Some(parent) = self.nodes[at].parent {
            path.push(at);
            at = parent;
        }
        path.reverse();
        path
    }

    /// The terminal leaves, in node order: the ends of the tree's played episodes.
    pub fn terminal_leaves(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| self.nodes[n].terminal.is_some() && self.nodes[n].children.is_empty())
            .collect()
    }
}

/// The search's settings (`[search]`).
#[derive(Debug, Clone)]
pub struct SearchParams {
    /// Deepest node.
    pub max_depth: usize,
    /// Iterations per tree.
    pub iterations: usize,
    /// Steps sampled per expansion.
    pub samples: usize,
    /// UCT's `c`.
    pub c: f64,
    /// Temperature and token budget of every sampled step.
    pub sampling: SamplingParams,
}

/// What a search sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SearchCounts {
    /// Steps sampled (expansions and simulations).
    pub steps: usize,
    /// Of them, invalid moves.
    pub invalid: usize,
}

/// Runs `params.iterations` iterations on every tree of `trees`, all trees batched together.
pub fn search(
    engine: &dyn Engine,
    tokenizer: &TextTokenizer,
    style: PromptStyle,
    trees: &mut [Tree],
    params: &SearchParams,
    seed: u64,
) -> Result<SearchCounts> {
    let mut counts = SearchCounts::default();
    let mut call = 0u64;
    // Samples one step at each (tree, node) of `at`, `each` times: the completions' texts.
    let mut sample = |trees: &[Tree], at: &[(usize, usize)], each: usize| -> Result<Vec<String>> {
        let mut prompts = Vec::with_capacity(at.len() * each);
        for &(t, n) in at {
            let observation = trees[t].nodes[n].env.observation(0);
            let ids = prompt_ids(tokenizer, &observation, style)?;
            prompts.extend(std::iter::repeat_n(ids, each));
        }
        let call_seed = spar_core::seeds::mix(seed, call);
        call += 1;
        let streams: Vec<(u64, u64)> = (0..prompts.len() as u64).map(|k| (call_seed, k)).collect();
        let completions = engine.generate_streams(&prompts, &params.sampling, &streams)?;
        // A failed engine call is an empty step (an invalid move), as in every rollout.
        Ok(completions
            .into_iter()
            .map(|c| c.map(|c| c.text).unwrap_or_default())
            .collect())
    };
    for _ in 0..params.iterations {
        // 1. Selection.
        let selected: Vec<(usize, usize)> = trees
            .iter()
            .enumerate()
            .map(|(t, tree)| (t, tree.select(params.c)))
            .collect();
        // 2. Expansion of the selected nodes that are not terminal.
        let expand: Vec<(usize, usize)> = selected
            .iter()
            .copied()
            .filter(|&(t, n)| trees[t].nodes[n].terminal.is_none())
            .collect();
        let texts = sample(trees, &expand, params.samples)?;
        let mut current: Vec<(usize, usize)> = selected
            .iter()
            .copied()
            .filter(|&(t, n)| trees[t].nodes[n].terminal.is_some())
            .collect();
        for (i, &(t, n)) in expand.iter().enumerate() {
            trees[t].nodes[n].expanded = true;
            let mut first_new = None;
            for text in &texts[i * params.samples..(i + 1) * params.samples] {
                let (child, new) = trees[t].add_child(n, text, params.max_depth);
                counts.steps += 1;
                counts.invalid += usize::from(trees[t].nodes[child].invalid);
                if new && first_new.is_none() {
                    first_new = Some(child);
                }
            }
            // Every step repeated an existing child: simulate from the least visited.
            let child = first_new.unwrap_or_else(|| {
                let tree = &trees[t];
                let children = &tree.nodes[n].children;
                *children
                    .iter()
                    .min_by_key(|&&c| tree.nodes[c].visits)
                    .unwrap_or(&n)
            });
            current.push((t, child));
        }
        // 3. Simulation: one step a round for every tree not yet at a terminal node.
        loop {
            let active: Vec<usize> = (0..current.len())
                .filter(|&i| {
                    let (t, n) = current[i];
                    trees[t].nodes[n].terminal.is_none()
                })
                .collect();
            if active.is_empty() {
                break;
            }
            let at: Vec<(usize, usize)> = active.iter().map(|&i| current[i]).collect();
            let texts = sample(trees, &at, 1)?;
            for (&i, text) in active.iter().zip(&texts) {
                let (t, n) = current[i];
                let (child, _) = trees[t].add_child(n, text, params.max_depth);
                counts.steps += 1;
                counts.invalid += usize::from(trees[t].nodes[child].invalid);
                current[i] = (t, child);
            }
        }
        // 4. Backpropagation of each terminal node's exact reward.
        for (t, n) in current {
            let reward = trees[t].nodes[n].terminal.unwrap_or(0.0);
            trees[t].backpropagate(n, reward);
        }
    }
    Ok(counts)
}

#[cfg(test)]
pub(crate) mod tests;
