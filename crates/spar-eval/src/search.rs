//! Perfect-information search: full minimax and depth-limited alpha-beta.
//!
//! Both apply to two-player zero-sum (or constant-sum) games of perfect information without
//! chance (TicTacToe, Connect Four) and refuse other games when constructed. Values are
//! player 0's return; player 0 maximises it, player 1 minimises it (in a constant-sum game
//! that is the same as maximising its own return). Both players are deterministic and break
//! ties by the lowest action, so a match between them is reproducible.
//!
//! * [`Minimax`] searches to the end of the game, memoising values on the state's `Display`
//!   string together with whose turn it is (the full state: nothing is hidden). Exact, and
//!   only feasible when the number of distinct positions is small (TicTacToe: 5,478).
//! * [`AlphaBeta`] searches `depth` plies and scores the frontier with a heuristic
//!   `evaluate(state, player)`, the heuristic value of `state` for `player`, which should lie
//!   within the game's `[min_utility, max_utility]` so that proven wins outrank it.
//!
//! References: Knuth and Moore, "An analysis of alpha-beta pruning", 1975; OpenSpiel
//! `open_spiel/python/algorithms/minimax.py`.

use std::collections::HashMap;
use std::sync::Mutex;

use spar_core::{Action, Game, GameInfo, Information, Player, Policy, State, Turn};

use crate::error::{Error, Result};

/// Checks that search applies to the game (two players, zero/constant sum, perfect
/// information, no chance).
pub fn check_perfect_information(info: &GameInfo, what: &'static str) -> Result<()> {
    let reason = if info.num_players != 2 {
        Some(format!("it has {} players", info.num_players))
    } else if !info.is_two_player_zero_sum() {
        Some("it is general-sum".to_string())
    } else if info.information != Information::Perfect {
        Some("it has imperfect information".to_string())
    } else if info.has_chance {
        Some("it has chance nodes".to_string())
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::NeedsPerfectInformation {
            game: info.spec.clone(),
            what,
            reason,
        }),
    }
}

/// Full-depth minimax with a transposition table (see the module doc).
#[derive(Debug)]
pub struct Minimax {
    cache: Mutex<HashMap<String, f64>>,
}

