//! The typed configuration of `spar train` on Agent-R (a config with an `[agent_r]` table;
//! `docs/self-correction.md`): tree search over the model's steps on a step-by-step
//! environment ([`spar_games::tasks::CountdownStepsEnv`]), revision trajectories spliced from
//! its good and bad paths, and iterative supervised training on them. Every field has a
//! default; an unknown or ill-typed key is an error that names it; `--set section.key=value`
//! overrides a field.

use serde::{Deserialize, Serialize};

use crate::config::choice::{self, Choice};
use crate::config::tasks::TaskWarmStart;
use crate::config::{from_table, ModelConfig, RunConfig};
use crate::error::{Error, Result};
use crate::rollout::prompt::PromptStyle;

/// An Agent-R run: per step, search trees on `agent_r.prompts` training problems, pair their
/// good and bad paths, splice revision trajectories, and take supervised steps on them and on
/// the good paths.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AgentRConfig {
    /// Seeds and length.
    pub run: RunConfig,
    /// The step-by-step environment.
    pub env: EnvSection,
    /// The model: trained from scratch or loaded.
    pub model: ModelConfig,
    /// Supervised warm start on the environment's reference solutions, step by step.
    pub warm_start: TaskWarmStart,
    /// The tree search (Agent-R's MCTS).
    pub search: SearchSection,
    /// Pairing, the first error, the splice.
    pub agent_r: AgentRSection,
    /// The supervised update.
    pub algorithm: AgentRAlgorithm,
    /// Held-out evaluation.
    pub eval: AgentREval,
}

/// `[env]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnvSection {
    /// The environment: `countdown_steps(numbers=3..4,max=25,target_max=100,turns=12)`
    /// (`spar tasks` lists its parameters).
    pub name: String,
    /// Seed of the problem generator.
    pub seed: u64,
}

impl Default for EnvSection {
    fn default() -> Self {
        EnvSection {
            name: "countdown_steps(numbers=3,max=10,target_max=30,turns=10)".into(),
            seed: 0,
        }
    }
}

/// `[search]`: Agent-R's MCTS (its `MCTSConfig` defaults, `docs/self-correction.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchSection {
    /// Deepest node (steps from the root); a node at this depth is terminal with value 0
    /// (Agent-R: 10).
    pub max_depth: usize,
    /// Selection, expansion, simulation and backpropagation rounds per tree (Agent-R: 4).
    pub iterations: usize,
    /// Steps sampled per expansion, deduplicated by the step the environment read (Agent-R's
    /// `n_generate_samples`: 4).
    pub n_generate_samples: usize,
    /// UCT's exploration constant `c` in `Q/N + c sqrt(ln N_parent / N)` (Agent-R: 0.25).
    pub uct_c: f64,
    /// Sampling temperature of expansions and simulations.
    pub temperature: f64,
    /// Most tokens per step (a revision thought and its step included).
    pub max_tokens: usize,
}

impl Default for SearchSection {
    fn default() -> Self {
        SearchSection {
            max_depth: 10,
            iterations: 4,
            n_generate_samples: 4,
            uct_c: 0.25,
            temperature: 1.0,
            max_tokens: 80,
        }
    }
}

/// `[agent_r]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentRSection {
    /// Training problems searched per step (one tree each).
    pub prompts: usize,
    /// Where a bad path is cut before the revision: `first_error` (Agent-R: the first step
    /// whose search value drops below `error_threshold`), `end` (the whole bad path: late
    /// revision), `none` (no revision trajectories: supervised training on good paths only).
    #[serde(with = "choice")]
    pub splice: Splice,
    /// A path is good when its value `v = Q/N` exceeds `alpha` (Agent-R's `ALPHA`).
    pub alpha: f64,
    /// A (good, bad) pair is kept when `v_good - v_bad > beta` (Agent-R's `BETA`).
    pub beta: f64,
    /// `splice = "first_error"`: the first step of the bad path, at or after the point where
    /// it leaves the good path, whose node value `Q/N` is below this is its first error.
    pub error_threshold: f64,
    /// Revision trajectories per problem at most (bad paths in tree order, each paired with
    /// the good path sharing its longest prefix).
    pub pairs_per_problem: usize,
}

