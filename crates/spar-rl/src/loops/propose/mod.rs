//! Proposer/solver self-play: one model writes the problems it learns from (Dr. Zero, Yue et
//! al. 2026, "Dr. Zero: Self-Evolving Search Agents without Training Data", sec. 3; `spar
//! train` with a `[propose]` config; `docs/curriculum.md`).
//!
//! Every step:
//! 1. draws `propose.prompts` requests, each for a problem of `h` operations (its hop count),
//!    `h` drawn from `propose.hops` with `propose.hop_weights` (Dr. Zero's 4:3:2:1);
//! 2. samples `proposals_per_prompt` proposals per request through [`ProposerEnv`]: an
//!    arithmetic expression the model writes and spar evaluates, so every accepted problem is
//!    solvable by construction (an ill-formed one is an invalid move); with `source = "fixed"`
//!    the problems are the arithmetic task's own at the requested hop counts instead (the
//!    fixed-distribution baseline, the same solver compute);
//! 3. samples `solver_samples` (n) answers to each accepted problem through [`TaskEnv`] (the
//!    arithmetic task's rules and verifier), reward 1 right, 0 wrong;
//! 4. rewards each proposal `format_weight * f + d` (Dr. Zero's proposer reward `0.5 f + d`):
//!    `d = (n - k) / (n - 1)` when `0 < k < n` of the answers are right, else 0 (a trivial
//!    or an unsolvable problem earns no difficulty), `f` = 1 when the proposal has the
//!    requested number of operations and 0.5 otherwise (Dr. Zero's format score, whose
//!    search-tool terms an arithmetic proposer has no use for); an invalid proposal earns 0
//!    (Dr. Zero's integrity gate);
//! 5. estimates advantages with `algorithm.estimator` (GRPO) over groups: the proposals of one
//!    requested hop count across the step (`group_by = "hop"`: HRPO, one proposal per
//!    request) or of one request (`"prompt"`: GRPO over G proposals), and each problem's n
//!    answers;
//! 6. takes the policy-gradient update ([`PolicyUpdate`]) on proposals and answers together.
//!
//! Held-out evaluation: the solver's accuracy on the arithmetic task's test problems of each
//! hop count in `eval.hops` (by default the trained ones and one harder).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use spar_core::Env;
use spar_games::tasks::{
    parse_proposal, task_from_spec, PosedTask, Problem, ProposalRules, ProposerEnv, Split, Task,
    TaskEnv,
};
use spar_lm::sample::SamplingParams;

use crate::config::choice::Choice;
use crate::config::propose::{EvaSampling, ProposeConfig, ProposerGroups, Source};
use crate::error::{Error, Result};
use crate::loops::tasks::{evaluate_task, shuffled_warm_start, TaskPrompting};
use crate::objectives::advantages::{estimator, AdvantageEstimator, Groups};
use crate::objectives::losses::{self, KlEstimator, KlPenalty, TokenLoss};
use crate::objectives::policy_update::PolicyUpdate;
use crate::objectives::rae::RoleBaselines;
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::rollout::{groups, Rollout, Sample};
use crate::trainer::{
    AdamW, Batch, Learner, Line, Loop, Settings, StepInfo, UpdateStats, WarmStart,
};

mod evolve;
mod metrics;

pub use evolve::{EvolveCounts, PoolItem};
pub use metrics::ProposeMetrics;

/// Runs (or resumes) the proposer/solver run described by `config` in `out`; `on_metrics`
/// sees every line written to `metrics.jsonl`.
pub fn run(
    config: &ProposeConfig,
    out: &Path,
    resume: bool,
    mut on_metrics: impl FnMut(&Line),
) -> Result<Vec<Line>> {
    let mut lp = ProposeLoop::new(config)?;
    crate::trainer::run(&mut lp, out, resume, &mut on_metrics)
}

/// What a proposer/solver run keeps between steps: the accepted proposals of the last
/// `propose.recent_steps` steps, oldest first, for the repeat rate; with `source = "evolve"`,
/// C2-Evo's pool of problems for the next step.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProposeState {
    #[serde(default)]
    recent: Vec<Vec<String>>,
    #[serde(default)]
    pool: Vec<PoolItem>,
}

/// Dr. Zero's difficulty of a problem `k` of whose `n` answers are right: `(n - k) / (n - 1)`
/// when `0 < k < n`, else 0 (sec. 3; 1 when exactly one answer is right).
pub fn difficulty(k: usize, n: usize) -> f64 {
    if k == 0 || k >= n {
        0.0
    } else {
        (n - k) as f64 / (n - 1) as f64
    }
}

