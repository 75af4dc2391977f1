//! Choice-valued flags: each lists its accepted values in `--help` (`[possible values: ...]`)
//! and in shell completions (`spar completions`), taken from the list the library itself reads
//! them with (the [`Choice`] lists of configs, `GAMES`, `TASKS`, `PLAYERS`), so help,
//! completions and parsing cannot disagree. Flags whose values are a fixed set are checked
//! here with the library's own parser (clap's error, exit code 2); flags whose values take
//! parameters (`kuhn(hands=5)`, `alphabeta:3`, `model:PATH`) list the names and forms and
//! are checked by the command, whose error names the accepted ones.

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use spar_core::{InvalidMoveRule, ProtocolKind, View};
use spar_games::tasks::{Feedback, TASKS};
use spar_rl::config::choice::{self, Choice};
use spar_rl::rollout::prompt::PromptStyle;
use spar_rl::rollout::Decode;

/// Checks a flag's value: `Err` holds the reason, naming the accepted values.
type Check = fn(&str) -> Result<(), String>;

/// A flag's accepted values, listed in help and completions, and checked when `check` is set.
#[derive(Clone)]
pub struct Choices {
    values: Vec<PossibleValue>,
    /// Checks a value; `None` passes every value on to the command (values with parameters).
    check: Option<Check>,
}

impl TypedValueParser for Choices {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let flag = arg.map(ToString::to_string).unwrap_or_default();
        let text = value.to_str().ok_or_else(|| {
            clap::Error::raw(
                ErrorKind::InvalidUtf8,
                format!("the value of {flag} is not valid UTF-8\n"),
            )
            .with_cmd(cmd)
        })?;
        if let Some(check) = self.check {
            check(text).map_err(|message| {
                clap::Error::raw(
                    ErrorKind::InvalidValue,
                    format!("invalid value {text:?} for {flag}: {message}\n"),
                )
                .with_cmd(cmd)
            })?;
        }
        Ok(text.to_string())
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.values.iter().cloned()))
    }
}

/// The names of a config choice (`sample, legal`), checked by its parser.
fn of<T: Choice>() -> Choices {
    Choices {
        values: T::ALL
            .iter()
            .map(|value| PossibleValue::new(value.name()))
            .collect(),
        check: Some(|text| choice::parse::<T>(text).map(drop)),
    }
}

/// Values listed as they are, not checked here.
fn listed(names: impl IntoIterator<Item = &'static str>) -> Choices {
    Choices {
        values: names.into_iter().map(PossibleValue::new).collect(),
        check: None,
    }
}

/// `--protocol`: boxed, bracketed, bare.
pub fn protocol() -> Choices {
    of::<ProtocolKind>()
}

/// `--prompt-style`: auto, chat, template, raw.
pub fn prompt_style() -> Choices {
    of::<PromptStyle>()
}

/// `--view`: full, norules, compact.
pub fn view() -> Choices {
    of::<View>()
}

/// `--policy` of a language model: sample, legal.
pub fn decode() -> Choices {
    of::<Decode>()
}

/// `--feedback`: none, verdict, text.
pub fn feedback() -> Choices {
    of::<Feedback>()
}

/// `--invalid-move-rule`: spiral, textarena, retry:N.
pub fn invalid_move_rule() -> Choices {
    Choices {
        check: Some(|text| text.parse::<InvalidMoveRule>().map(drop)),
        ..listed(InvalidMoveRule::FORMS)
    }
}

/// `--game`: the registry's games (parameters in parentheses, `spar games` lists them).
pub fn game() -> Choices {
    listed(spar_games::registry::GAMES.iter().map(|entry| entry.name))
}

/// `--task`: the task families (`spar tasks` lists their parameters).
pub fn task() -> Choices {
    listed(TASKS.iter().map(|task| task.name))
}

/// A built-in player or a language model (`random`, `alphabeta[:DEPTH]`, `model:PATH`, ...).
pub fn player() -> Choices {
    listed(spar_rl::players::PLAYERS.split(", "))
}

/// `spar play --p0/--p1`: `human`, or a player.
pub fn seat() -> Choices {
    listed(std::iter::once("human").chain(spar_rl::players::PLAYERS.split(", ")))
}

/// `spar lm reversal --arm`: causal, masked, spt, concept.
pub fn reversal_arm() -> Choices {
    Choices {
        check: Some(|text| {
            spar_lm::reversal::Arm::from_name(text)
                .map(drop)
                .map_err(|e| e.to_string())
        }),
        ..listed(spar_lm::reversal::Arm::ALL.iter().map(|arm| arm.name()))
    }
}

