//! Self-correction: one model answers a verifiable task in several attempts, each after
//! reading its earlier attempts ([`AttemptsEnv`]), and learns from per-attempt rewards
//! (`spar train` with a `[selfcorrect]` config; `docs/self-correction.md`).
//!
//! Methods (`selfcorrect.method`), after SCoRe (Kumar et al. 2025, "Training Language Models
//! to Self-Correct via Reinforcement Learning", sec. 5):
//! * `score`: stage I (the first `stage1_steps` steps) maximises the later attempts' reward
//!   while a strong KL (`beta2`) pins attempt 1 to the reference (eq. 3: `E[r(y2) - beta2
//!   KL(pi(.|x1) || pi_ref(.|x1))]`; attempt 1 gets no policy gradient); stage II rewards every
//!   attempt, attempt `k > 1` with the bonus `r_k + alpha (r_k - r_{k-1})` (eq. 4 and 5), and
//!   puts the KL `beta1` on every attempt;
//! * `naive`: every attempt on its own reward with KL `beta1` (the paper's "naive multi-turn
//!   RL", which it reports collapses into not changing the first answer);
//! * `single`: only attempt 1 is learnt from (single-turn RL); later attempts are played and
//!   measured;
//! * `scl`, `revise`: preference pairs from the played answers (`scl.rs`: SCL's flipped
//!   corrections; `revise.rs`: ReVISE's stop-or-refine pairs), learnt from by the shared
//!   preference update (`pairwise.rs`);
//! * `rerest`, `star`: self-training on the accepted answers (`selftrain.rs`: Re-ReST's
//!   successes and reflector corrections; STaR's successes only);
//! * `refuel`: every episode re-rolled from a random attempt and the two answers there
//!   regressed onto their future-reward gap (`refuel.rs`);
//! * `role_reversal`: D-HUMOR's critique from the asker's side between attempts
//!   ([`AttemptsEnv::with_role_reversal`]), every message on its own reward as `naive`.
//!
//! With `algorithm.estimator = "trloo"` the rewarded samples' rewards become turn returns
//! (the sum of the episode's shaped rewards from the attempt on; `selftrain.rs`) before the
//! leave-one-out baseline per `(problem, attempt)`: Dr. Kernel's TRLOO.
//!
//! Every step draws `rollout.prompts` training problems (problem `i` of step `s` is
//! `warm_start.problems + (s - 1) * prompts + i`), plays `rollout.group_size` episodes of
//! each, verifies every attempt, shapes the rewards, estimates advantages in groups of one
//! problem's attempts of the same rank (`prompt-<p>/attempt<k>`; RAE: one baseline per
//! attempt role), and takes minibatch steps of the policy loss plus the per-attempt KL
//! (`loss = mean over samples of [pg + beta_sample * k3]`, token mean per sample, as the
//! reimplementation's `(-logpi(y2) r2 + beta2 KL1).mean()`).

use std::collections::BTreeMap;
use std::path::Path;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use spar_core::atomic::write_atomic;
use spar_core::Env;
use spar_games::tasks::{task_from_spec, AttemptStats, AttemptsEnv, Split};
use spar_lm::Llama;

use crate::config::choice::Choice;
use crate::config::selfcorrect::{Method, SelfCorrectConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::{estimator, AdvantageEstimator, EstimatorKind, Groups};
use crate::objectives::losses::{self, KlPenalty, TokenLoss};
use crate::objectives::policy_update::PolicyUpdate;
use crate::objectives::rae::RoleBaselines;
use crate::rollout::prompt::{completion_ids, prompt_ids, PromptStyle};
use crate::rollout::{groups, Rollout, Sample};
use crate::trainer::{
    checkpoint_dir, AdamW, Batch, Learner, Loop, Scope, Settings, StepInfo, StepMetrics,
    UpdateStats, WarmStart,
};

pub mod cosc;
mod evaluate;
mod pairwise;
mod refuel;
mod revise;
mod scl;
mod selftrain;
mod warm_start;

use crate::loops::tasks::TaskPrompting;
pub use evaluate::{evaluate_attempts, AttemptsEvaluation, AttemptsSetup, EvalSampling};
pub use revise::{evaluate_refine, RefineVote, REFINE_MARKER};

/// What a self-correction run keeps between steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SelfCorrectState {
    /// `estimator = "rae"`: one EMA baseline per attempt role (exact bit patterns).
    #[serde(default)]
    baselines: RoleBaselines,
}