/// The proposer's reward: `weight * f + d` for a valid proposal (`f` = 1 with the requested
/// number of operations, 0.5 without), 0 for an invalid one (Dr. Zero's `0.5 f + d`, its
/// integrity gate).
pub fn proposer_reward(valid: bool, hops_match: bool, d: f64, weight: f64) -> f64 {
    if !valid {
        return 0.0;
    }
    let f = if hops_match { 1.0 } else { 0.5 };
    weight * f + d
}

/// One request of a step: the hop count asked for.
#[derive(Debug, Clone, Copy)]
struct Request {
    hops: u32,
}

/// A problem the solver answers this step, with the proposal it came from.
#[derive(Debug, Clone)]
struct Posed {
    problem: Problem,
    /// The proposer sample's index in the step's samples (`None` for `source = "fixed"`).
    proposal: Option<usize>,
    /// `source = "evolve"`: the steps it was answered in before this one.
    uses: usize,
}

/// The proposer/solver loop of one configuration.
pub struct ProposeLoop {
    config: ProposeConfig,
    settings: Settings,
    style: PromptStyle,
    rules: ProposalRules,
    /// The arithmetic task of each hop count trained or evaluated.
    tasks: BTreeMap<u32, Arc<dyn Task>>,
    estimator: Box<dyn AdvantageEstimator>,
    policy: Box<dyn TokenLoss>,
    kl: KlPenalty,
    /// The step's group keys, one per sample.
    keys: Vec<String>,
}

impl std::fmt::Debug for ProposeLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProposeLoop")
            .field("source", &self.config.propose.source)
            .finish()
    }
}

impl ProposeLoop {
    /// The loop of `config`, checked whole before anything is written.
    pub fn new(config: &ProposeConfig) -> Result<ProposeLoop> {
        config.validate()?;
        let p = &config.propose;
        let mut tasks = BTreeMap::new();
        for &h in config.propose.hops.iter().chain(&config.eval_hops()) {
            let task = task_from_spec(&config.task_spec(h))
                .map_err(|e| Error::Invalid(format!("config: propose: {e}")))?;
            tasks.insert(h, Arc::from(task));
        }
        let max_digits = p
            .digits
            .rsplit("..")
            .next()
            .and_then(|d| d.trim().parse().ok())
            .ok_or_else(|| Error::Invalid(format!("config: propose.digits: {:?}", p.digits)))?;
        let a = &config.algorithm;
        Ok(ProposeLoop {
            settings: Settings::constant_rate(
                &config.run,
                &config.model,
                a.learning_rate,
                a.weight_decay,
                config.to_toml(),
                ProposeConfig::default().to_toml(),
            ),
            style: config.model.prompt_style,
            rules: ProposalRules {
                max_digits,
                ops: "+-*".chars().filter(|c| p.ops.contains(*c)).collect(),
            },
            tasks,
            estimator: estimator(&a.estimator_settings()),
            policy: losses::policy_loss_from_name(a.loss.name(), a.clip, a.clip, 1.0, 1)?,
            kl: KlPenalty {
                estimator: KlEstimator::K3,
            },
            keys: Vec::new(),
            config: config.clone(),
        })
    }

    /// The step's requests: hop counts drawn with `propose.hop_weights` from the step's seed.
    fn requests(&self, seed: u64, count: usize) -> Vec<Request> {
        let p = &self.config.propose;
        let total: f64 = p.hop_weights.iter().sum();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                let mut x = rng.gen::<f64>() * total;
                let mut hops = *p.hops.last().expect("validated non-empty");
                for (h, w) in p.hops.iter().zip(&p.hop_weights) {
                    if x < *w {
                        hops = *h;
                        break;
                    }
                    x -= w;
                }
                Request { hops }
            })
            .collect()
    }

    /// The arithmetic task's problem `index` of `hops` operations, its difficulty set to
    /// `hops`.
    fn task_problem(&self, hops: u32, split: Split, index: u64) -> Problem {
        let mut problem = self.tasks[&hops].problem(split, index, self.config.propose.seed);
        problem.difficulty = hops;
        problem
    }

    fn rollout<'a>(
        &self,
        engine: &'a spar_lm::LocalEngine<'a>,
        learner: &'a Learner,
        params: &'a SamplingParams,
        group_size: usize,
    ) -> Rollout<'a> {
        Rollout {
            group_size,
            max_rounds: 1,
            ..Rollout::new(engine, &learner.tokenizer, self.style, params)
        }
    }
}

