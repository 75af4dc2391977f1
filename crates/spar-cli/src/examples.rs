//! The examples at the end of each command's `--help`. A test parses every example line with
//! the command-line parser and checks that the configs it names are shipped, so an example
//! cannot fall out of date with the flags.

/// `spar games`.
pub const GAMES: &str = "\
Examples:
  spar games
  spar games --json";

/// `spar tasks`.
pub const TASKS: &str = "\
Examples:
  spar tasks
  spar tasks --json";

/// `spar exploitability`.
pub const EXPLOITABILITY: &str = "\
Examples:
  spar exploitability --game kuhn --policy uniform
  spar exploitability --game leduc --policy leduc-cfr.json
  spar exploitability --game kuhn --policy model:runs/kuhn/checkpoints/step-000300 --json";

/// `spar solve`.
pub const SOLVE: &str = "\
Examples:
  spar solve --game kuhn --algo cfr+ --iterations 1000
  spar solve --game leduc --algo cfr --iterations 1000 --out leduc-cfr.json";

/// `spar tournament`.
pub const TOURNAMENT: &str = "\
Examples:
  spar tournament --game tictactoe --players minimax,random --games 200
  spar tournament --game connect_four --players alphabeta:2,alphabeta:4,random --games 20
  spar tournament --run runs/kuhn --every 10 --players cfr+,random --games 200";

/// `spar play`.
pub const PLAY: &str = "\
Examples:
  spar play --game tictactoe --p0 human --p1 minimax
  spar play --game kuhn --p0 random --p1 random --games 10 --transcript kuhn.jsonl
  spar play --game 'kuhn(hands=5)' --view compact --protocol bracketed";

/// `spar bench`.
pub const BENCH: &str = "\
Examples:
  spar bench --game leduc --seconds 5 --json
  spar bench serve --url http://127.0.0.1:8000/v1 --clients 8 --requests 1024";

/// `spar bench serve`.
pub const BENCH_SERVE: &str = "\
Examples:
  spar bench serve --url http://127.0.0.1:8000/v1
  spar bench serve --url http://127.0.0.1:8000/v1 --clients 16 --requests 1024 --max-tokens 64 --json";

/// `spar lm`.
pub const LM: &str = "\
Examples:
  spar lm sample --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt 'The capital of France is'
  spar lm info --model models/SmolLM2-135M-Instruct.Q4_1.gguf
  spar lm pretrain --data corpus.txt --out models/tiny --steps 500";

/// `spar lm sample`.
pub const LM_SAMPLE: &str = "\
Examples:
  spar lm sample --model models/SmolLM2-135M-Instruct.Q4_1.gguf --prompt 'The capital of France is'
  spar lm sample --model runs/kuhn/checkpoints/step-000300 --prompt 'Hello' --chat --temperature 0.7";

/// `spar lm pretrain`.
pub const LM_PRETRAIN: &str = "\
Examples:
  spar lm pretrain --data corpus.txt --out models/tiny
  spar lm pretrain --data corpus.txt --out models/small --hidden 256 --layers 6 --steps 2000";

/// `spar lm finetune`.
pub const LM_FINETUNE: &str = "\
Examples:
  spar lm finetune --model models/tiny --data notes.txt --out models/tiny-notes
  spar lm finetune --model models/SmolLM2-135M-Instruct.Q4_1.gguf --data notes.txt --out adapters/notes --lora-rank 8 --lora-targets all-linear";

/// `spar lm info`.
pub const LM_INFO: &str = "\
Examples:
  spar lm info --model models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// `spar lm logits`.
pub const LM_LOGITS: &str = "\
Examples:
  spar lm logits --model models/tiny --prompt 'The capital of France is'
  spar lm logits --model models/tiny --ids 1,2,3";

/// `spar lm export`.
pub const LM_EXPORT: &str = "\
Examples:
  spar lm export --gguf models/SmolLM2-135M-Instruct.Q4_1.gguf --out models/smollm2-f32";

/// `spar lm merge`.
pub const LM_MERGE: &str = "\
Examples:
  spar lm merge --model models/SmolLM2-135M-Instruct.Q4_1.gguf --lora adapters/notes --out models/smollm2-notes";

/// `spar lm bench`.
pub const LM_BENCH: &str = "\
Examples:
  spar lm bench
  spar lm bench --model models/SmolLM2-135M-Instruct.Q4_1.gguf --parts sample,model";

/// `spar lm data` and `spar lm data reversal`.
pub const LM_DATA: &str = "\
Examples:
  spar lm data reversal --out data/reversal --seed 1";

