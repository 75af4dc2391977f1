//! End-to-end tests of `spar play` and `spar tournament`: transcripts, human players through
//! stdin (illegal answers and the invalid-move rules), minimax and alpha-beta, and a round
//! robin with Elo.

mod common;

use common::{assert_usage_error, json, spar, spar_with_stdin, temp_path};

#[test]
fn kuhn_play_writes_a_full_transcript() {
    let path = temp_path("kuhn.jsonl");
    let output = spar(&[
        "play",
        "--game",
        "kuhn",
        "--p0",
        "random",
        "--p1",
        "random",
        "--seed",
        "1",
        "--transcript",
        path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one episode, one line");
    let episode: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let turns = episode["turns"].as_array().unwrap();
    assert!(turns.len() >= 2);
    for turn in turns {
        assert!(turn["prompt"].as_str().unwrap().contains("Your card is"));
        assert!(turn["completion"].as_str().unwrap().starts_with("\\boxed{"));
        assert!(turn["role"]["name"].as_str().unwrap().starts_with("player"));
        assert_eq!(turn["outcome"]["kind"], "move");
        assert!(turn["outcome"]["action"].is_u64());
    }
    let returns = episode["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 2);
    let sum: f64 = returns.iter().map(|r| r.as_f64().unwrap()).sum();
    assert_eq!(sum, 0.0);
}

#[test]
fn a_human_kuhn_session_through_stdin_handles_an_illegal_answer() {
    // Player 0 is human; under `textarena` one invalid answer earns a retry.
    let output = spar_with_stdin(
        &[
            "play",
            "--game",
            "kuhn",
            "--p0",
            "human",
            "--p1",
            "random",
            "--seed",
            "3",
            "--invalid-move-rule",
            "textarena",
            "--json",
        ],
        "I raise!\n\\boxed{bet}\n\\boxed{call}\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Legal actions: [check], [bet]"), "{stdout}");
    assert!(stdout.contains("Invalid move by player 0"), "{stdout}");
    assert!(stdout.contains("previous answer was invalid"), "{stdout}");
}

#[test]
fn minimax_never_loses_tictactoe_in_either_seat() {
    let report = json(&spar(&[
        "tournament",
        "--game",
        "tictactoe",
        "--players",
        "minimax,random",
        "--games",
        "200",
        "--json",
    ]));
    for seat in 0..2 {
        let record = &report["by_seat"][0][seat];
        assert_eq!(record["losses"], 0, "minimax lost in seat {seat}: {record}");
        assert!(record["games"].as_u64().unwrap() == 100);
    }
    assert!(
        report["overall"][0]["wins"].as_u64().unwrap() > 150,
        "{report}"
    );
}

#[test]
fn a_scripted_human_tictactoe_game_with_one_illegal_input() {
    // Both seats human; player 1's first answer names an occupied cell, which the
    // `textarena` rule answers with one retry. X then wins on the 2-4-6 diagonal.
    let transcript = temp_path("ttt.jsonl");
    let output = spar_with_stdin(
        &[
            "play",
            "--game",
            "tictactoe",
            "--p0",
            "human",
            "--p1",
            "human",
            "--invalid-move-rule",
            "textarena",
            "--transcript",
            transcript.to_str().unwrap(),
        ],
        "\\boxed{4}\nI take the center \\boxed{4}\n\\boxed{0}\n\\boxed{2}\n[1]\n6\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Invalid move by player 1"), "{stdout}");
    assert!(
        stdout.contains("Game over: returns [1.0, -1.0]"),
        "{stdout}"
    );
    let episode: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&transcript).unwrap().trim()).unwrap();
    assert_eq!(episode["invalid_moves"], serde_json::json!([0, 1]));
    assert_eq!(episode["turns"].as_array().unwrap().len(), 6);
    assert_eq!(episode["turns"][1]["outcome"]["kind"], "invalid");
}

#[test]
fn the_spiral_rule_ends_a_human_game_at_the_first_illegal_input() {
    let output = spar_with_stdin(
        &[
            "play",
            "--game",
            "tictactoe",
            "--p0",
            "human",
            "--p1",
            "random",
        ],
        "\\boxed{center}\n",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Game over: returns [-1.5, 0.5]"),
        "{stdout}"
    );
}

#[test]
fn minimax_is_refused_where_the_tree_is_too_large_and_alphabeta_plays() {
    assert_usage_error(
        &spar(&[
            "tournament",
            "--game",
            "connect_four",
            "--players",
            "minimax,random",
        ]),
        &["alphabeta"],
    );
    assert_usage_error(
        &spar(&[
            "tournament",
            "--game",
            "kuhn",
            "--players",
            "minimax,random",
        ]),
        &["minimax"],
    );
    let report = json(&spar(&[
        "tournament",
        "--game",
        "connect_four",
        "--players",
        "alphabeta:2,random",
        "--games",
        "10",
        "--json",
    ]));
    assert!(
        report["overall"][0]["wins"].as_u64().unwrap() >= 8,
        "{report}"
    );
}

#[test]
fn three_players_play_a_round_robin_with_elo() {
    let report = json(&spar(&[
        "tournament",
        "--game",
        "tictactoe",
        "--players",
        "minimax,alphabeta:1,random",
        "--games",
        "20",
        "--json",
    ]));
    let elo: Vec<f64> = report["elo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect();
    assert_eq!(elo.len(), 3);
    assert!(elo[0] > elo[2], "minimax outrates random: {elo:?}");
    assert_eq!(report["matches"].as_array().unwrap().len(), 3);
}