/// `spar lm finetune --lora-targets`: a projection, or all-linear.
pub fn lora_target() -> Choices {
    Choices {
        check: Some(|text| {
            if text == "all-linear" || spar_lm::lora::PROJECTIONS.contains(&text) {
                Ok(())
            } else {
                Err(format!(
                    "not a projection; accepted: {}, all-linear",
                    spar_lm::lora::PROJECTIONS.join(", ")
                ))
            }
        }),
        ..listed(spar_lm::lora::PROJECTIONS.into_iter().chain(["all-linear"]))
    }
}

/// `spar lm bench --parts`: train, sample, model.
pub fn bench_part() -> Choices {
    const PARTS: [&str; 3] = ["train", "sample", "model"];
    Choices {
        check: Some(|text| {
            if PARTS.contains(&text) {
                Ok(())
            } else {
                Err(format!("accepted: {}", PARTS.join(", ")))
            }
        }),
        ..listed(PARTS)
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::Cli;

    /// The long names of flags whose values are free (numbers, paths, text, key=value lists,
    /// names the user makes up): every other flag that takes a value must list its values.
    const FREE: &[&str] = &[
        // numbers
        "iterations",
        "report-every",
        "every",
        "games",
        "seed",
        "temperature",
        "max-tokens",
        "remote-timeout",
        "remote-retries",
        "max-turns",
        "playouts",
        "seconds",
        "batch",
        "k",
        "problems",
        "pass-at",
        "attempts",
        "stages",
        "steps",
        "hidden",
        "layers",
        "heads",
        "seq-len",
        "lr",
        "lora-rank",
        "lora-alpha",
        "top-p",
        "top-k",
        "copies",
        "p-original",
        "p-reversed",
        "p-permuted",
        "max-len",
        "port",
        "max-batch",
        "batch-window-ms",
        "max-body-bytes",
        "max-tokens-limit",
        "max-connections",
        "weight-version",
        "clients",
        "requests",
        "warmup",
        "timeout",
        "pairs",
        "fathers",
        "children",
        // paths
        "out",
        "run",
        "transcript",
        "model",
        "lora",
        "save-policy",
        "data",
        "gguf",
        "config",
        "resume",
        "candidates",
        // text and lists of settings
        "set",
        "prompt",
        "stop",
        "ids",
        "text",
        "title",
        "metric",
        "arm",
        "host",
        "url",
        "served-model-name",
        "faults",
        "refine-marker",
        // a secret, and a tracing filter (`info,spar_remote=debug`)
        "api-key",
        "log",
        // a policy file or a name: uniform, FILE or model:PATH
        "policy",
        // booleans with an optional value (true, false)
        "self-verify",
        "role-reversal",
    ];

    fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>, listed: &mut usize) {
        for arg in command.get_arguments() {
            let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
            if !takes_value || arg.is_positional() {
                continue;
            }
            let long = arg.get_long().unwrap_or(arg.get_id().as_str());
            if !arg.get_possible_values().is_empty() {
                *listed += 1;
            } else if !FREE.contains(&long) {
                missing.push(format!("{path} --{long}"));
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing, listed);
        }
    }

    /// Every flag that takes one of a fixed set of values (or of a family of forms) lists
    /// them in its help; a new flag must either list its values or be named free above.
    #[test]
    fn every_choice_valued_flag_lists_its_values() {
        let (mut missing, mut listed) = (Vec::new(), 0);
        let mut command = Cli::command();
        command.build(); // sets each argument's number of values
        walk(&command, "spar", &mut missing, &mut listed);
        assert!(
            missing.is_empty(),
            "flags without listed values: {missing:?}"
        );
        // protocol, prompt style, view x3 commands, policy, feedback, games, tasks, players,
        // invalid-move rules, arms, parts, LoRA targets, solve --algo, completions' shell...
        assert!(listed >= 20, "only {listed} flags list their values");
    }

    /// The listed values are the library's: an unknown one is refused naming the accepted
    /// ones, and a form with a parameter (`retry:3`) is accepted.
    #[test]
    fn values_are_checked_by_the_library_parser() {
        let error =
            Cli::try_parse_from(["spar", "play", "--game", "kuhn", "--view", "ful"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        let text = error.to_string();
        assert!(
            text.contains("\"ful\"") && text.contains("full, norules, compact"),
            "{text}"
        );
        let parsed = Cli::try_parse_from([
            "spar",
            "play",
            "--game",
            "kuhn(hands=5)",
            "--invalid-move-rule",
            "retry:3",
        ]);
        assert!(parsed.is_ok(), "{parsed:?}");
        let error = Cli::try_parse_from([
            "spar",
            "play",
            "--game",
            "kuhn",
            "--invalid-move-rule",
            "retry:x",
        ])
        .unwrap_err();
        assert!(error.to_string().contains("retry:N"), "{error}");
    }
}
