//! Agent-R (Yuan et al. 2025, "Agent-R: Training Language Model Agents to Reflect via
//! Iterative Self-Training", arXiv 2501.11425): revision trajectories from tree search, on a
//! step-by-step environment ([`spar_games::tasks::CountdownStepsEnv`]; `spar train` with an
//! `[agent_r]` config; `docs/self-correction.md`).
//!
//! Every step (one iteration of the paper's iterative self-training, sec. 3.3):
//! 1. `agent_r.prompts` training problems (problem `i` of step `s` is `warm_start.problems +
//!    (s - 1) * prompts + i`), one search tree each, searched together by the current policy
//!    ([`search`]: Agent-R's MCTS, values from the environment's exact rewards);
//! 2. per tree, its good paths (`v > alpha`) as whole trajectories, and, unless `splice =
//!    "none"`, up to `pairs_per_problem` (good, bad) pairs spliced into revision
//!    trajectories at the bad path's first error (`first_error`) or its end (`end`)
//!    ([`splice`]);
//! 3. supervised steps on every trained turn of those trajectories (the bad prefix's turns
//!    are in the prompts only: their loss is masked), `algorithm.epochs` passes in
//!    minibatches, each the mean negative log-likelihood per completion token.
//!
//! Held-out evaluation plays test problems from the start and after an injected wrong first
//! step ([`evaluate`]).

use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use spar_core::atomic::write_atomic;
use spar_core::Env;
use spar_games::tasks::{CountdownSteps, CountdownStepsEnv, Split, Task};

use crate::config::agent_r::{AgentRConfig, Splice};
use crate::config::choice::Choice;
use crate::error::{Error, Result};
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::rollout::Sample;
use crate::trainer::{
    AdamW, Batch, Loop, Scope, Settings, StepInfo, StepMetrics, UpdateStats, WarmStart,
};

pub mod evaluate;
pub mod search;
pub mod splice;

pub use evaluate::{evaluate_steps, injected_error, EpisodeStats, StepsEvaluation, StepsSampling};
use search::{SearchParams, Tree};
use splice::{Trajectory, REVISION_THOUGHTS};

/// What the loop measured in a step: `agent_r/<metric>` and `eval/countdown_steps/...`
/// (`docs/metrics.md`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentRMetrics {
    /// The step's search and trajectories (absent at step 0).
    pub train: Option<TrainTrees>,
    /// Held-out evaluation, at evaluation steps.
    pub eval: Option<StepsEvaluation>,
}

/// What a step's search trees gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainTrees {
    /// Trees searched.
    pub trees: usize,
    /// Of them, trees with a good path.
    pub solved: usize,
    /// Terminal leaves (played episodes) and, of them, those that reached the target.
    pub leaves: usize,
    /// Leaves that reached the target.
    pub good_leaves: usize,
    /// Leaves whose path repeated an action in the same state.
    pub looping_leaves: usize,
    /// Nodes over all trees.
    pub nodes: usize,
    /// Steps sampled and, of them, invalid moves.
    pub steps: usize,
    /// Invalid sampled steps.
    pub invalid: usize,
    /// Good trajectories kept.
    pub good_trajectories: usize,
    /// Revision trajectories built.
    pub revision_pairs: usize,
    /// Pairs whose splice did not replay to the target (dropped).
    pub splices_dropped: usize,
    /// Per revision trajectory: the 1-based step of the bad path it was cut after, and that
    /// step over the bad path's length.
    pub splice_positions: Vec<(usize, f64)>,
    /// Turns trained on.
    pub trained_turns: usize,
}

impl StepMetrics for AgentRMetrics {
    fn write(&self, out: &mut Scope) {
        if let Some(t) = &self.train {
            let rate = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            out.put("solved_rate", rate(t.solved, t.trees));
            out.put("success_rate", rate(t.good_leaves, t.leaves));
            out.put("loop_rate", rate(t.looping_leaves, t.leaves));
            out.put("invalid_rate", rate(t.invalid, t.steps));
            out.put("nodes_per_tree", rate(t.nodes, t.trees));
            out.put("good_trajectories", t.good_trajectories);
            out.put("revision_pairs", t.revision_pairs);
            out.put("splices_dropped", t.splices_dropped);
            out.put("trained_turns", t.trained_turns);
            let n = t.splice_positions.len();
            if n > 0 {
                let mean = |f: &dyn Fn(&(usize, f64)) -> f64| {
                    t.splice_positions.iter().map(f).sum::<f64>() / n as f64
                };
                out.put("splice_position", mean(&|p| p.0 as f64));
                out.put("splice_fraction", mean(&|p| p.1));
            }
        }
        if let Some(e) = &self.eval {
            e.write(spar_games::tasks::COUNTDOWN_STEPS, out);
        }
    }
}

/// The Agent-R loop of one configuration.
pub struct AgentRLoop {
    config: AgentRConfig,
    settings: Settings,
    task: Arc<CountdownSteps>,
    style: PromptStyle,
}

