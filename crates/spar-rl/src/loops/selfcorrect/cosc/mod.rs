//! CoSC, the Chain of Self-Correction (Gao et al. 2024, "Embedding Self-Correction as an
//! Inherent Ability in Large Language Models for Enhanced Mathematical Reasoning", arXiv
//! 2410.10735, sec. 3): one response in stages of a program, the tool's output, a
//! verification and a conclusion ([`CoscEnv`]), learnt by two phases of fine-tuning
//! (`selfcorrect.method = "cosc"`; `docs/self-correction.md`):
//!
//! * phase 1 (the warm start): maximum likelihood on the teacher's seed trajectories
//!   ([`teacher_turns`]: the task's reference programs with deliberate slips, each caught by
//!   its verification and corrected in the next stage), kept only when their final answer is
//!   right, as the paper keeps only GPT-4's right trajectories;
//! * phase 2 (every step): the current model samples `rollout.group_size` trajectories of
//!   each of the step's `rollout.prompts` training problems; the right ones are kept
//!   (rejection sampling) and every message of them is learnt by maximum likelihood
//!   (`loss = mean NLL per completion token` of a minibatch). The tool's outputs are in the
//!   messages' prompts, never their completions, so the model is never trained to predict an
//!   `[OUT]` line.
//!
//! The paper's second phase samples once from the phase-1 model and fine-tunes on the whole
//! set; here each step samples from the current model (the same data, made online, as the
//! task loop's rejection-sampling fine-tuning does).

use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use spar_core::atomic::write_atomic;
use spar_core::Env;
use spar_games::tasks::{task_from_spec, teacher_turns, CoscEnv, CoscStats, Split};

use crate::config::choice::Choice;
use crate::config::selfcorrect::SelfCorrectConfig;
use crate::error::{Error, Result};
use crate::loops::tasks::TaskPrompting;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::Sample;
use crate::trainer::{
    AdamW, Batch, Learner, Loop, Scope, Settings, StepInfo, StepMetrics, UpdateStats, WarmStart,
};

mod evaluate;

pub use evaluate::{evaluate_cosc, CoscEvaluation, CoscPrompting, CoscSetup};

/// What a CoSC run keeps between steps: nothing (every draw is a function of `run.seed` and
/// the step).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoscState {}

/// What the loop measured in one step: `selfcorrect/<metric>` for the training episodes and
/// `eval/<task>/<metric>` for the held-out ones (`docs/metrics.md`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoscMetrics {
    /// Phase 1's seed data (step 0 of a fresh run): trajectories and their mean stages.
    pub seed: Option<(usize, f64)>,
    /// The training episodes of a phase-2 step.
    pub train: Option<CoscTrain>,
    /// Held-out evaluation: the task's name in metric keys and the evaluation.
    pub eval: Option<(String, CoscEvaluation)>,
}

/// What a step's training episodes showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoscTrain {
    /// The episodes' metrics.
    pub stats: CoscStats,
    /// Right episodes kept for the update (rejection sampling).
    pub kept_episodes: usize,
    /// Fraction of the messages that were invalid moves.
    pub invalid_turn_rate: f64,
    /// Mean message length in tokens.
    pub response_tokens: f64,
}

impl StepMetrics for CoscMetrics {
    fn write(&self, out: &mut Scope) {
        if let Some((trajectories, stages)) = self.seed {
            out.put("seed/trajectories", trajectories);
            out.put("seed/mean_stages", stages);
        }
        if let Some(t) = &self.train {
            evaluate::write_stats(&t.stats, "", &mut |k, v| out.put(k, v));
            out.put("kept_episodes", t.kept_episodes);
            out.put("invalid_turn_rate", t.invalid_turn_rate);
            out.put("response_tokens", t.response_tokens);
        }
        if let Some((task, e)) = &self.eval {
            e.write(task, out);
        }
    }
}

/// Phase 1's seed data ([`CoscLoop::seed_data`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeedData {
    /// Every message of the kept trajectories: what it read and what the teacher wrote.
    pub pairs: Vec<(spar_core::Observation, String)>,
    /// Trajectories kept (their final answer is right).
    pub trajectories: usize,
    /// Their mean number of stages.
    pub mean_stages: f64,
}

/// The CoSC loop of one configuration.
pub struct CoscLoop {
    config: SelfCorrectConfig,
    settings: Settings,
    setup: CoscSetup,
    /// The task's name in metric keys (`countdown`).
    role_env: String,
    style: PromptStyle,
}

impl std::fmt::Debug for CoscLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoscLoop")
            .field("task", &self.setup.task.name())
            .field("stages", &self.setup.stages)
            .finish()
    }
}