impl Loop for ProposeLoop {
    type State = ProposeState;
    type Metrics = ProposeMetrics;
    const NAME: &'static str = "propose";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Supervised warm start on the arithmetic task's first `warm_start.problems` training
    /// problems, each twice: as the proposal answering a request for its hop count, and as
    /// the solver's question with its answer (hop counts drawn as the steps draw them).
    fn warm_start(&mut self, learner: &Learner) -> Result<Option<WarmStart>> {
        let w = &self.config.warm_start;
        if w.steps == 0 {
            return Ok(None);
        }
        let requests = self.requests(self.config.run.seed ^ 0x3a17, w.problems);
        let mut data = Vec::with_capacity(2 * w.problems);
        for (i, request) in requests.iter().enumerate() {
            let problem = self.task_problem(request.hops, Split::Train, i as u64);
            let mut proposer = ProposerEnv::new(self.rules.clone(), request.hops);
            proposer.reset(i as u64);
            let expression = problem.question.trim_end_matches('=');
            data.push((
                prompt_ids(&learner.tokenizer, &proposer.observation(0), self.style)?,
                completion_ids(&learner.tokenizer, expression)?,
            ));
            let posed = PosedTask::new(self.tasks[&request.hops].clone(), vec![problem.clone()]);
            let mut solver = TaskEnv::new(Arc::new(posed), Split::Train, 0);
            solver.reset(0);
            data.push((
                prompt_ids(&learner.tokenizer, &solver.observation(0), self.style)?,
                completion_ids(&learner.tokenizer, &problem.solution)?,
            ));
        }
        Ok(Some(shuffled_warm_start(data, w, self.config.run.seed)))
    }