impl std::fmt::Debug for AgentRLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentRLoop")
            .field("env", &self.config.env.name)
            .field("splice", &self.config.agent_r.splice.name())
            .finish()
    }
}

impl AgentRLoop {
    /// The loop of `config`, checked whole before anything is written.
    pub fn new(config: &AgentRConfig) -> Result<AgentRLoop> {
        config.validate()?;
        let task = CountdownSteps::from_spec(&config.env.name)
            .map_err(|e| Error::Invalid(format!("config: env.name: {e}")))?;
        let a = &config.algorithm;
        Ok(AgentRLoop {
            settings: Settings::constant_rate(
                &config.run,
                &config.model,
                a.learning_rate,
                a.weight_decay,
                config.to_toml(),
                AgentRConfig::default().to_toml(),
            ),
            task: Arc::new(task),
            style: config.model.prompt_style,
            config: config.clone(),
        })
    }

    /// An environment of `split` reset to problem `index`.
    fn env(&self, split: Split, index: u64) -> CountdownStepsEnv {
        let mut env = CountdownStepsEnv::new(self.task.clone(), split, self.config.env.seed);
        env.reset(index);
        env
    }

    /// The trajectories of one searched tree (problem `problem` of the step): its good paths
    /// and its revision trajectories, counted into `t`.
    fn trajectories(&self, tree: &Tree, problem: usize, t: &mut TrainTrees) -> Vec<Trajectory> {
        let a = &self.config.agent_r;
        let mut out: Vec<Trajectory> = splice::good_paths(tree, a.alpha)
            .iter()
            .filter_map(|path| splice::good_trajectory(tree, path))
            .collect();
        t.good_trajectories += out.len();
        if a.splice == Splice::None {
            return out;
        }
        for (k, pair) in splice::pairs(tree, a.alpha, a.beta, a.pairs_per_problem)
            .iter()
            .enumerate()
        {
            let error = match a.splice {
                Splice::FirstError => splice::first_error(tree, pair, a.error_threshold),
                _ => pair.bad.len() - 1,
            };
            let thought = REVISION_THOUGHTS[(problem + k) % REVISION_THOUGHTS.len()];
            match splice::splice(tree, pair, error, thought) {
                Some(trajectory) => {
                    t.revision_pairs += 1;
                    t.splice_positions
                        .push((error + 1, (error + 1) as f64 / pair.bad.len() as f64));
                    out.push(trajectory);
                }
                None => t.splices_dropped += 1,
            }
        }
        out
    }
}

impl Loop for AgentRLoop {
    type State = ();
    type Metrics = AgentRMetrics;
    const NAME: &'static str = "agent_r";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The reference solutions of the first `warm_start.problems` training problems, one
    /// (observation, step) pair per step.
    fn warm_start(&mut self, learner: &crate::trainer::Learner) -> Result<Option<WarmStart>> {
        let w = &self.config.warm_start;
        if w.steps == 0 {
            return Ok(None);
        }
        let tokenizer = &learner.tokenizer;
        let mut data = Vec::new();
        for p in 0..w.problems as u64 {
            let mut env = self.env(Split::Train, p);
            let solution = self
                .task
                .problem(Split::Train, p, self.config.env.seed)
                .solution;
            for line in solution.lines() {
                let prompt = prompt_ids(tokenizer, &env.observation(0), self.style)?;
                data.push((prompt, completion_ids(tokenizer, line)?));
                env.step(0, line);
            }
        }
        Ok(Some(WarmStart {
            data,
            steps: w.steps,
            batch_size: w.batch_size,
            learning_rate: w.learning_rate,
        }))
    }