/// What the loop measured in one step: `selfcorrect/<metric>` (the training episodes' SCoRe
/// metrics) and `eval/<task>/<metric>` (`docs/metrics.md`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SelfCorrectMetrics {
    /// The training episodes of a policy step (absent at step 0, which has none).
    pub train: Option<TrainEpisodes>,
    /// Held-out evaluation, at evaluation steps: the task's name in metric keys and the
    /// evaluation.
    pub eval: Option<(String, AttemptsEvaluation)>,
    /// ReVISE: the confidence-aware vote over the held-out answers.
    pub refine: Option<RefineVote>,
}

/// What a step's training episodes showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainEpisodes {
    /// SCoRe's stage of the step (1 or 2; 0 for the methods without stages).
    pub stage: usize,
    /// Accuracy per attempt and the transitions between the first and the last.
    pub stats: AttemptStats,
    /// Fraction of the step's answers the verifier could not parse.
    pub unparsable_rate: f64,
    /// Mean answer length in tokens.
    pub response_tokens: f64,
    /// SPOC: the training episodes' verifier metrics.
    pub verify: Option<spar_games::tasks::VerifyStats>,
    /// SCL, ReVISE, REFUEL: the step's preference pairs by kind (`pairs/<kind>`; REFUEL's
    /// `pairs/refuel` and the branches dropped as identical, `pairs/identical`).
    pub pairs: Vec<(&'static str, usize)>,
    /// Re-ReST, STaR: the answers kept for self-training by kind (`accepted/first`,
    /// `accepted/corrections`).
    pub accepted: Vec<(&'static str, usize)>,
}

impl StepMetrics for SelfCorrectMetrics {
    fn write(&self, out: &mut Scope) {
        if let Some(t) = &self.train {
            out.put("stage", t.stage);
            for (k, a) in t.stats.accuracy.iter().enumerate() {
                out.put(&format!("attempt{}/accuracy", k + 1), *a);
            }
            evaluate::write_stats(&t.stats, "", &mut |k, v| out.put(k, v));
            out.put("unparsable_rate", t.unparsable_rate);
            out.put("response_tokens", t.response_tokens);
            if let Some(v) = &t.verify {
                evaluate::write_verify(v, "verify/", &mut |k, x| out.put(k, x));
            }
            for (kind, n) in &t.pairs {
                out.put(&format!("pairs/{kind}"), *n);
            }
            for (kind, n) in &t.accepted {
                out.put(&format!("accepted/{kind}"), *n);
            }
        }
        if let Some((task, e)) = &self.eval {
            e.write(task, out);
            if let Some(v) = &self.refine {
                v.write(task, out);
            }
        }
    }
}

/// The self-correction loop of one configuration.
pub struct SelfCorrectLoop {
    config: SelfCorrectConfig,
    settings: Settings,
    setup: AttemptsSetup,
    /// The task's name in metric keys (`arithmetic`).
    role_env: String,
    style: PromptStyle,
    estimator: Box<dyn AdvantageEstimator>,
    policy: Box<dyn TokenLoss>,
    kl: KlPenalty,
    /// The frozen model after the warm start (the KL's reference).
    reference_model: Option<Llama>,
    /// The KL coefficient of each sample of the step's batch (after `advantages`).
    kl_coefs: Vec<f64>,
    /// SCL, ReVISE: DPO.
    pair_loss: Option<Box<dyn losses::PairLoss>>,
    /// SCL, ReVISE: the step's preference pairs (after `advantages`).
    pairs: Vec<crate::objectives::preference::PreferencePair>,
    /// REFUEL: the step's branch pairs (after `collect`).
    refuel_pairs: Vec<refuel::RefuelPair>,
}

impl std::fmt::Debug for SelfCorrectLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfCorrectLoop")
            .field("task", &self.setup.task.name())
            .field("method", &self.config.selfcorrect.method)
            .finish()
    }
}