/// `spar lm reversal`.
pub const LM_REVERSAL: &str = "\
Examples:
  spar lm reversal --config configs/reversal/causal.toml --seed 0
  spar lm reversal --arm spt --steps 300 --out runs/reversal/spt-quick";

/// `spar lm spt`.
pub const LM_SPT: &str = "\
Examples:
  spar lm spt --data data/reversal/train-units.txt --out data/reversal/train-spt.txt --copies 3";

/// `spar lm infill`.
pub const LM_INFILL: &str = "\
Examples:
  spar lm infill --model runs/reversal/masked-seed0/model --text 'The father of [MASK] is Amelt.'";

/// `spar train` (the accepted values of config keys follow).
pub const TRAIN: &str = "\
Examples:
  spar train configs/kuhn-spiral-tiny.toml
  spar train configs/tasks/arithmetic-grpo-tiny.toml --out runs/arith --set algorithm.estimator=rloo
  spar train configs/selfcorrect/score.toml --set run.steps=20 --set run.seed=1
  spar train --resume runs/arith --set run.steps=100";

/// `spar eval`.
pub const EVAL: &str = "\
Examples:
  spar eval --model runs/kuhn/checkpoints/step-000300 --vs cfr+ --games 500
  spar eval --model runs/kuhn/checkpoints/step-000300 --vs random --policy legal --json
  spar eval --model runs/arith/checkpoints/step-000060 --k 16 --problems 64
  spar eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --task 'countdown(numbers=3)' --k 8
  spar eval --model runs/score/checkpoints/step-000040 --task arithmetic --attempts 2 --feedback text --json";

/// `spar report`.
pub const REPORT: &str = "\
Examples:
  spar report runs/kuhn";

/// `spar compare`.
pub const COMPARE: &str = "\
Examples:
  spar compare --arm rae=runs/rae-s0,runs/rae-s1 --arm reinforce=runs/reinforce --metric eval/kuhn/exploitability --out report
  spar compare --title 'SCoRe vs naive' --arm score=runs/x/score --arm naive=runs/x/naive --metric eval/arithmetic/delta --out report";

/// `spar serve`.
pub const SERVE: &str = "\
Examples:
  spar serve --model models/SmolLM2-135M-Instruct.Q4_1.gguf --served-model-name smollm2
  spar serve --model runs/kuhn/checkpoints/step-000300 --port 8000 --lora kuhn=adapters/kuhn
  spar serve --model models/tiny --host 0.0.0.0 --api-key \"$SPAR_API_KEY\" --log debug";

/// `spar completions`.
pub const COMPLETIONS: &str = "\
Examples:
  spar completions bash > ~/.local/share/bash-completion/completions/spar
  spar completions zsh > ~/.zfunc/_spar
  spar completions fish > ~/.config/fish/completions/spar.fish";

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::Cli;

    /// Every command (and `spar lm` subcommand) ends its help with examples; each example
    /// parses as that command, and each config it names is shipped.
    #[test]
    fn every_command_has_examples_that_parse() {
        let mut command = Cli::command();
        command.build();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut checked = 0;
        let mut stack: Vec<(Vec<String>, &clap::Command)> = command
            .get_subcommands()
            .map(|sub| (vec![sub.get_name().to_string()], sub))
            .collect();
        while let Some((path, sub)) = stack.pop() {
            if sub.get_name() == "help" {
                continue;
            }
            let help = sub
                .get_after_help()
                .map(ToString::to_string)
                .unwrap_or_default();
            let examples: Vec<&str> = help
                .lines()
                .skip_while(|line| *line != "Examples:")
                .skip(1)
                .take_while(|line| line.starts_with("  spar "))
                .collect();
            assert!(
                !examples.is_empty(),
                "spar {} has no examples",
                path.join(" ")
            );
            for example in examples {
                // The command line up to a shell redirection.
                let line = example.trim().split(" > ").next().unwrap();
                let words = shlex::split(line).expect("balanced quotes");
                assert_eq!(words[1..=path.len()], path[..], "{example}");
                if let Err(error) = Cli::try_parse_from(&words) {
                    panic!("{example}\n{error}");
                }
                for word in words.iter().filter(|w| w.starts_with("configs/")) {
                    assert!(root.join(word).exists(), "{example}: no {word}");
                }
                checked += 1;
            }
            for child in sub.get_subcommands() {
                let mut child_path = path.clone();
                child_path.push(child.get_name().to_string());
                stack.push((child_path, child));
            }
        }
        assert!(checked >= 40, "only {checked} examples");
    }
}
