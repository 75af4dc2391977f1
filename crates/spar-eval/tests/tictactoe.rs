//! Known answers on TicTacToe: the game value, minimax against random play, and exact
//! NashConv values computed with OpenSpiel 2.0.2 (`exploitability.nash_conv` and
//! `expected_game_score.policy_value` on `tic_tac_toe`).

use spar_core::{Game, Policy, UniformRandom};
use spar_eval::{
    expected_returns, head_to_head, minimax_value, nash_conv, AlphaBeta, Evaluate, GameTree,
    Minimax,
};
use spar_games::tictactoe::{TicTacToe, TicTacToeState};

#[test]
fn minimax_value_is_a_draw() {
    // TicTacToe is a draw under optimal play (OpenSpiel minimax_test.py: value 0).
    assert_eq!(minimax_value(&TicTacToe::new()).unwrap(), 0.0);
}

#[test]
fn minimax_never_loses_to_random() {
    let game = TicTacToe::new();
    let minimax = Minimax::new(game.info()).unwrap();
    let series = head_to_head(&game, &minimax, &UniformRandom, 400, 17).unwrap();
    assert_eq!(series.overall[0].losses, 0, "{series:?}");
    // Random play cannot hold a perfect player to many draws, with either seat.
    assert!(series.overall[0].win_rate > 0.7, "{series:?}");
    // 5,478 reachable positions; each is memoised at most once.
    assert!(minimax.positions() <= 5478, "{}", minimax.positions());
}

#[test]
fn uniform_random_values_and_nash_conv_match_openspiel() {
    // OpenSpiel 2.0.2: policy_value = [0.2968254, -0.2968254], nash_conv =
    // 1.9196593915343914. The tree has 549,946 nodes (tic_tac_toe.cc's documented size).
    let game = TicTacToe::new();
    let tree = GameTree::build(&game).unwrap();
    assert_eq!(tree.num_nodes(), 549_946);
    let values = expected_returns(&game, &UniformRandom).unwrap();
    assert!((values[0] - 0.2968254).abs() < 1e-7, "{values:?}");
    let result = nash_conv(&game, &UniformRandom).unwrap();
    assert!(
        (result.nash_conv - 1.9196593915343914).abs() < 1e-9,
        "{result:?}"
    );
}

#[test]
fn minimax_is_an_equilibrium() {
    // A subgame-perfect minimax strategy for both players: no deviation gains, NashConv 0.
    let game = TicTacToe::new();
    let minimax = Minimax::new(game.info()).unwrap();
    let result = nash_conv(&game, &minimax).unwrap();
    assert_eq!(result.nash_conv, 0.0, "{result:?}");
}

#[test]
fn shallow_alpha_beta_never_beats_minimax() {
    let game = TicTacToe::new();
    let zero: Evaluate<TicTacToeState> = |_, _| 0.0;
    let shallow = AlphaBeta::new(game.info(), 2, zero).unwrap();
    let minimax = Minimax::new(game.info()).unwrap();
    let series = head_to_head(&game, &shallow, &minimax, 20, 3).unwrap();
    assert_eq!(series.overall[0].wins, 0, "{series:?}");
    // With the full depth, alpha-beta plays like minimax: every game a draw.
    let deep = AlphaBeta::new(game.info(), 9, zero).unwrap();
    let series = head_to_head(&game, &deep, &minimax, 4, 3).unwrap();
    assert_eq!(series.overall[0].draws, 4, "{series:?}");
    assert_eq!(Policy::<TicTacToeState>::name(&deep), "alphabeta(depth=9)");
}