impl SelfCorrectLoop {
    /// The loop of `config`, checked whole before anything is written.
    pub fn new(config: &SelfCorrectConfig) -> Result<SelfCorrectLoop> {
        config.validate()?;
        if config.selfcorrect.method == Method::Cosc {
            return Err(Error::Invalid(
                "selfcorrect.method = \"cosc\" runs on its own loop: cosc::CoscLoop (run)".into(),
            ));
        }
        let task = std::sync::Arc::from(
            task_from_spec(&config.task.name)
                .map_err(|e| Error::Invalid(format!("config: task.name: {e}")))?,
        );
        let (a, s) = (&config.algorithm, &config.selfcorrect);
        let setup = AttemptsSetup {
            task,
            task_seed: config.task.seed,
            attempts: s.attempts,
            feedback: s.feedback,
            instruction: s.instruction.clone(),
            verify: s.method == Method::Spoc,
            critique: s.method == Method::RoleReversal,
        };
        Ok(SelfCorrectLoop {
            settings: settings(config),
            role_env: setup.env(Split::Train, 0).role(0).env,
            setup,
            style: config.model.prompt_style,
            estimator: estimator(&a.estimator_settings()),
            policy: losses::policy_loss_from_name(a.loss.name(), a.clip_low, a.clip_high, 1.0, 1)?,
            kl: KlPenalty { estimator: s.kl },
            reference_model: None,
            kl_coefs: Vec::new(),
            pair_loss: s
                .method
                .is_pairwise()
                .then(|| losses::pair_loss_from_name("dpo", s.dpo_beta))
                .transpose()?,
            pairs: Vec::new(),
            refuel_pairs: Vec::new(),
            config: config.clone(),
        })
    }

    /// Whether any sample can carry a KL term.
    fn uses_reference(&self) -> bool {
        let s = &self.config.selfcorrect;
        s.beta1 > 0.0 && s.method != Method::Refuel
            || s.method == Method::Score && s.stage1_steps > 0 && s.beta2 > 0.0
            || s.method.is_pairwise()
    }

    /// The reward attempt `k` (0-based) of a step's episode is learnt from, given the raw
    /// rewards of its attempts, and its KL coefficient; `None` when it is not learnt from.
    fn shaped(&self, step: usize, k: usize, rewards: &[f64]) -> Option<(f64, f64)> {
        let s = &self.config.selfcorrect;
        let r = rewards[k];
        match s.method {
            // RLTF-SD adds its distilled samples after estimation (`distilled`).
            Method::Single | Method::RltfSd => (k == 0).then_some((r, s.beta1)),
            // SCL, ReVISE and REFUEL learn from pairs (`pairwise.rs`, `refuel.rs`), Re-ReST
            // and STaR from accepted answers (`selftrain.rs`), not from rewarded samples.
            Method::Scl | Method::Revise | Method::Refuel | Method::Rerest | Method::Star => None,
            // CoSC runs on its own loop (`cosc`), never here.
            Method::Cosc => None,
            // SPOC: every message (attempt or verification) on its own oracle reward; role
            // reversal: every attempt and critique (worth the next attempt) on its own.
            Method::Naive | Method::Spoc | Method::RoleReversal => Some((r, s.beta1)),
            // Stage I (eq. 3): attempt 1 only pinned by beta2 (its advantage is zeroed after
            // estimation), later attempts on their own reward without KL.
            Method::Score if self.config.in_stage1(step) => {
                Some(if k == 0 { (r, s.beta2) } else { (r, 0.0) })
            }
            // Stage II (eq. 4, 5): r_k + alpha (r_k - r_{k-1}) on attempts after the first.
            Method::Score if k == 0 => Some((r, s.beta1)),
            Method::Score => Some((r + s.alpha * (r - rewards[k - 1]), s.beta1)),
        }
    }
}

