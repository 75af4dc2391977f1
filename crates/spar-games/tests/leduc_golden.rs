//! Every node of Leduc Hold'em against OpenSpiel 2.0.2: legal actions, whose turn, returns
//! and both players' information-state strings. The golden file was written by
//! `tests/golden/leduc_golden.py` (pyspiel 2.0.2) and gzipped.

use std::collections::HashMap;
use std::io::Read as _;

use spar_core::{Game, State, Turn};
use spar_games::leduc::{LeducPoker, LeducState};

struct Golden {
    player: i64,
    legal: String,
    returns: String,
    info: [String; 2],
}

fn golden() -> HashMap<String, Golden> {
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/leduc.tsv.gz"
    ))
    .expect("the golden file exists");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("the golden file is gzipped text");
    text.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 6, "{line}");
            (
                fields[0].to_string(),
                Golden {
                    player: fields[1].parse().unwrap(),
                    legal: fields[2].to_string(),
                    returns: fields[3].to_string(),
                    info: [fields[4].to_string(), fields[5].to_string()],
                },
            )
        })
        .collect()
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn walk(state: &LeducState, golden: &HashMap<String, Golden>, visited: &mut usize) {
    let key = join(state.history());
    let expected = golden
        .get(&key)
        .unwrap_or_else(|| panic!("history {key:?} is not in OpenSpiel's tree"));
    *visited += 1;
    let player = match state.turn() {
        Turn::Chance => -1,
        Turn::Terminal => -4,
        Turn::Player(p) => p as i64,
    };
    assert_eq!(player, expected.player, "turn at {key:?}");
    assert_eq!(
        join(state.legal_actions()),
        expected.legal,
        "legal at {key:?}"
    );
    if state.is_terminal() {
        assert_eq!(
            join(state.returns()),
            expected.returns,
            "returns at {key:?}"
        );
    }
    for p in 0..2 {
        assert_eq!(
            state.information_state_string(p),
            expected.info[p],
            "player {p}'s information state at {key:?}"
        );
    }
    for action in state.legal_actions() {
        walk(&state.child(action), golden, visited);
    }
}

#[test]
fn leduc_matches_openspiel_everywhere() {
    let golden = golden();
    assert_eq!(golden.len(), 9457);
    let mut visited = 0;
    walk(
        &LeducPoker::new().new_initial_state(),
        &golden,
        &mut visited,
    );
    assert_eq!(
        visited,
        golden.len(),
        "spar's tree has the same 9,457 histories"
    );
}
