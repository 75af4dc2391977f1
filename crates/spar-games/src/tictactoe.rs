//! TicTacToe, exactly as OpenSpiel's `tic_tac_toe`.
//!
//! # Rules
//! Two players take turns marking an empty cell of a 3x3 board; player 0 plays `x` and moves
//! first, player 1 plays `o`. Action `row * 3 + col` marks cell (`row`, `col`), rows and
//! columns numbered from 0 at the top left. The first player with three marks in a row,
//! column or diagonal wins (+1, the other -1); a full board without a line is a draw (0 each).
//!
//! # Parameters
//! None.
//!
//! # Strings (OpenSpiel 2.0.2)
//! * Action names: the mark and the cell, `x(1,1)`, `o(0,0)`.
//! * Information states: the history of actions joined by `", "` (`""`, `"4"`, `"4, 0"`), the
//!   same for both players (perfect information).
//! * `Display`: the board, one row a line, `.` for empty (`"o..\n.x.\n..."`).
//!
//! # Size
//! The full game tree has 549,946 histories (nodes, root and terminals included) and 255,168
//! terminal histories.
//!
//! # References
//! OpenSpiel `open_spiel/games/tic_tac_toe/tic_tac_toe.cc`.

use std::fmt;

use spar_core::{Action, Game, GameInfo, GameSpec, Information, Player, State, Turn, Utility};

/// Number of cells (and of distinct actions).
pub const NUM_CELLS: usize = 9;

/// The eight lines of three cells: rows, columns, then the two diagonals.
pub const LINES: [[usize; 3]; 8] = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [0, 3, 6],
    [1, 4, 7],
    [2, 5, 8],
    [0, 4, 8],
    [2, 4, 6],
];

/// A player's mark: `x` for player 0, `o` for player 1.
pub fn mark(player: Player) -> char {
    if player == 0 {
        'x'
    } else {
        'o'
    }
}

/// TicTacToe.
#[derive(Debug, Clone)]
pub struct TicTacToe {
    info: GameInfo,
}

impl TicTacToe {
    /// The game with OpenSpiel's rules.
    pub fn new() -> Self {
        Self {
            info: GameInfo {
                name: "tictactoe".to_string(),
                long_name: "TicTacToe".to_string(),
                spec: "tictactoe".to_string(),
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Perfect,
                has_chance: false,
                min_utility: -1.0,
                max_utility: 1.0,
                num_distinct_actions: NUM_CELLS,
                max_chance_outcomes: 0,
                max_game_length: NUM_CELLS,
            },
        }
    }

    /// The game from a specification (`tictactoe`); TicTacToe takes no parameters.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&[])?;
        Ok(Self::new())
    }
}

impl Default for TicTacToe {
    fn default() -> Self {
        Self::new()
    }
}

impl Game for TicTacToe {
    type State = TicTacToeState;

    fn info(&self) -> &GameInfo {
        &self.info
    }

    fn new_initial_state(&self) -> TicTacToeState {
        TicTacToeState {
            board: [None; NUM_CELLS],
            history: Vec::with_capacity(NUM_CELLS),
            winner: None,
        }
    }
}

/// A TicTacToe position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TicTacToeState {
    board: [Option<Player>; NUM_CELLS],
    history: Vec<Action>,
    winner: Option<Player>,
}

impl TicTacToeState {
    /// The cells, `row * 3 + col`, each empty or holding the player who marked it.
    pub fn cells(&self) -> &[Option<Player>; NUM_CELLS] {
        &self.board
    }

    /// The player who completed a line, if any.
    pub fn winner(&self) -> Option<Player> {
        self.winner
    }

    /// Takes back the last action (OpenSpiel's `UndoAction`), for tree walks without clones.
    ///
    /// # Panics
    /// At the initial state.
    pub fn undo(&mut self) {
        let action = self.history.pop().expect("undo at the initial state");
        self.board[action] = None;
        // Play stops at the first line, so only the undone move can have made one.
        self.winner = None;
    }

    fn line_through(&self, cell: usize, player: Player) -> bool {
        LINES
            .iter()
            .filter(|line| line.contains(&cell))
            .any(|line| line.iter().all(|&c| self.board[c] == Some(player)))
    }
}

impl State for TicTacToeState {
    fn turn(&self) -> Turn {
        if self.winner.is_some() || self.history.len() == NUM_CELLS {
            Turn::Terminal
        } else {
            Turn::Player(self.history.len() % 2)
        }
    }

    fn legal_actions(&self) -> Vec<Action> {
        if self.is_terminal() {
            return Vec::new();
        }
        (0..NUM_CELLS)
            .filter(|&c| self.board[c].is_none())
            .collect()
    }

    fn chance_outcomes(&self) -> Vec<(Action, f64)> {
        Vec::new()
    }

    fn apply_action(&mut self, action: Action) {
        let player = match self.turn() {
            Turn::Player(player) => player,
            turn => panic!("apply_action({action}) at a {turn:?} node"),
        };
        assert!(
            action < NUM_CELLS && self.board[action].is_none(),
            "illegal TicTacToe action {action}"
        );
        self.board[action] = Some(player);
        self.history.push(action);
        if self.line_through(action, player) {
            self.winner = Some(player);
        }
    }