impl SelfCorrectLoop {
    /// RLTF's extra samples with their KL coefficients, from the step's played samples
    /// (`played`, raw rewards) before shaping:
    /// * `rltf_sd` (self-distillation, RLTF eq. for `grad l_SD`): each later attempt's answer
    ///   `y_k` as an answer to the first attempt's prompt `x_0`, advantage `r_k - mean of the
    ///   group's first-attempt rewards` (the paper's `{r_0}` baseline, no importance weight),
    ///   KL `beta1`;
    /// * `fm_coef > 0` (feedback modelling): the first attempt's feedback line `c_0` as the
    ///   completion of `x_0 y_0`, advantage `fm_coef` (so the policy-gradient loss is
    ///   `fm_coef` times its negative log-likelihood), no KL.
    fn rltf_samples(
        &self,
        step: &StepInfo,
        played: &[Sample],
        rewards: &[Vec<f64>],
    ) -> Result<Vec<(Sample, f64)>> {
        let s = &self.config.selfcorrect;
        let mut extra = Vec::new();
        if s.method != Method::RltfSd && s.fm_coef == 0.0 {
            return Ok(extra);
        }
        let first: BTreeMap<usize, &Sample> = played
            .iter()
            .filter(|x| x.role.seat == 0)
            .map(|x| (x.episode, x))
            .collect();
        if s.method == Method::RltfSd {
            extra.extend(distilled(played, rewards).into_iter().map(|d| (d, s.beta1)));
        }
        if s.fm_coef > 0.0 {
            let tokenizer = &step.learner.tokenizer;
            for x0 in first.values().filter(|x| !x.failed) {
                let Some(problem) = self.problem_of(x0, step) else {
                    continue;
                };
                let verdict = self.setup.task.verify(&problem, &x0.text);
                let line = s.feedback.line(&problem, &verdict);
                let mut prompt = x0.prompt.clone();
                prompt.extend(tokenizer.encode(&format!("{}\n", x0.text.trim()))?);
                let mut fm =
                    Sample::new(x0.role.clone(), prompt, completion_ids(tokenizer, &line)?);
                (fm.episode, fm.group, fm.turn) = (x0.episode, x0.group, x0.turn);
                fm.text = line;
                fm.advantage = s.fm_coef;
                extra.push((fm, 0.0));
            }
        }
        Ok(extra)
    }

    /// The training problem an episode of step `step` played (group `g` is the step's
    /// problem `g`).
    fn problem_of(&self, sample: &Sample, step: &StepInfo) -> Option<spar_games::tasks::Problem> {
        let prompts = self.config.rollout.prompts;
        let index =
            self.config.warm_start.problems + (step.index - 1) * prompts + sample.group as usize;
        self.setup
            .env(Split::Train, index as u64)
            .problem()
            .cloned()
    }
}

/// RLTF-SD's samples: every later attempt's answer `y_k` (not a failed call) as an answer to
/// its episode's first prompt `x_0`, in the first attempt's role, with reward `r_k` and
/// advantage `r_k - mean of the first-attempt rewards of its group` (the `{r_0}` baseline).
fn distilled(played: &[Sample], rewards: &[Vec<f64>]) -> Vec<Sample> {
    let first: BTreeMap<usize, &Sample> = played
        .iter()
        .filter(|x| x.role.seat == 0)
        .map(|x| (x.episode, x))
        .collect();
    let mut by_group: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    for x in first.values() {
        let e = by_group.entry(x.group).or_default();
        e.0 += rewards[x.episode][0];
        e.1 += 1;
    }
    let mut out = Vec::new();
    for later in played.iter().filter(|x| x.role.seat > 0 && !x.failed) {
        let Some(x0) = first.get(&later.episode) else {
            continue;
        };
        let (sum, n) = by_group[&x0.group];
        let mut sd = Sample::new(x0.role.clone(), x0.prompt.clone(), later.completion.clone());
        (sd.episode, sd.group, sd.turn) = (later.episode, later.group, x0.turn);
        sd.text = later.text.clone();
        sd.reward = rewards[later.episode][later.role.seat];
        sd.advantage = sd.reward - sum / n as f64;
        out.push(sd);
    }
    out
}