impl CoscLoop {
    /// The loop of `config` (`selfcorrect.method = "cosc"`), checked whole before anything is
    /// written.
    pub fn new(config: &SelfCorrectConfig) -> Result<CoscLoop> {
        config.validate()?;
        let task = Arc::from(
            task_from_spec(&config.task.name)
                .map_err(|e| Error::Invalid(format!("config: task.name: {e}")))?,
        );
        let setup = CoscSetup {
            task,
            task_seed: config.task.seed,
            stages: config.cosc.stages,
        };
        Ok(CoscLoop {
            settings: super::settings(config),
            role_env: setup.env(Split::Train, 0)?.role(0).env,
            setup,
            style: config.model.prompt_style,
            config: config.clone(),
        })
    }

    /// Phase 1's seed data: the teacher's messages on the first `warm_start.problems`
    /// training problems, from trajectories whose final answer is right. Problem `p`'s slips
    /// draw from a generator seeded by `run.seed` and `p`.
    pub fn seed_data(&self) -> Result<SeedData> {
        let (mut pairs, mut kept, mut stages) = (Vec::new(), 0usize, 0usize);
        for p in 0..self.config.warm_start.problems as u64 {
            let mut env = self.setup.env(Split::Train, p)?;
            let mut rng =
                spar_core::seeded_rng(spar_core::seeds::mix(self.config.run.seed ^ 0xc05c, p));
            let turns = teacher_turns(&env, self.config.cosc.slip_rate, &mut rng);
            let mut played = Vec::with_capacity(turns.len());
            for text in turns {
                let Some(seat) = env.current_player() else {
                    break;
                };
                played.push((env.observation(seat), text.clone()));
                env.step(seat, &text);
            }
            // The paper keeps a seed trajectory only when its answer is right.
            if let Some(e) = env.episode().filter(|e| e.correct) {
                kept += 1;
                stages += e.stages.len();
                pairs.extend(played);
            }
        }
        Ok(SeedData {
            pairs,
            trajectories: kept,
            mean_stages: stages as f64 / kept.max(1) as f64,
        })
    }
}

impl Loop for CoscLoop {
    type State = CoscState;
    type Metrics = CoscMetrics;
    const NAME: &'static str = "selfcorrect";

    fn settings(&self) -> &Settings {
        &self.settings
    }

    fn before_warm_start(&mut self, _learner: &Learner, line: &mut CoscMetrics) -> Result<()> {
        if self.config.warm_start.steps > 0 {
            let seed = self.seed_data()?;
            line.seed = Some((seed.trajectories, seed.mean_stages));
        }
        Ok(())
    }

    /// Phase 1: the teacher's messages, tokenized and shuffled by `run.seed`.
    fn warm_start(&mut self, learner: &Learner) -> Result<Option<WarmStart>> {
        let w = &self.config.warm_start;
        if w.steps == 0 {
            return Ok(None);
        }
        let pairs = self.seed_data()?.pairs;
        super::tokenized_warm_start(learner, self.style, pairs, &self.config).map(Some)
    }

    fn prepare(
        &mut self,
        _learner: &Learner,
        out: &Path,
        _fresh_line: Option<&mut CoscMetrics>,
    ) -> Result<()> {
        let episodes = out.join("episodes");
        std::fs::create_dir_all(&episodes).map_err(|e| Error::io(&episodes, e))
    }

    /// Phase 2's sampling: `group_size` trajectories of each of the step's problems.
    fn collect(
        &mut self,
        step: &StepInfo,
        _state: &mut CoscState,
        line: &mut CoscMetrics,
    ) -> Result<Batch> {
        let rounds = self.setup.stages as u64 + 1;
        let (envs, played) = super::play_step(&self.config, step, self.style, rounds, |index| {
            self.setup.env(Split::Train, index)
        })?;
        let episodes: Vec<_> = envs.iter().filter_map(CoscEnv::episode).collect();
        line.train = Some(CoscTrain {
            stats: CoscStats::of(&episodes),
            kept_episodes: 0,
            invalid_turn_rate: played.invalid_rate(),
            response_tokens: played.mean_response_tokens(),
        });
        write_episodes(&step.out.join("episodes"), step.index, &envs)?;
        Ok(Batch {
            returns: played.model_returns::<CoscEnv>(&[]),
            samples: played.turns,
        })
    }

    /// Rejection sampling: the messages of the right episodes that no message of which hit
    /// the token budget or failed.
    fn advantages(
        &mut self,
        _step: &StepInfo,
        batch: &mut Batch,
        _state: &mut CoscState,
        line: &mut CoscMetrics,
    ) -> Result<()> {
        let episodes = batch.returns.len();
        let mut keep = vec![true; episodes];
        for s in &batch.samples {
            if s.reward < 1.0 || s.truncated || s.failed {
                keep[s.episode] = false;
            }
        }
        batch.samples.retain(|s| keep[s.episode]);
        for s in &mut batch.samples {
            s.advantage = 1.0;
        }
        if let Some(t) = &mut line.train {
            let played: std::collections::BTreeSet<usize> =
                batch.samples.iter().map(|s| s.episode).collect();
            t.kept_episodes = played.len();
        }
        Ok(())
    }