    fn collect(
        &mut self,
        step: &StepInfo,
        _state: &mut (),
        line: &mut AgentRMetrics,
    ) -> Result<Batch> {
        let (config, learner) = (&self.config, step.learner);
        let prompts = config.agent_r.prompts;
        let first = config.warm_start.problems + (step.index - 1) * prompts;
        let mut trees: Vec<Tree> = (0..prompts)
            .map(|i| Tree::new(self.env(Split::Train, (first + i) as u64)))
            .collect();
        let s = &config.search;
        let params = SearchParams {
            max_depth: s.max_depth,
            iterations: s.iterations,
            samples: s.n_generate_samples,
            c: s.uct_c,
            sampling: spar_lm::sample::SamplingParams {
                temperature: s.temperature,
                max_tokens: s.max_tokens,
                ..spar_lm::sample::SamplingParams::default()
            },
        };
        let inference = learner.model.detached();
        let engine = spar_lm::LocalEngine {
            model: &inference,
            tokenizer: &learner.tokenizer,
        };
        let seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let counts = search::search(
            &engine,
            &learner.tokenizer,
            self.style,
            &mut trees,
            &params,
            seed,
        )?;
        let mut t = TrainTrees {
            trees: trees.len(),
            steps: counts.steps,
            invalid: counts.invalid,
            ..TrainTrees::default()
        };
        let mut samples = Vec::new();
        for (i, tree) in trees.iter().enumerate() {
            let leaves = tree.terminal_leaves();
            t.nodes += tree.nodes.len();
            t.leaves += leaves.len();
            let good = |&&l: &&usize| tree.nodes[l].mean() > config.agent_r.alpha;
            t.good_leaves += leaves.iter().filter(good).count();
            t.solved += usize::from(leaves.iter().any(|l| good(&l)));
            t.looping_leaves += leaves
                .iter()
                .filter(|&&l| tree.nodes[l].env.repeated_actions() > 0)
                .count();
            for (k, trajectory) in self.trajectories(tree, i, &mut t).iter().enumerate() {
                for (turn, (observation, text, _)) in trajectory.trained().enumerate() {
                    let mut s = Sample::new(
                        observation.role.clone(),
                        prompt_ids(&learner.tokenizer, observation, self.style)?,
                        completion_ids(&learner.tokenizer, text)?,
                    );
                    (s.episode, s.group, s.turn) = (k, i as u64, turn);
                    s.text = text.clone();
                    s.reward = 1.0;
                    samples.push(s);
                }
            }
        }
        t.trained_turns = samples.len();
        line.train = Some(t);
        Ok(Batch {
            samples,
            returns: Vec::new(),
        })
    }

    /// Supervised data: no advantages.
    fn advantages(
        &mut self,
        _step: &StepInfo,
        _batch: &mut Batch,
        _state: &mut (),
        _line: &mut AgentRMetrics,
    ) -> Result<()> {
        Ok(())
    }

    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        _state: &mut (),
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let a = &self.config.algorithm;
        let mut stats = UpdateStats {
            samples: batch.samples.len(),
            ..UpdateStats::default()
        };
        let mut order: Vec<usize> = (0..batch.samples.len()).collect();
        let seed = spar_core::seeds::task_step(self.config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xa6e7);
        for _ in 0..a.epochs {
            order.shuffle(&mut rng);
            for mb in order.chunks(a.minibatch_size) {
                let pairs: Vec<(Vec<u32>, Vec<u32>)> = mb
                    .iter()
                    .map(|&i| {
                        (
                            batch.samples[i].prompt.clone(),
                            batch.samples[i].completion.clone(),
                        )
                    })
                    .collect();
                // Maximum likelihood of the trained turns (Agent-R's SFT on revision and good
                // trajectories, sec. 3.3): mean NLL per completion token.
                let loss = crate::trainer::supervised::nll(&step.learner.model, &pairs)?;
                match opt.apply(&loss, a.max_grad_norm)? {
                    Some(applied) => {
                        stats.loss += applied.loss;
                        stats.grad_norm += applied.grad_norm;
                        stats.minibatches += 1;
                    }
                    None => stats.skipped += 1,
                }
            }
        }
        let applied = stats.minibatches.max(1) as f64;
        stats.loss /= applied;
        stats.grad_norm /= applied;
        Ok(stats)
    }

    fn evaluates(&self, step: usize, last: bool) -> bool {
        let every = self.config.eval.every;
        step == 0 || last || every > 0 && step.is_multiple_of(every)
    }

    fn evaluate(&mut self, step: &StepInfo, line: &mut AgentRMetrics) -> Result<()> {
        let c = &self.config;
        let sampling = StepsSampling {
            problems: c.eval.problems,
            samples: c.eval.samples,
            temperature: c.eval.temperature,
            max_tokens: c.search.max_tokens,
            seed: c.run.seed ^ 0xe7a1,
        };
        let model = step.learner.model.detached();
        line.eval = Some(evaluate_steps(
            &model,
            &step.learner.tokenizer,
            &self.task,
            c.env.seed,
            self.style,
            &sampling,
        )?);
        Ok(())
    }

    /// `agent_r.json`: the environment and how the checkpoint's model is prompted and
    /// sampled.
    fn write_checkpoint_files(&self, dir: &Path) -> Result<()> {
        let c = &self.config;
        let prompting = serde_json::json!({
            "env": self.task.name(),
            "env_seed": c.env.seed,
            "prompt_style": c.model.prompt_style.name(),
            "temperature": c.search.temperature,
            "max_tokens": c.search.max_tokens,
        });
        write_atomic(&dir.join("agent_r.json"), prompting.to_string().as_bytes())?;
        Ok(())
    }
}

/// Runs (or resumes) the Agent-R run described by `config` in `out`.
pub fn run(
    config: &AgentRConfig,
    out: &Path,
    resume: bool,
    mut on_line: impl FnMut(&crate::trainer::Line),
) -> Result<Vec<crate::trainer::Line>> {
    let mut lp = AgentRLoop::new(config)?;
    crate::trainer::run(&mut lp, out, resume, &mut on_line)
}