impl Minimax {
    /// A minimax player for `info`'s game; fails unless the game is two-player zero-sum
    /// with perfect information and no chance.
    pub fn new(info: &GameInfo) -> Result<Self> {
        check_perfect_information(info, "minimax")?;
        Ok(Self {
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Player 0's return under optimal play from `state`.
    pub fn value<S: State>(&self, state: &S) -> f64 {
        let mut cache = self.cache.lock().expect("the cache lock is never poisoned");
        minimax(state, &mut cache)
    }

    /// Number of positions memoised so far.
    pub fn positions(&self) -> usize {
        self.cache
            .lock()
            .expect("the cache lock is never poisoned")
            .len()
    }
}

fn minimax<S: State>(state: &S, cache: &mut HashMap<String, f64>) -> f64 {
    let turn = state.turn();
    let mover = match turn {
        Turn::Terminal => return state.returns()[0],
        Turn::Player(player) => player,
        Turn::Chance => unreachable!("minimax is refused for games with chance"),
    };
    let key = format!("{state}\u{1f}{mover}");
    if let Some(&value) = cache.get(&key) {
        return value;
    }
    let values = state
        .legal_actions()
        .into_iter()
        .map(|action| minimax(&state.child(action), cache));
    let value = if mover == 0 {
        values.fold(f64::NEG_INFINITY, f64::max)
    } else {
        values.fold(f64::INFINITY, f64::min)
    };
    cache.insert(key, value);
    value
}

impl<S: State> Policy<S> for Minimax {
    fn name(&self) -> String {
        "minimax".to_string()
    }

    fn action_probabilities(&self, state: &S) -> Vec<(Action, f64)> {
        let mover = state
            .current_player()
            .expect("action_probabilities is called at decision nodes");
        let mut cache = self.cache.lock().expect("the cache lock is never poisoned");
        let mut best: Option<(Action, f64)> = None;
        for action in state.legal_actions() {
            let value = minimax(&state.child(action), &mut cache);
            let better = match best {
                None => true,
                Some((_, best_value)) if mover == 0 => value > best_value,
                Some((_, best_value)) => value < best_value,
            };
            if better {
                best = Some((action, value));
            }
        }
        vec![(best.expect("a decision node has legal actions").0, 1.0)]
    }
}

/// Player 0's return under optimal play by both players, by full minimax from the initial
/// state (TicTacToe: 0, a draw).
pub fn minimax_value<G: Game>(game: &G) -> Result<f64> {
    Ok(Minimax::new(game.info())?.value(&game.new_initial_state()))
}

/// A heuristic: the estimated return of `state` for `player`.
pub type Evaluate<S> = fn(&S, Player) -> f64;

/// Depth-limited alpha-beta with a heuristic at the frontier (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct AlphaBeta<S> {
    depth: usize,
    evaluate: Evaluate<S>,
}

impl<S: State> AlphaBeta<S> {
    /// An alpha-beta player searching `depth` plies (at least 1) and scoring unfinished
    /// positions with `evaluate`; fails unless the game is two-player zero-sum with perfect
    /// information and no chance.
    pub fn new(info: &GameInfo, depth: usize, evaluate: Evaluate<S>) -> Result<Self> {
        check_perfect_information(info, "alpha-beta")?;
        if depth == 0 {
            return Err(Error::BadInput(
                "alpha-beta depth must be at least 1".to_string(),
            ));
        }
        Ok(Self { depth, evaluate })
    }

    /// The search depth in plies.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The value of `state` for `player` searched `depth` plies deep within the window
    /// `(alpha, beta)` (fail-hard: results outside the window are clamped to it).
    pub fn search(&self, state: &S, depth: usize, player: Player, alpha: f64, beta: f64) -> f64 {
        let mover = match state.turn() {
            Turn::Terminal => return state.returns()[player],
            Turn::Player(mover) => mover,
            Turn::Chance => unreachable!("alpha-beta is refused for games with chance"),
        };
        if depth == 0 {
            return (self.evaluate)(state, player);
        }
        let (mut alpha, mut beta) = (alpha, beta);
        if mover == player {
            for action in state.legal_actions() {
                let value = self.search(&state.child(action), depth - 1, player, alpha, beta);
                alpha = alpha.max(value);
                if alpha >= beta {
                    return beta;
                }
            }
            alpha
        } else {
            for action in state.legal_actions() {
                let value = self.search(&state.child(action), depth - 1, player, alpha, beta);
                beta = beta.min(value);
                if alpha >= beta {
                    return alpha;
                }
            }
            beta
        }
    }
}

impl<S: State> Policy<S> for AlphaBeta<S> {
    fn name(&self) -> String {
        format!("alphabeta(depth={})", self.depth)
    }

    fn action_probabilities(&self, state: &S) -> Vec<(Action, f64)> {
        let player = state
            .current_player()
            .expect("action_probabilities is called at decision nodes");
        let mut best: Option<(Action, f64)> = None;
        for action in state.legal_actions() {
            let alpha = best.map_or(f64::NEG_INFINITY, |(_, value)| value);
            let value = self.search(
                &state.child(action),
                self.depth - 1,
                player,
                alpha,
                f64::INFINITY,
            );
            // Strictly better only: ties keep the lowest action.
            if best.is_none_or(|(_, best_value)| value > best_value) {
                best = Some((action, value));
            }
        }
        vec![(best.expect("a decision node has legal actions").0, 1.0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_games::kuhn::KuhnPoker;

    /// Nim with one heap: take 1 or 2 stones; whoever takes the last stone wins. A tiny
    /// perfect-information game whose values are known: the player to move loses exactly
    /// when the heap is a multiple of 3.
    #[derive(Debug)]
    struct Nim {
        info: GameInfo,
        heap: usize,
    }

    #[derive(Debug, Clone)]
    struct NimState {
        heap: usize,
        history: Vec<Action>,
    }

    impl Nim {
        fn new(heap: usize) -> Self {
            Self {
                info: GameInfo {
                    name: "nim".into(),
                    long_name: "Nim".into(),
                    spec: "nim".into(),
                    num_players: 2,
                    utility: spar_core::Utility::ZeroSum,
                    information: Information::Perfect,
                    has_chance: false,
                    min_utility: -1.0,
                    max_utility: 1.0,
                    num_distinct_actions: 2,
                    max_chance_outcomes: 0,
                    max_game_length: heap,
                },
                heap,
            }
        }
    }

    impl Game for Nim {
        type State = NimState;
        fn info(&self) -> &GameInfo {
            &self.info
        }
        fn new_initial_state(&self) -> NimState {
            NimState {
                heap: self.heap,
                history: Vec::new(),
            }
        }
    }

    impl std::fmt::Display for NimState {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "heap {}", self.heap)
        }
    }

    impl State for NimState {
        fn turn(&self) -> Turn {
            if self.heap == 0 {
                Turn::Terminal
            } else {
                Turn::Player(self.history.len() % 2)
            }
        }
        fn legal_actions(&self) -> Vec<Action> {
            // Action 0 takes one stone, action 1 takes two.
            match self.heap {
                0 => vec![],
                1 => vec![0],
                _ => vec![0, 1],
            }
        }
        fn chance_outcomes(&self) -> Vec<(Action, f64)> {
            Vec::new()
        }
        fn apply_action(&mut self, action: Action) {
            self.heap -= action + 1;
            self.history.push(action);
        }
        fn returns(&self) -> Vec<f64> {
            if self.heap > 0 {
                return vec![0.0, 0.0];
            }
            // The player who just moved took the last stone.
            let winner = (self.history.len() + 1) % 2;
            let mut returns = vec![-1.0, -1.0];
            returns[winner] = 1.0;
            returns
        }
        fn information_state_string(&self, _player: Player) -> String {
            format!("{:?}", self.history)
        }
        fn action_to_string(&self, _player: Player, action: Action) -> String {
            format!("take{}", action + 1)
        }
        fn history(&self) -> &[Action] {
            &self.history
        }
    }

    #[test]
    fn minimax_solves_nim() {
        for heap in 1..=12 {
            let value = minimax_value(&Nim::new(heap)).unwrap();
            let expected = if heap % 3 == 0 { -1.0 } else { 1.0 };
            assert_eq!(value, expected, "heap {heap}");
        }
        // The winning move leaves a multiple of 3: from 7 take 1, from 8 take 2.
        let minimax = Minimax::new(Nim::new(7).info()).unwrap();
        assert_eq!(
            minimax.action_probabilities(&Nim::new(7).new_initial_state()),
            vec![(0, 1.0)]
        );
        assert_eq!(
            minimax.action_probabilities(&Nim::new(8).new_initial_state()),
            vec![(1, 1.0)]
        );
        // Lost positions: ties between equally lost moves go to the lowest action.
        assert_eq!(
            minimax.action_probabilities(&Nim::new(9).new_initial_state()),
            vec![(0, 1.0)]
        );
        // Memoisation: at most one entry per (non-empty heap, mover) among heaps 1..=9.
        assert!(
            minimax.positions() <= 18,
            "{} positions",
            minimax.positions()
        );
    }

    #[test]
    fn alpha_beta_with_enough_depth_agrees_with_minimax() {
        let zero: Evaluate<NimState> = |_, _| 0.0;
        for heap in 1..=10 {
            let game = Nim::new(heap);
            let deep = AlphaBeta::new(game.info(), heap, zero).unwrap();
            let root = game.new_initial_state();
            let value = deep.search(&root, heap, 0, f64::NEG_INFINITY, f64::INFINITY);
            assert_eq!(value, minimax_value(&game).unwrap(), "heap {heap}");
            let minimax = Minimax::new(game.info()).unwrap();
            if heap % 3 != 0 {
                assert_eq!(
                    deep.action_probabilities(&root),
                    minimax.action_probabilities(&root)
                );
            }
        }
        // Depth 1 sees only the heuristic unless a move ends the game.
        let shallow = AlphaBeta::new(Nim::new(2).info(), 1, zero).unwrap();
        assert_eq!(
            shallow.action_probabilities(&Nim::new(2).new_initial_state()),
            vec![(1, 1.0)]
        );
        assert_eq!(
            shallow.action_probabilities(&Nim::new(4).new_initial_state()),
            vec![(0, 1.0)]
        );
    }

    #[test]
    fn search_refuses_games_with_chance_or_hidden_information() {
        let error = Minimax::new(KuhnPoker::new().info())
            .unwrap_err()
            .to_string();
        assert!(error.contains("imperfect information"), "{error}");
        let evaluate: Evaluate<spar_games::kuhn::KuhnState> = |_, _| 0.0;
        assert!(AlphaBeta::new(KuhnPoker::new().info(), 2, evaluate).is_err());
        assert!(AlphaBeta::new(Nim::new(3).info(), 0, |_: &NimState, _| 0.0).is_err());
    }
}