/// Per episode, the raw reward of each seat (attempt, or verification with SPOC), from the
/// samples.
fn episode_rewards(samples: &[Sample], episodes: usize, seats: usize) -> Vec<Vec<f64>> {
    let mut rewards = vec![vec![0.0; seats]; episodes];
    for s in samples {
        rewards[s.episode][s.role.seat] = s.reward;
    }
    rewards
}

impl Loop for SelfCorrectLoop {
    type State = SelfCorrectState;
    type Metrics = SelfCorrectMetrics;
    const NAME: &'static str = "selfcorrect";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The warm start's supervised pairs (`warm_start.rs`), tokenized and shuffled by
    /// `run.seed`.
    fn warm_start(&mut self, learner: &Learner) -> Result<Option<WarmStart>> {
        let w = &self.config.warm_start;
        if w.steps == 0 {
            return Ok(None);
        }
        let corrections = self.config.selfcorrect.warm_start_corrections;
        let pairs = warm_start::pairs(&self.setup, w.problems, corrections)?;
        tokenized_warm_start(learner, self.style, pairs, &self.config).map(Some)
    }

    fn prepare(
        &mut self,
        learner: &Learner,
        out: &Path,
        _fresh_line: Option<&mut SelfCorrectMetrics>,
    ) -> Result<()> {
        if self.uses_reference() {
            self.reference_model = Some(learner.load_frozen(&checkpoint_dir(out, 0))?);
        }
        let episodes = out.join("episodes");
        std::fs::create_dir_all(&episodes).map_err(|e| Error::io(&episodes, e))
    }

    fn collect(
        &mut self,
        step: &StepInfo,
        _state: &mut SelfCorrectState,
        line: &mut SelfCorrectMetrics,
    ) -> Result<Batch> {
        let config = &self.config;
        let rounds = self.setup.max_messages() as u64;
        let (envs, played) = play_step(config, step, self.style, rounds, |index| {
            Ok(self.setup.env(Split::Train, index))
        })?;
        line.train = Some(TrainEpisodes {
            stage: config.stage(step.index),
            stats: AttemptStats::of(&match config.selfcorrect.method {
                // ReVISE: one answer's attempts, split at the refine marker.
                Method::Revise => revise::outcomes(
                    self.setup.task.as_ref(),
                    &envs,
                    &config.selfcorrect.refine_marker,
                ),
                _ => evaluate::attempt_outcomes(&envs),
            }),
            unparsable_rate: played.invalid_rate(),
            response_tokens: played.mean_response_tokens(),
            verify: evaluate::verify_stats(&envs),
            pairs: Vec::new(),
            accepted: Vec::new(),
        });
        if config.selfcorrect.method == Method::Refuel {
            let b = self.refuel_branches(step, &envs, &played)?;
            if let Some(t) = line.train.as_mut() {
                t.pairs = vec![("identical", b.identical), ("refuel", b.pairs.len())];
            }
            self.refuel_pairs = b.pairs;
        }
        write_episodes(&step.out.join("episodes"), step.index, &envs)?;
        Ok(Batch {
            returns: played.model_returns::<AttemptsEnv>(&[]),
            samples: played.turns,
        })
    }

