//! Alpha-beta on Connect Four: a game far too large for full minimax, where a shallow
//! search with the open-window heuristic must still dominate random play, and where exact
//! evaluation refuses politely instead of running out of memory.

use spar_core::{Game, UniformRandom};
use spar_eval::{head_to_head, AlphaBeta, Error, GameTree};
use spar_games::connect_four::{heuristic, ConnectFour};

#[test]
fn alpha_beta_with_the_heuristic_beats_random_play() {
    let game = ConnectFour::new();
    let search = AlphaBeta::new(game.info(), 3, heuristic).unwrap();
    let series = head_to_head(&game, &search, &UniformRandom, 20, 5).unwrap();
    assert_eq!(series.overall[0].losses, 0, "{series:?}");
    assert!(series.overall[0].wins >= 19, "{series:?}");
    assert_eq!(
        series,
        head_to_head(&game, &search, &UniformRandom, 20, 5).unwrap()
    );
}

#[test]
fn the_tree_is_refused_beyond_the_node_limit() {
    let error = GameTree::build_with_limit(&ConnectFour::new(), 10_000).unwrap_err();
    assert!(
        matches!(error, Error::TreeTooLarge { limit: 10_000, .. }),
        "{error}"
    );
}