impl Default for AgentRSection {
    fn default() -> Self {
        AgentRSection {
            prompts: 16,
            splice: Splice::FirstError,
            alpha: 0.5,
            beta: 0.5,
            error_threshold: 0.5,
            pairs_per_problem: 2,
        }
    }
}

/// `agent_r.splice`: the arms of the Agent-R comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splice {
    /// Agent-R: revise right after the first error the search's values show.
    FirstError,
    /// Late revision: revise after the whole bad path.
    End,
    /// No revision trajectories: good paths only.
    None,
}

impl Choice for Splice {
    const ALL: &'static [Self] = &[Splice::FirstError, Splice::End, Splice::None];

    fn name(self) -> &'static str {
        match self {
            Splice::FirstError => "first_error",
            Splice::End => "end",
            Splice::None => "none",
        }
    }
}

/// `[algorithm]`: the supervised update on a step's trajectories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentRAlgorithm {
    /// Passes over a step's trained turns.
    pub epochs: usize,
    /// Trained turns per optimiser step.
    pub minibatch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clipping (0 disables).
    pub max_grad_norm: f64,
}

impl Default for AgentRAlgorithm {
    fn default() -> Self {
        AgentRAlgorithm {
            epochs: 1,
            minibatch_size: 32,
            learning_rate: 5e-4,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        }
    }
}

/// `[eval]`: episodes on held-out problems, from the start and after an injected error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentREval {
    /// Evaluate every this many steps (and at step 0 and after the last); 0: only at the
    /// ends.
    pub every: usize,
    /// Test-split problems (the first ones, the same every time).
    pub problems: usize,
    /// Episodes per problem.
    pub samples: usize,
    /// Sampling temperature.
    pub temperature: f64,
}

impl Default for AgentREval {
    fn default() -> Self {
        AgentREval {
            every: 5,
            problems: 64,
            samples: 2,
            temperature: 1.0,
        }
    }
}

impl AgentRConfig {
    /// Whether a TOML text is an Agent-R config (it has an `[agent_r]` table).
    pub fn is_agent_r_config(text: &str) -> bool {
        toml::from_str::<toml::Table>(text)
            .map(|t| t.contains_key("agent_r"))
            .unwrap_or(false)
    }