    fn collect(
        &mut self,
        step: &StepInfo,
        state: &mut ProposeState,
        line: &mut ProposeMetrics,
    ) -> Result<Batch> {
        let (config, learner) = (&self.config, step.learner);
        let p = &config.propose;
        let seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let requests = self.requests(seed ^ 0x9e11, p.prompts);
        let params = SamplingParams {
            temperature: p.temperature,
            max_tokens: p.max_tokens,
            ..SamplingParams::default()
        };
        let inference = learner.model.detached();
        let engine = spar_lm::LocalEngine {
            model: &inference,
            tokenizer: &learner.tokenizer,
        };
        let g = p.proposals_per_prompt;
        // 1-2: the problems, proposed or drawn.
        let mut samples: Vec<Sample> = Vec::new();
        let mut posed: Vec<Posed> = Vec::new();
        let mut proposer_envs: Vec<ProposerEnv> = Vec::new();
        // Problems taken from the pool this step (`evolve`, `eva`).
        let mut from_pool = 0;
        match p.source {
            Source::Model => {
                let envs: Vec<ProposerEnv> = requests
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let mut env = ProposerEnv::new(self.rules.clone(), r.hops);
                        env.reset(i as u64);
                        env
                    })
                    .collect();
                proposer_envs = groups(&envs, g);
                samples = self
                    .rollout(&engine, learner, &params, g)
                    .play(&mut proposer_envs, &[], seed)?
                    .turns;
                for (index, s) in samples.iter().enumerate() {
                    if let Some(Ok(proposal)) = proposer_envs[s.episode].proposal() {
                        let id = format!("proposed/{}/{}", step.index, s.episode);
                        posed.push(Posed {
                            problem: proposal.problem(id),
                            proposal: Some(index),
                            uses: 0,
                        });
                    }
                }
            }
            Source::Fixed | Source::Evolve | Source::Eva => {
                // The pool's problems first (`evolve`, `eva`; `fixed` keeps none), then the
                // task's problems of the remaining slots.
                from_pool = state.pool.len().min(p.prompts * g);
                for (slot, item) in state.pool.drain(..from_pool).enumerate() {
                    let proposal = parse_proposal(&item.expression, &self.rules).map_err(|e| {
                        Error::Invalid(format!("pool problem {:?}: {e}", item.expression))
                    })?;
                    posed.push(Posed {
                        problem: proposal.problem(format!("evolved/{}/{slot}", step.index)),
                        proposal: None,
                        uses: item.uses,
                    });
                }
                for slot in from_pool..p.prompts * g {
                    let (i, j) = (slot / g, slot % g);
                    let index =
                        config.warm_start.problems + ((step.index - 1) * p.prompts + i) * g + j;
                    posed.push(Posed {
                        problem: self.task_problem(requests[i].hops, Split::Train, index as u64),
                        proposal: None,
                        uses: 0,
                    });
                }
            }
        }
        // 3: n answers to every problem.
        let n = p.solver_samples;
        let proposer_count = samples.len();
        let rules_task = self.tasks[&requests[0].hops].clone();
        let problems: Vec<Problem> = posed.iter().map(|q| q.problem.clone()).collect();
        let solver_samples = if problems.is_empty() {
            Vec::new()
        } else {
            let task: Arc<dyn Task> = Arc::new(PosedTask::new(rules_task, problems));
            let envs: Vec<TaskEnv> = (0..posed.len())
                .map(|j| {
                    let mut env = TaskEnv::new(task.clone(), Split::Train, 0);
                    env.reset(j as u64);
                    env
                })
                .collect();
            let mut episodes = groups(&envs, n);
            self.rollout(&engine, learner, &params, n)
                .play(&mut episodes, &[], seed ^ 0x501e)?
                .turns
        };
        // 4: rewards; the proposals' from their problems' answers.
        let mut right = vec![0usize; posed.len()];
        for s in &solver_samples {
            right[s.group as usize] += usize::from(s.reward > 0.0);
        }
        let mut measured = metrics::StepCounts::default();
        for (j, q) in posed.iter().enumerate() {
            let d = difficulty(right[j], n);
            measured.problem(q.problem.difficulty, right[j], n, d);
            if let Some(index) = q.proposal {
                let sample = &mut samples[index];
                let asked = proposer_envs[sample.episode].hops();
                let matched = q.problem.difficulty == asked;
                sample.reward = proposer_reward(true, matched, d, p.format_weight);
                proposer_envs[sample.episode].set_return(sample.reward);
                measured.proposal(&q.problem.question, matched, d, sample.reward);
            }
        }
        if matches!(p.source, Source::Evolve | Source::Eva) {
            // C2-Evo or eva: the pool for the next step, from this step's solve rates.
            let answered: Vec<(String, usize, usize, usize)> = posed
                .iter()
                .zip(&right)
                .map(|(q, &k)| {
                    let e = q.problem.question.trim_end_matches('=').to_string();
                    (e, q.uses, k, n)
                })
                .collect();
            let mut counts = EvolveCounts {
                from_pool,
                ..EvolveCounts::default()
            };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xc2e0);
            let left = std::mem::take(&mut state.pool);
            state.pool = if p.source == Source::Eva {
                evolve::eva_pool(
                    left,
                    &answered,
                    p.sample_frac,
                    p.evolutions,
                    p.eva_sampling == EvaSampling::Uniform,
                    config.pool_size(),
                    &self.rules,
                    &mut rng,
                    &mut counts,
                )
            } else {
                evolve::next_pool(
                    left,
                    &answered,
                    (p.band_low, p.band_high),
                    p.max_uses,
                    config.pool_size(),
                    &self.rules,
                    &mut rng,
                    &mut counts,
                )
            };
            line.evolve = Some(counts);
        }
        measured.invalid = samples.iter().filter(|s| s.invalid).count();
        measured.proposals = samples.len();
        // 5's groups.
        self.keys = samples
            .iter()
            .map(|s| match p.group_by {
                ProposerGroups::Hop => format!("proposer/hop-{}", proposer_envs[s.episode].hops()),
                ProposerGroups::Prompt => format!("proposer/prompt-{}", s.group),
            })
            .collect();
        for mut s in solver_samples {
            self.keys.push(format!("solver/problem-{}", s.group));
            s.episode += proposer_envs.len();
            samples.push(s);
        }
        // The repeat window.
        let expressions: Vec<String> = posed
            .iter()
            .filter(|q| q.proposal.is_some())
            .map(|q| q.problem.question.clone())
            .collect();
        let seen: BTreeSet<&String> = state.recent.iter().flatten().collect();
        measured.repeats = expressions.iter().filter(|e| seen.contains(e)).count();
        state.recent.push(expressions);
        let keep = p.recent_steps;
        if state.recent.len() > keep {
            state.recent.drain(..state.recent.len() - keep);
        }
        measured.write_into(line, &samples[proposer_count..]);
        Ok(Batch {
            returns: samples
                .iter()
                .map(|s| BTreeMap::from([(s.role.key(), s.reward)]))
                .collect(),
            samples,
        })
    }

    fn advantages(
        &mut self,
        _step: &StepInfo,
        batch: &mut Batch,
        _state: &mut ProposeState,
        _line: &mut ProposeMetrics,
    ) -> Result<()> {
        let groups = Groups::per_sample(&batch.samples, std::mem::take(&mut self.keys))?;
        self.estimator
            .estimate(&mut batch.samples, &groups, &mut RoleBaselines::default())
    }

    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        _state: &mut ProposeState,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let (config, a) = (&self.config, &self.config.algorithm);
        let step_seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x3b);
        PolicyUpdate {
            model: &step.learner.model,
            reference: None,
            policy: self.policy.as_ref(),
            kl: &self.kl,
            kl_coefs: &[],
            temperature: config.propose.temperature,
            epochs: a.epochs,
            minibatch_size: a.minibatch_size,
            max_grad_norm: a.max_grad_norm,
        }
        .run(&mut batch.samples, &mut rng, opt)
    }

    fn evaluates(&self, step: usize, last: bool) -> bool {
        let every = self.config.eval.every;
        step == 0 || last || every > 0 && step.is_multiple_of(every)
    }

    /// The solver on each evaluated hop count's first `eval.problems` test problems,
    /// `eval.samples` answers each, with the same random numbers at every evaluation.
    fn evaluate(&mut self, step: &StepInfo, line: &mut ProposeMetrics) -> Result<()> {
        let (config, learner) = (&self.config, step.learner);
        let model = learner.model.detached();
        let mut by_hops = BTreeMap::new();
        for h in config.eval_hops() {
            let evaluation = evaluate_task(
                &model,
                &learner.tokenizer,
                &self.tasks[&h],
                config.propose.seed,
                self.style,
                config.eval.problems,
                config.eval.samples,
                &[1],
                config.eval.temperature,
                config.propose.max_tokens,
                config.run.seed ^ 0xe7a1 ^ u64::from(h),
            )?;
            by_hops.insert(h, evaluation);
        }
        line.eval = Some(by_hops);
        Ok(())
    }

    /// `task.json`: the solver's task over every evaluated hop count, for `spar eval`.
    fn write_checkpoint_files(&self, dir: &Path) -> Result<()> {
        let c = &self.config;
        let hops = c.eval_hops();
        let (low, high) = (hops[0] + 1, hops[hops.len() - 1] + 1);
        TaskPrompting {
            task: format!(
                "arithmetic(digits={},terms={low}..{high},ops={})",
                c.propose.digits, c.propose.ops
            ),
            task_seed: c.propose.seed,
            prompt_style: c.model.prompt_style.name().to_string(),
            max_tokens: c.propose.max_tokens,
            attempts: None,
        }
        .save(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_and_the_proposer_reward_by_hand() {
        // n = 5: one right answer is the hardest solvable problem; none or all earn nothing.
        assert_eq!(difficulty(1, 5), 1.0);
        assert_eq!(difficulty(2, 5), 0.75);
        assert_eq!(difficulty(4, 5), 0.25);
        assert_eq!(difficulty(0, 5), 0.0);
        assert_eq!(difficulty(5, 5), 0.0);
        // 0.5 f + d.
        assert_eq!(proposer_reward(true, true, 0.75, 0.5), 1.25);
        assert_eq!(proposer_reward(true, false, 0.75, 0.5), 1.0);
        assert_eq!(proposer_reward(true, true, 0.0, 0.5), 0.5);
        assert_eq!(proposer_reward(false, true, 1.0, 0.5), 0.0);
    }

    #[test]
    fn requests_follow_the_hop_weights() {
        let mut config = ProposeConfig::default();
        config.propose.hop_weights = vec![4.0, 3.0, 2.0, 1.0];
        let lp = ProposeLoop::new(&config).unwrap();
        let requests = lp.requests(7, 10_000);
        let mut counts = BTreeMap::new();
        for r in &requests {
            *counts.entry(r.hops).or_insert(0usize) += 1;
        }
        // 4:3:2:1 of 10,000, each within 3 binomial standard deviations (at most 3 * 49).
        for (h, expected) in [(1, 4000.0), (2, 3000.0), (3, 2000.0), (4, 1000.0)] {
            let got = counts[&h] as f64;
            assert!((got - expected).abs() < 150.0, "hop {h}: {got}");
        }
        // A weight of 0 is never drawn; the draw is a function of the seed.
        config.propose.hop_weights = vec![0.0, 1.0, 0.0, 1.0];
        let lp = ProposeLoop::new(&config).unwrap();
        assert!(lp
            .requests(3, 1000)
            .iter()
            .all(|r| r.hops == 2 || r.hops == 4));
        let a: Vec<u32> = lp.requests(3, 50).iter().map(|r| r.hops).collect();
        let b: Vec<u32> = lp.requests(3, 50).iter().map(|r| r.hops).collect();
        assert_eq!(a, b);
    }
}