    fn advantages(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        state: &mut SelfCorrectState,
        line: &mut SelfCorrectMetrics,
    ) -> Result<()> {
        let s = &self.config.selfcorrect;
        if s.method.is_pairwise() {
            return self.build_pairs(step, batch, line);
        }
        if s.method == Method::Refuel {
            // The pairs were made in `collect`, where the branches could be played.
            return Ok(());
        }
        if s.method.is_self_training() {
            let samples = std::mem::take(&mut batch.samples);
            let rerest = s.method == Method::Rerest;
            let (kept, counts) = selftrain::accepted(&samples, rerest, s.rerest_reflector);
            self.kl_coefs = vec![s.beta1; kept.len()];
            batch.samples = kept;
            if let Some(t) = line.train.as_mut() {
                t.accepted = counts.to_vec();
            }
            return Ok(());
        }
        let seats = self.setup.max_messages();
        let rewards = episode_rewards(&batch.samples, batch.returns.len(), seats);
        // RLTF's samples come from the played ones, before shaping and estimation.
        let extra = self.rltf_samples(step, &batch.samples, &rewards)?;
        let mut kept = Vec::with_capacity(batch.samples.len());
        let mut coefs = Vec::with_capacity(batch.samples.len());
        for mut s in std::mem::take(&mut batch.samples) {
            if let Some((reward, coef)) = self.shaped(step.index, s.role.seat, &rewards[s.episode])
            {
                s.reward = reward;
                kept.push(s);
                coefs.push(coef);
            }
        }
        let estimator = self.config.algorithm.estimator;
        if estimator == EstimatorKind::Group(crate::objectives::estimators::Estimator::Trloo) {
            selftrain::turn_returns(&mut kept);
        }
        let rae = estimator == EstimatorKind::Rae;
        let keys = kept
            .iter()
            .map(|s| match rae {
                true => s.role.key(),
                false => format!("prompt-{}/{}", s.group, s.role.name),
            })
            .collect();
        let groups = Groups::per_sample(&kept, keys)?;
        self.estimator
            .estimate(&mut kept, &groups, &mut state.baselines)?;
        if self.config.in_stage1(step.index) {
            // Stage I: attempt 1 carries only its KL term.
            for s in kept.iter_mut().filter(|s| s.role.seat == 0) {
                s.advantage = 0.0;
            }
        }
        coefs.extend(extra.iter().map(|(_, coef)| *coef));
        kept.extend(extra.into_iter().map(|(s, _)| s));
        batch.samples = kept;
        self.kl_coefs = coefs;
        Ok(())
    }

    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        _state: &mut SelfCorrectState,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        if self.config.selfcorrect.method.is_pairwise() {
            return self.update_pairs(step, opt);
        }
        if self.config.selfcorrect.method == Method::Refuel {
            return self.update_refuel(step, opt);
        }
        let (config, a) = (&self.config, &self.config.algorithm);
        let step_seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0x3b);
        PolicyUpdate {
            model: &step.learner.model,
            reference: self.reference_model.as_ref(),
            policy: self.policy.as_ref(),
            kl: &self.kl,
            kl_coefs: &self.kl_coefs,
            temperature: config.rollout.temperature,
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

    fn evaluate(&mut self, step: &StepInfo, line: &mut SelfCorrectMetrics) -> Result<()> {
        let (config, learner) = (&self.config, step.learner);
        let sampling = eval_sampling(config);
        let model = learner.model.detached();
        let evaluation = if config.selfcorrect.method == Method::Revise {
            // ReVISE: the answers' refinements graded one by one, and the confidence vote.
            let (evaluation, vote) = evaluate_refine(
                &model,
                &learner.tokenizer,
                &self.setup,
                self.style,
                &sampling,
                &config.selfcorrect.refine_marker,
            )?;
            line.refine = Some(vote);
            evaluation
        } else {
            evaluate_attempts(
                &model,
                &learner.tokenizer,
                &self.setup,
                self.style,
                &sampling,
            )?
        };
        line.eval = Some((self.role_env.clone(), evaluation));
        Ok(())
    }

    fn write_checkpoint_files(&self, dir: &Path) -> Result<()> {
        let c = &self.config;
        let prompting = TaskPrompting {
            task: c.task.name.clone(),
            task_seed: c.task.seed,
            prompt_style: c.model.prompt_style.name().to_string(),
            max_tokens: c.rollout.max_tokens,
            attempts: Some(crate::loops::tasks::AttemptsPrompting {
                attempts: c.selfcorrect.attempts,
                feedback: c.selfcorrect.feedback,
                instruction: c.selfcorrect.instruction.clone(),
                verify: self.setup.verify,
                critique: self.setup.critique,
            }),
        };
        write_atomic(
            &dir.join("task.json"),
            serde_json::to_string_pretty(&prompting)
                .expect("prompting serialises")
                .as_bytes(),
        )?;
        Ok(())
    }
}