    /// Maximum likelihood on the kept messages: `algorithm.epochs` passes in shuffled
    /// minibatches of `algorithm.minibatch_size`, each the mean NLL per completion token.
    fn update(
        &mut self,
        step: &StepInfo,
        batch: &mut Batch,
        _state: &mut CoscState,
        opt: &mut AdamW,
    ) -> Result<UpdateStats> {
        let a = &self.config.algorithm;
        let model = &step.learner.model;
        let mut order: Vec<usize> = (0..batch.samples.len()).collect();
        let step_seed = spar_core::seeds::task_step(self.config.run.seed, step.index as u64);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(step_seed ^ 0xc05c);
        let mut stats = UpdateStats {
            samples: batch.samples.len(),
            ..UpdateStats::default()
        };
        for _ in 0..a.epochs {
            order.shuffle(&mut rng);
            for mb in order.chunks(a.minibatch_size) {
                let pairs: Vec<(Vec<u32>, Vec<u32>)> = mb
                    .iter()
                    .map(|&i| {
                        let s: &Sample = &batch.samples[i];
                        (s.prompt.clone(), s.completion.clone())
                    })
                    .collect();
                let loss = crate::trainer::supervised::nll(model, &pairs)?;
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
        stats.sft_loss = (stats.minibatches > 0).then_some(stats.loss);
        Ok(stats)
    }

    fn evaluates(&self, step: usize, last: bool) -> bool {
        let every = self.config.eval.every;
        step == 0 || last || every > 0 && step.is_multiple_of(every)
    }

    fn evaluate(&mut self, step: &StepInfo, line: &mut CoscMetrics) -> Result<()> {
        let (config, learner) = (&self.config, step.learner);
        let sampling = super::eval_sampling(config);
        let model = learner.model.detached();
        let evaluation = evaluate_cosc(
            &model,
            &learner.tokenizer,
            &self.setup,
            self.style,
            &sampling,
        )?;
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
            attempts: None,
        };
        prompting.save(dir)?;
        CoscPrompting {
            stages: self.setup.stages,
        }
        .save(dir)
    }
}

/// `episodes/step-NNNNNN.jsonl`: every episode of the step, its trajectory and how it ended.
fn write_episodes(dir: &Path, step: usize, envs: &[CoscEnv]) -> Result<()> {
    let mut body = String::new();
    for env in envs {
        let Some(problem) = env.problem() else {
            continue;
        };
        let line = serde_json::json!({
            "step": step,
            "problem": problem.id,
            "question": problem.question,
            "trajectory": env.trajectory(),
            "stages": env.executed(),
            "end": env.end(),
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    write_atomic(&dir.join(format!("step-{step:06}.jsonl")), body.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(sets: &[&str]) -> CoscLoop {
        let text = "[task]\nname = \"countdown(numbers=2..3,max=10)\"\n[selfcorrect]\n\
                    method = \"cosc\"\n[warm_start]\nproblems = 40\n";
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        CoscLoop::new(&SelfCorrectConfig::parse(text, &sets).unwrap()).unwrap()
    }

    #[test]
    fn seed_data_is_every_message_of_right_teacher_trajectories() {
        let cosc = lp(&["cosc.stages=3", "cosc.slip_rate=0.5"]);
        let SeedData {
            pairs,
            trajectories: kept,
            mean_stages: stages,
        } = cosc.seed_data().unwrap();
        // Every teacher trajectory is right: all 40 kept, one message per stage plus one.
        assert_eq!(kept, 40);
        assert_eq!(pairs.len() as f64, 40.0 * (stages + 1.0));
        assert!(stages > 1.2 && stages <= 3.0, "{stages}");
        // The first message of each trajectory reads only the question; a later one reads
        // the tool's [OUT] line in its prompt, and no completion holds one.
        assert!(pairs[0].1.starts_with("[PROG] "));
        assert!(!pairs[0].0.state_text.contains("[OUT]"));
        assert!(pairs[1].0.state_text.contains("\n[OUT] "));
        assert!(pairs.iter().all(|(_, c)| !c.contains("[OUT]")));
        // The same seed gives the same data; program of thought is one stage.
        assert_eq!(cosc.seed_data().unwrap().pairs, pairs);
        let pot = lp(&["cosc.stages=1"]);
        let seed = pot.seed_data().unwrap();
        assert_eq!(
            (seed.pairs.len(), seed.trajectories, seed.mean_stages),
            (80, 40, 1.0)
        );
    }

    #[test]
    fn bad_cosc_settings_are_refused_naming_the_key() {
        let text = "[task]\nname = \"countdown\"\n[selfcorrect]\nmethod = \"cosc\"\n";
        for (set, key) in [
            ("cosc.stages=0", "cosc.stages"),
            ("cosc.stages=9", "cosc.stages"),
            ("cosc.slip_rate=1.5", "cosc.slip_rate"),
            ("cosc.stage=2", "stage"),
            ("task.name=\"wordproblem\"", "arithmetic or countdown"),
            ("selfcorrect.feedback=text", "not feedback"),
        ] {
            let e = SelfCorrectConfig::parse(text, &[set.to_string()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
    }
}