    /// Parses TOML text, applies `key=value` overrides, and checks the result.
    pub fn parse(text: &str, overrides: &[String]) -> Result<AgentRConfig> {
        let table = crate::config::apply_overrides(text, overrides)?;
        for other in ["task", "selfcorrect", "game"] {
            if table.contains_key(other) {
                return Err(Error::Invalid(format!(
                    "config: an [agent_r] config has no [{other}] table (its environment is \
                     [env] name = \"countdown_steps(...)\"); remove one of the two"
                )));
            }
        }
        let config: AgentRConfig = from_table(table)?;
        config.validate()?;
        Ok(config)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks ranges and names; errors name the key.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        if let Err(e) = spar_games::tasks::CountdownSteps::from_spec(&self.env.name) {
            return bad(format!("env.name: {e}"));
        }
        let (s, a) = (&self.search, &self.agent_r);
        for (key, value) in [
            ("agent_r.alpha", a.alpha),
            ("agent_r.beta", a.beta),
            ("agent_r.error_threshold", a.error_threshold),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return bad(format!(
                    "{key} must be in [0, 1] (path values are success rates), got {value}"
                ));
            }
        }
        crate::config::check_positive(&[
            ("search.temperature", s.temperature),
            ("eval.temperature", self.eval.temperature),
            ("algorithm.learning_rate", self.algorithm.learning_rate),
        ])?;
        crate::config::check_non_negative(&[
            ("search.uct_c", s.uct_c),
            ("algorithm.weight_decay", self.algorithm.weight_decay),
            ("algorithm.max_grad_norm", self.algorithm.max_grad_norm),
            ("warm_start.learning_rate", self.warm_start.learning_rate),
        ])?;
        crate::config::check_at_least_one(&[
            ("search.max_depth", s.max_depth),
            ("search.iterations", s.iterations),
            ("search.n_generate_samples", s.n_generate_samples),
            ("search.max_tokens", s.max_tokens),
            ("agent_r.prompts", a.prompts),
            ("agent_r.pairs_per_problem", a.pairs_per_problem),
            ("algorithm.epochs", self.algorithm.epochs),
            ("algorithm.minibatch_size", self.algorithm.minibatch_size),
            ("eval.problems", self.eval.problems),
            ("eval.samples", self.eval.samples),
            ("run.checkpoint_every", self.run.checkpoint_every),
            ("run.max_consecutive_skips", self.run.max_consecutive_skips),
        ])?;
        self.warm_start.validate()?;
        self.model.validate()?;
        Ok(())
    }

    /// The keys whose values come from a fixed list, with that list, for `spar train --help`.
    pub fn choices() -> Vec<(&'static str, String)> {
        use choice::names;
        vec![
            ("model.prompt_style", names::<PromptStyle>()),
            ("agent_r.splice", names::<Splice>()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[agent_r]\nsplice = \"first_error\"\n";

    #[test]
    fn choices_list_every_fixed_set_key_with_the_values_it_accepts() {
        // The config's string keys: the two listed, and the two free-text ones.
        for (key, values) in AgentRConfig::choices() {
            let e = AgentRConfig::parse(TEXT, &[format!("{key}=not-a-value")])
                .unwrap_err()
                .to_string();
            let expected = format!("config: {key}: \"not-a-value\" is not one of {values}");
            assert!(e.starts_with(&expected), "{e}\nexpected: {expected}");
        }
        assert_eq!(AgentRConfig::choices()[1].1, "first_error, end, none");
        let table: toml::Table = toml::from_str(&AgentRConfig::default().to_toml()).unwrap();
        let strings: Vec<String> = crate::config::leaves(&table)
            .into_iter()
            .filter(|(_, v)| v.is_str())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            strings,
            [
                "agent_r.splice",
                "env.name",
                "model.init",
                "model.prompt_style"
            ]
        );
    }

    #[test]
    fn configs_parse_round_trip_and_name_bad_keys() {
        assert!(AgentRConfig::is_agent_r_config(TEXT));
        assert!(!AgentRConfig::is_agent_r_config(
            "[task]\nname = \"arithmetic\"\n"
        ));
        let c = AgentRConfig::parse(TEXT, &["agent_r.splice=end".into()]).unwrap();
        assert_eq!(c.agent_r.splice, Splice::End);
        // The paper's MCTS defaults.
        let s = &c.search;
        assert_eq!(
            (s.max_depth, s.iterations, s.n_generate_samples, s.uct_c),
            (10, 4, 4, 0.25)
        );
        assert_eq!(AgentRConfig::parse(&c.to_toml(), &[]).unwrap(), c);
        for (set, key) in [
            ("agent_r.splice=middle", "agent_r.splice"),
            ("agent_r.alpha=1.5", "agent_r.alpha"),
            ("agent_r.beta=-0.1", "agent_r.beta"),
            ("search.iterations=0", "search.iterations"),
            ("search.uct_c=-1", "search.uct_c"),
            ("env.name=\"countdown(numbers=3)\"", "env.name"),
            ("env.name=\"countdown_steps(turns=0)\"", "turns"),
            ("agent_r.prompts=0", "agent_r.prompts"),
            ("search.depth=3", "depth"),
        ] {
            let e = AgentRConfig::parse(TEXT, &[set.to_string()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        let e = AgentRConfig::parse(&format!("{TEXT}[task]\nname = \"countdown\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("[task]"), "{e}");
    }
}