/// Step `step`'s training episodes, played with the learner's current weights at the
/// rollout's temperature and token budget: problem `i` of the step is training problem
/// `warm_start.problems + (step - 1) * prompts + i` (`env` makes its environment from that
/// index), played `group_size` times (a group), for at most `max_rounds` rounds, with the
/// step's rollout seed. Returns the played environments and their samples.
pub(super) fn play_step<E: Env + Clone>(
    config: &SelfCorrectConfig,
    step: &StepInfo,
    style: PromptStyle,
    max_rounds: u64,
    env: impl Fn(u64) -> Result<E>,
) -> Result<(Vec<E>, crate::rollout::Batch)> {
    let prompts = config.rollout.prompts;
    let first = config.warm_start.problems + (step.index - 1) * prompts;
    let originals = (0..prompts)
        .map(|i| env((first + i) as u64))
        .collect::<Result<Vec<E>>>()?;
    let mut envs = groups(&originals, config.rollout.group_size);
    let seed = spar_core::seeds::task_step(config.run.seed, step.index as u64);
    let played = play_envs(config, step, style, max_rounds, &mut envs, seed)?;
    Ok((envs, played))
}

/// Plays `envs` (groups of `rollout.group_size`) from where they stand with the learner's
/// current weights, random streams from `seed`.
pub(super) fn play_envs<E: Env>(
    config: &SelfCorrectConfig,
    step: &StepInfo,
    style: PromptStyle,
    max_rounds: u64,
    envs: &mut [E],
    seed: u64,
) -> Result<crate::rollout::Batch> {
    let learner = step.learner;
    let params = spar_lm::sample::SamplingParams {
        temperature: config.rollout.temperature,
        max_tokens: config.rollout.max_tokens,
        ..spar_lm::sample::SamplingParams::default()
    };
    let inference = learner.model.detached();
    let engine = spar_lm::LocalEngine {
        model: &inference,
        tokenizer: &learner.tokenizer,
    };
    let rollout = Rollout {
        group_size: config.rollout.group_size,
        max_rounds,
        ..Rollout::new(&engine, &learner.tokenizer, style, &params)
    };
    rollout.play(envs, &[], seed)
}