    fn returns(&self) -> Vec<f64> {
        match self.winner {
            Some(0) => vec![1.0, -1.0],
            Some(_) => vec![-1.0, 1.0],
            None => vec![0.0, 0.0],
        }
    }

    fn information_state_string(&self, _player: Player) -> String {
        history_string(&self.history)
    }

    fn action_to_string(&self, player: Player, action: Action) -> String {
        format!("{}({},{})", mark(player), action / 3, action % 3)
    }

    fn history(&self) -> &[Action] {
        &self.history
    }
}

/// OpenSpiel's information-state string of a perfect-information game: the actions joined by
/// `", "`.
pub(crate) fn history_string(history: &[Action]) -> String {
    history
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for TicTacToeState {
    /// OpenSpiel's `ToString`: three rows of `x`, `o` and `.`, separated by line breaks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in 0..3 {
            if row > 0 {
                writeln!(f)?;
            }
            for col in 0..3 {
                let c = self.board[row * 3 + col].map_or('.', mark);
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{check_conformance, playthrough_text, Conformance};

    fn play(actions: &[Action]) -> TicTacToeState {
        let mut state = TicTacToe::new().new_initial_state();
        for &a in actions {
            state.apply_action(a);
        }
        state
    }

    #[test]
    fn conformance() {
        check_conformance(&TicTacToe::new(), &Conformance::default());
    }

    #[test]
    fn wins_in_every_line_direction() {
        // (moves, winner): x wins a row, o wins a column, x each diagonal.
        let cases: [(&[Action], Player); 4] = [
            (&[0, 3, 1, 4, 2], 0),    // x: top row
            (&[0, 1, 3, 4, 8, 7], 1), // o: middle column
            (&[0, 1, 4, 2, 8], 0),    // x: main diagonal
            (&[2, 0, 4, 1, 6], 0),    // x: anti-diagonal
        ];
        for (moves, winner) in cases {
            let state = play(moves);
            assert!(state.is_terminal(), "{moves:?}");
            assert_eq!(state.winner(), Some(winner), "{moves:?}");
            let expected = if winner == 0 {
                vec![1.0, -1.0]
            } else {
                vec![-1.0, 1.0]
            };
            assert_eq!(state.returns(), expected, "{moves:?}");
            assert!(state.legal_actions().is_empty());
        }
        // One move before the win the game is still on.
        assert!(!play(&[0, 3, 1, 4]).is_terminal());
    }

    #[test]
    fn full_board_without_a_line_is_a_draw() {
        // x o x / x o o / o x x
        let state = play(&[0, 1, 2, 4, 3, 5, 7, 6, 8]);
        assert_eq!(state.to_string(), "xox\nxoo\noxx");
        assert!(state.is_terminal());
        assert_eq!(state.winner(), None);
        assert_eq!(state.returns(), vec![0.0, 0.0]);
    }

    #[test]
    fn strings_match_openspiel() {
        // OpenSpiel 2.0.2 (pyspiel), tic_tac_toe after 4, 0, 2.
        let initial = play(&[]);
        assert_eq!(initial.to_string(), "...\n...\n...");
        assert_eq!(initial.information_state_string(0), "");
        assert_eq!(initial.action_to_string(0, 4), "x(1,1)");
        let state = play(&[4]);
        assert_eq!(state.to_string(), "...\n.x.\n...");
        assert_eq!(state.information_state_string(0), "4");
        assert_eq!(state.action_to_string(1, 0), "o(0,0)");
        let state = play(&[4, 0]);
        assert_eq!(state.to_string(), "o..\n.x.\n...");
        assert_eq!(state.information_state_string(1), "4, 0");
        assert_eq!(state.action_to_string(0, 2), "x(0,2)");
        let state = play(&[4, 0, 2]);
        assert_eq!(state.to_string(), "o.x\n.x.\n...");
        assert_eq!(state.information_state_string(0), "4, 0, 2");
        assert_eq!(state.information_state_string(1), "4, 0, 2");
        assert_eq!(state.legal_actions(), vec![1, 3, 5, 6, 7, 8]);
    }

    #[test]
    fn full_tree_has_549946_histories() {
        // OpenSpiel 2.0.2 (pyspiel): a full walk of tic_tac_toe visits 549,946 states,
        // 255,168 of them terminal.
        fn walk(state: &mut TicTacToeState, counts: &mut (u64, u64)) {
            counts.0 += 1;
            if state.is_terminal() {
                counts.1 += 1;
                return;
            }
            for a in state.legal_actions() {
                state.apply_action(a);
                walk(state, counts);
                state.undo();
            }
        }
        let mut counts = (0, 0);
        walk(&mut TicTacToe::new().new_initial_state(), &mut counts);
        assert_eq!(counts, (549_946, 255_168));
    }

    #[test]
    fn undo_restores_the_state() {
        let before = play(&[0, 3, 1, 4]);
        let mut state = before.clone();
        state.apply_action(2);
        assert_eq!(state.winner(), Some(0));
        state.undo();
        assert_eq!(state, before);
    }

    #[test]
    fn playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&TicTacToe::new(), 42));
    }
}
