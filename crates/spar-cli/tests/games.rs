//! End-to-end tests of `spar games`, `spar exploitability` and `spar solve`: known values
//! (OpenSpiel's) from the command line, a solved policy through a file, and the exit-2 errors
//! of bad games, players and policy files.

mod common;

use common::{assert_usage_error, json, spar, temp_path};

#[test]
fn kuhn_uniform_nash_conv_is_eleven_twelfths() {
    // OpenSpiel exploitability_test.py: 11/12.
    let report = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        "uniform",
        "--json",
    ]));
    let nash_conv = report["nash_conv"].as_f64().unwrap();
    assert!((nash_conv - 11.0 / 12.0).abs() < 1e-6, "{report}");
    assert!((report["exploitability"].as_f64().unwrap() - 11.0 / 24.0).abs() < 1e-6);
}

#[test]
fn kuhn_cfr_plus_200_iterations_is_below_a_thousandth() {
    let report = json(&spar(&[
        "solve",
        "--game",
        "kuhn",
        "--algo",
        "cfr+",
        "--iterations",
        "200",
        "--json",
    ]));
    assert!(
        report["exploitability"].as_f64().unwrap() <= 0.001,
        "{report}"
    );
    assert_eq!(report["iterations"], 200);
}

#[test]
fn solved_policy_round_trips_through_a_file() {
    let path = temp_path("kuhn-cfr.json");
    let solved = json(&spar(&[
        "solve",
        "--game",
        "kuhn",
        "--algo",
        "cfr",
        "--iterations",
        "50",
        "--out",
        path.to_str().unwrap(),
        "--json",
    ]));
    let evaluated = json(&spar(&[
        "exploitability",
        "--game",
        "kuhn",
        "--policy",
        path.to_str().unwrap(),
        "--json",
    ]));
    let (a, b) = (
        solved["nash_conv"].as_f64().unwrap(),
        evaluated["nash_conv"].as_f64().unwrap(),
    );
    assert!(
        (a - b).abs() < 1e-9,
        "solve said {a}, the file evaluates to {b}"
    );
    // The file also plays in a tournament.
    let spec = format!("tabular:{}", path.display());
    let report = json(&spar(&[
        "tournament",
        "--game",
        "kuhn",
        "--players",
        &format!("{spec},random"),
        "--games",
        "40",
        "--json",
    ]));
    assert_eq!(report["games"], 40);
}

#[test]
fn leduc_uniform_nash_conv_matches_openspiel() {
    // OpenSpiel exploitability_test.py: 4.747222222222222.
    let report = json(&spar(&[
        "exploitability",
        "--game",
        "leduc",
        "--policy",
        "uniform",
        "--json",
    ]));
    assert!(
        (report["nash_conv"].as_f64().unwrap() - 4.7472).abs() < 1e-4,
        "{report}"
    );
}

#[test]
fn leduc_cfr_1000_iterations_reaches_openspiels_exploitability() {
    // OpenSpiel's CFR trace on Leduc: 0.0118 at 999 iterations (PR #197); the issue asks
    // for <= 0.015.
    let report = json(&spar(&[
        "solve",
        "--game",
        "leduc",
        "--algo",
        "cfr",
        "--iterations",
        "1000",
        "--report-every",
        "0",
        "--json",
    ]));
    let exploitability = report["exploitability"].as_f64().unwrap();
    assert!(exploitability <= 0.015, "{report}");
    assert!((exploitability - 0.0118).abs() < 1e-4, "{report}");
}

#[test]
fn games_lists_every_game() {
    let listing = json(&spar(&["games", "--json"]));
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for name in ["kuhn", "tictactoe", "connect_four", "negotiation"] {
        assert!(names.contains(&name), "{names:?}");
    }
}

#[test]
fn bad_input_exits_with_code_two_and_names_the_problem() {
    assert_usage_error(
        &spar(&["exploitability", "--game", "chess", "--policy", "uniform"]),
        &["unknown game \"chess\"", "known games: kuhn"],
    );
    assert_usage_error(
        &spar(&["tournament", "--game", "kuhn", "--players", "wizard,random"]),
        &["unknown player \"wizard\"", "accepted: random"],
    );
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn",
            "--policy",
            "/no/such/file.json",
        ]),
        &["/no/such/file.json", "uniform"],
    );
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn(hands",
            "--policy",
            "uniform",
        ]),
        &["malformed game specification"],
    );
    let bad = temp_path("bad.json");
    std::fs::write(&bad, "{\"policy\": {\"0\": [[0, 0.5], [1, 0.6]]}}").unwrap();
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn",
            "--policy",
            bad.to_str().unwrap(),
        ]),
        &["sum to"],
    );
    std::fs::write(&bad, "{not json").unwrap();
    assert_usage_error(
        &spar(&[
            "exploitability",
            "--game",
            "kuhn",
            "--policy",
            bad.to_str().unwrap(),
        ]),
        &["invalid JSON"],
    );
    assert_usage_error(
        &spar(&[
            "play",
            "--game",
            "kuhn",
            "--p0",
            "random",
            "--invalid-move-rule",
            "lenient",
        ]),
        &["spiral, textarena, retry:N"],
    );
}