/// `episodes/step-NNNNNN.jsonl`: every episode of the step, its attempts and verdicts.
fn write_episodes(dir: &Path, step: usize, envs: &[AttemptsEnv]) -> Result<()> {
    let mut body = String::new();
    for env in envs {
        let Some(problem) = env.problem() else {
            continue;
        };
        let checks = env.checks();
        let attempts: Vec<serde_json::Value> = env
            .answers()
            .into_iter()
            .zip(env.verdicts())
            .enumerate()
            .map(|(k, (a, v))| match checks.get(k) {
                // SPOC: what the model's own verification said (null: neither yes nor no).
                Some(c) => serde_json::json!({ "completion": a, "verdict": v, "verified": c }),
                None => serde_json::json!({ "completion": a, "verdict": v }),
            })
            .collect();
        let line = serde_json::json!({
            "step": step,
            "problem": problem.id,
            "question": problem.question,
            "attempts": attempts,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    write_atomic(&dir.join(format!("step-{step:06}.jsonl")), body.as_bytes())?;
    Ok(())
}

/// The warm start of `[warm_start]` on `pairs` (observation, completion), tokenized for
/// `learner` in `style` and shuffled by `run.seed`.
fn tokenized_warm_start(
    learner: &Learner,
    style: PromptStyle,
    pairs: Vec<(spar_core::Observation, String)>,
    config: &SelfCorrectConfig,
) -> Result<WarmStart> {
    let mut data = Vec::with_capacity(pairs.len());
    for (observation, completion) in pairs {
        data.push((
            prompt_ids(&learner.tokenizer, &observation, style)?,
            completion_ids(&learner.tokenizer, &completion)?,
        ));
    }
    Ok(crate::loops::tasks::shuffled_warm_start(
        data,
        &config.warm_start,
        config.run.seed,
    ))
}

/// The kernel's settings of a self-correction config (every method, CoSC's loop included).
fn settings(config: &SelfCorrectConfig) -> Settings {
    let a = &config.algorithm;
    Settings::constant_rate(
        &config.run,
        &config.model,
        a.learning_rate,
        a.weight_decay,
        config.to_toml(),
        SelfCorrectConfig::default().to_toml(),
    )
}

/// The held-out sampling of `[eval]`: the run's own evaluation seed `run.seed ^ 0xe7a1`.
fn eval_sampling(config: &SelfCorrectConfig) -> EvalSampling {
    EvalSampling {
        problems: config.eval.problems,
        samples: config.eval.samples,
        temperature: config.eval.temperature,
        max_tokens: config.rollout.max_tokens,
        seed: config.run.seed ^ 0xe7a1,
    }
}

/// Runs (or resumes) the self-correction run described by `config` in `out`.
pub fn run(
    config: &SelfCorrectConfig,
    out: &Path,
    resume: bool,
    mut on_metrics: impl FnMut(&crate::trainer::Line),
) -> Result<Vec<crate::trainer::Line>> {
    if config.selfcorrect.method == Method::Cosc {
        let mut lp = cosc::CoscLoop::new(config)?;
        return crate::trainer::run(&mut lp, out, resume, &mut on_metrics);
    }
    let mut lp = SelfCorrectLoop::new(config)?;
    crate::trainer::run(&mut lp, out, resume, &mut on_metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(method: &str) -> SelfCorrectLoop {
        let text = format!(
            "[task]\nname = \"arithmetic\"\n[selfcorrect]\nmethod = \"{method}\"\n\
             stage1_steps = 2\nalpha = 10.0\nbeta1 = 0.01\nbeta2 = 0.1\n"
        );
        SelfCorrectLoop::new(&SelfCorrectConfig::parse(&text, &[]).unwrap()).unwrap()
    }

    #[test]
    fn rewards_and_kl_coefficients_follow_each_method() {
        // Attempts wrong then right: r = [0, 1].
        let r = [0.0, 1.0];
        let score = lp("score");
        // Stage I (steps 1, 2): attempt 1 pinned by beta2, attempt 2 on its reward, no KL.
        assert_eq!(score.shaped(2, 0, &r), Some((0.0, 0.1)));
        assert_eq!(score.shaped(2, 1, &r), Some((1.0, 0.0)));
        // Stage II: r2 + 10 (r2 - r1) = 11; a right-to-wrong second attempt: 0 + 10 (0 - 1).
        assert_eq!(score.shaped(3, 1, &r), Some((11.0, 0.01)));
        assert_eq!(score.shaped(3, 1, &[1.0, 0.0]), Some((-10.0, 0.01)));
        assert_eq!(score.shaped(3, 0, &r), Some((0.0, 0.01)));
        let naive = lp("naive");
        assert_eq!(naive.shaped(1, 1, &r), Some((1.0, 0.01)));
        let single = lp("single");
        assert_eq!(single.shaped(1, 0, &r), Some((0.0, 0.01)));
        assert_eq!(single.shaped(1, 1, &r), None);
        let sd = lp("rltf_sd");
        // The distilled samples: two episodes of one problem, first attempts 0 and 1 (mean
        // 1/2), second attempts 1 and 1: advantages 1 - 1/2 on the first prompts.
        let sample = |episode: usize, seat: usize, prompt: u32, reward: f64| {
            let mut x = Sample::new(
                spar_core::Role::new("arithmetic", seat, format!("attempt{}", seat + 1)),
                vec![prompt],
                vec![prompt + 10],
            );
            (x.episode, x.reward) = (episode, reward);
            x
        };
        let played = [
            sample(0, 0, 1, 0.0),
            sample(0, 1, 2, 1.0),
            sample(1, 0, 3, 1.0),
            sample(1, 1, 4, 1.0),
        ];
        let rewards = episode_rewards(&played, 2, 2);
        let d = distilled(&played, &rewards);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].prompt.clone(), d[0].completion.clone()),
            (vec![1], vec![12])
        );
        assert_eq!(
            (d[1].prompt.clone(), d[1].completion.clone()),
            (vec![3], vec![14])
        );
        assert_eq!(d[0].role.key(), "arithmetic/attempt1");
        assert_eq!((d[0].advantage, d[1].advantage), (0.5, 0.5));
        assert_eq!(sd.shaped(1, 0, &r), Some((0.0, 0.01)));
        assert_eq!(sd.shaped(1, 1, &r), None);
    }
}
