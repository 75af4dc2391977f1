//! `spar completions`: the script a shell loads, checked by loading it in bash and asking it
//! to complete, and the listed values of choice-valued flags in `--help` (docs/cli.md).

mod support;

use std::process::Command;

use support::{assert_usage_error, spar, stderr, succeeded};

/// What bash's completion offers after `words` (the word under the cursor empty), having loaded
/// `spar completions bash`.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let script = spar(&["completions", "bash"]);
    succeeded(&script, "spar completions bash");
    let dir = support::temp_dir(&format!("completions-{}", words.join("-")));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spar.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{file}'; COMP_WORDS=({words} ''); COMP_CWORD={cword}; \
         COMP_LINE='{line} '; COMP_POINT=${{#COMP_LINE}}; _spar spar '' '{prev}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file = file.display(),
        words = quoted.join(" "),
        cword = words.len(),
        line = words.join(" "),
        prev = words.last().unwrap(),
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::remove_dir_all(&dir).unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_the_values_of_choice_flags() {
    let commands = bash_completes(&["spar"]);
    for command in ["train", "eval", "exploitability", "serve", "completions"] {
        assert!(commands.contains(&command.to_string()), "{commands:?}");
    }
    assert_eq!(
        bash_completes(&["spar", "play", "--view"]),
        ["full", "norules", "compact"]
    );
    assert_eq!(
        bash_completes(&["spar", "eval", "--feedback"]),
        ["none", "verdict", "text"]
    );
    let games = bash_completes(&["spar", "solve", "--game"]);
    assert!(
        games.contains(&"kuhn".to_string()) && games.contains(&"leduc".to_string()),
        "{games:?}"
    );
}

#[test]
fn help_lists_values_and_examples_and_bad_values_exit_2() {
    let help = spar(&["eval", "--help"]);
    succeeded(&help, "spar eval --help");
    let text = String::from_utf8(help.stdout).unwrap();
    for expected in [
        "[possible values: sample, legal]",
        "[possible values: auto, chat, template, raw]",
        "[possible values: none, verdict, text]",
        "Examples:\n  spar eval --model",
    ] {
        assert!(
            text.contains(expected),
            "spar eval --help lacks {expected:?}"
        );
    }
    assert_usage_error(
        &spar(&["eval", "--model", "m", "--prompt-style", "chatml"]),
        &["\"chatml\"", "auto, chat, template, raw"],
    );
    assert_usage_error(&spar(&["completions", "tcsh"]), &["bash", "zsh", "fish"]);
}
