//! Connect Four, exactly as OpenSpiel's `connect_four`.
//!
//! # Rules
//! A vertical grid of 6 rows and 7 columns. Players take turns dropping a piece into a column
//! that is not full; it falls to the lowest empty row. Player 0 plays `x` and moves first,
//! player 1 plays `o`. Action `c` drops into column `c` (0 to 6, left to right). The first
//! player with four pieces in a line (horizontal, vertical or either diagonal) wins (+1, the
//! other -1); a full grid without such a line is a draw (0 each).
//!
//! # Parameters
//! None (OpenSpiel's grid size is fixed at 6x7).
//!
//! # Strings (OpenSpiel 2.0.2)
//! * Action names: the mark and the column, `x3`, `o0`.
//! * Information states: the history of actions joined by `", "` (`""`, `"3"`, `"3, 3"`),
//!   the same for both players (perfect information).
//! * `Display`: the grid, top row first, each row followed by a line break, `.` for empty.
//!
//! # Heuristic
//! [`heuristic`] evaluates unfinished positions for depth-limited alpha-beta
//! (`spar_eval::search::AlphaBeta`): it scores every window of four cells in a line that
//! holds pieces of one player only, 1 point for two pieces and 4 points for three, and maps
//! the player's points minus the opponent's, `d`, to `d / (|d| + 16)`, strictly inside
//! (-1, 1).
//!
//! # References
//! OpenSpiel `open_spiel/games/connect_four/connect_four.cc`.

use std::fmt;

use spar_core::{Action, Game, GameInfo, GameSpec, Information, Player, State, Turn, Utility};

/// Number of rows.
pub const ROWS: usize = 6;
/// Number of columns (and of distinct actions).
pub const COLS: usize = 7;
/// Pieces in a line needed to win.
const LINE: usize = 4;
/// The four line directions as (row step, column step): horizontal, vertical, and the two
/// diagonals.
const DIRECTIONS: [(isize, isize); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];

/// A player's mark: `x` for player 0, `o` for player 1.
pub fn mark(player: Player) -> char {
    if player == 0 {
        'x'
    } else {
        'o'
    }
}

/// Connect Four.
#[derive(Debug, Clone)]
pub struct ConnectFour {
    info: GameInfo,
}

impl ConnectFour {
    /// The game with OpenSpiel's rules.
    pub fn new() -> Self {
        Self {
            info: GameInfo {
                name: "connect_four".to_string(),
                long_name: "Connect Four".to_string(),
                spec: "connect_four".to_string(),
                num_players: 2,
                utility: Utility::ZeroSum,
                information: Information::Perfect,
                has_chance: false,
                min_utility: -1.0,
                max_utility: 1.0,
                num_distinct_actions: COLS,
                max_chance_outcomes: 0,
                max_game_length: ROWS * COLS,
            },
        }
    }

    /// The game from a specification (`connect_four`); it takes no parameters.
    pub fn from_spec(spec: &GameSpec) -> spar_core::Result<Self> {
        spec.check_known(&[])?;
        Ok(Self::new())
    }
}

impl Default for ConnectFour {
    fn default() -> Self {
        Self::new()
    }
}

impl Game for ConnectFour {
    type State = ConnectFourState;

    fn info(&self) -> &GameInfo {
        &self.info
    }

    fn new_initial_state(&self) -> ConnectFourState {
        ConnectFourState {
            grid: [[None; COLS]; ROWS],
            heights: [0; COLS],
            history: Vec::with_capacity(ROWS * COLS),
            winner: None,
        }
    }
}

/// A Connect Four position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnectFourState {
    /// `grid[row][col]`, row 0 at the bottom.
    grid: [[Option<Player>; COLS]; ROWS],
    /// Pieces in each column.
    heights: [usize; COLS],
    history: Vec<Action>,
    winner: Option<Player>,
}

impl ConnectFourState {
    /// The piece at (`row`, `col`), row 0 at the bottom, if any.
    pub fn cell(&self, row: usize, col: usize) -> Option<Player> {
        self.grid[row][col]
    }

    /// The player who completed a line of four, if any.
    pub fn winner(&self) -> Option<Player> {
        self.winner
    }

    /// The cell `steps` steps from (`row`, `col`) in direction `(dr, dc)`, if on the grid.
    fn offset(
        row: usize,
        col: usize,
        (dr, dc): (isize, isize),
        steps: isize,
    ) -> Option<(usize, usize)> {
        let r = row as isize + dr * steps;
        let c = col as isize + dc * steps;
        ((0..ROWS as isize).contains(&r) && (0..COLS as isize).contains(&c))
            .then_some((r as usize, c as usize))
    }

    /// Whether the piece at (`row`, `col`) lies on a line of four of its owner.
    fn wins_at(&self, row: usize, col: usize) -> bool {
        let owner = self.grid[row][col];
        DIRECTIONS.iter().any(|&dir| {
            let run = |sign: isize| {
                (1..LINE as isize)
                    .take_while(|&k| {
                        Self::offset(row, col, dir, sign * k)
                            .is_some_and(|(r, c)| self.grid[r][c] == owner)
                    })
                    .count()
            };
            1 + run(1) + run(-1) >= LINE
        })
    }
}

impl State for ConnectFourState {
    fn turn(&self) -> Turn {
        if self.winner.is_some() || self.history.len() == ROWS * COLS {
            Turn::Terminal
        } else {
            Turn::Player(self.history.len() % 2)
        }
    }

    fn legal_actions(&self) -> Vec<Action> {
        if self.is_terminal() {
            return Vec::new();
        }
        (0..COLS).filter(|&c| self.heights[c] < ROWS).collect()
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
            action < COLS && self.heights[action] < ROWS,
            "illegal Connect Four action {action}"
        );
        let row = self.heights[action];
        self.grid[row][action] = Some(player);
        self.heights[action] += 1;
        self.history.push(action);
        if self.wins_at(row, action) {
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
        crate::tictactoe::history_string(&self.history)
    }

    fn action_to_string(&self, player: Player, action: Action) -> String {
        format!("{}{action}", mark(player))
    }

    fn history(&self) -> &[Action] {
        &self.history
    }
}

impl fmt::Display for ConnectFourState {
    /// OpenSpiel's `ToString`: the top row first, each row followed by a line break.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in self.grid.iter().rev() {
            for cell in row {
                write!(f, "{}", cell.map_or('.', mark))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Points for a window holding two (index 2) or three (index 3) pieces of one player only.
const WINDOW_POINTS: [f64; LINE] = [0.0, 0.0, 1.0, 4.0];
/// The scale of the squashing `d / (|d| + SCALE)`.
const SCALE: f64 = 16.0;

/// The frontier evaluation for alpha-beta: open windows of two and three for `player` minus
/// the opponent's, squashed into (-1, 1) (see the module doc). Symmetric:
/// `heuristic(s, 0) == -heuristic(s, 1)`.
pub fn heuristic(state: &ConnectFourState, player: Player) -> f64 {
    let mut points = [0.0; 2];
    for row in 0..ROWS {
        for col in 0..COLS {
            for dir in DIRECTIONS {
                if ConnectFourState::offset(row, col, dir, LINE as isize - 1).is_none() {
                    continue;
                }
                let mut count = [0usize; 2];
                for k in 0..LINE as isize {
                    let (r, c) = ConnectFourState::offset(row, col, dir, k)
                        .expect("the window's end is on the grid");
                    if let Some(p) = state.grid[r][c] {
                        count[p] += 1;
                    }
                }
                for p in 0..2 {
                    if count[1 - p] == 0 && count[p] < LINE {
                        points[p] += WINDOW_POINTS[count[p]];
                    }
                }
            }
        }
    }
    let d = points[player] - points[1 - player];
    d / (d.abs() + SCALE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::testing::{check_conformance, playthrough_text, Conformance};

    fn play(actions: &[Action]) -> ConnectFourState {
        let mut state = ConnectFour::new().new_initial_state();
        for &a in actions {
            state.apply_action(a);
        }
        state
    }

    #[test]
    fn conformance() {
        check_conformance(&ConnectFour::new(), &Conformance::default());
    }

    #[test]
    fn wins_in_every_direction() {
        // Boards and returns from OpenSpiel 2.0.2 (pyspiel) for the same histories.
        let cases: [(&[Action], Player, &str); 4] = [
            (
                &[0, 0, 1, 1, 2, 2, 3],
                0,
                ".......\n.......\n.......\n.......\nooo....\nxxxx...\n",
            ),
            (
                &[0, 1, 0, 1, 0, 1, 2, 1],
                1,
                ".......\n.......\n.o.....\nxo.....\nxo.....\nxox....\n",
            ),
            (
                &[0, 1, 1, 2, 2, 3, 2, 3, 3, 6, 3],
                0,
                ".......\n.......\n...x...\n..xx...\n.xxo...\nxooo..o\n",
            ),
            (
                &[6, 5, 5, 4, 4, 3, 4, 3, 3, 0, 3],
                0,
                ".......\n.......\n...x...\n...xx..\n...oxx.\no..ooox\n",
            ),
        ];
        for (moves, winner, board) in cases {
            let state = play(moves);
            assert!(state.is_terminal(), "{moves:?}");
            assert_eq!(state.winner(), Some(winner), "{moves:?}");
            assert_eq!(state.to_string(), board, "{moves:?}");
            let mut expected = vec![-1.0, -1.0];
            expected[winner] = 1.0;
            assert_eq!(state.returns(), expected, "{moves:?}");
            assert!(state.legal_actions().is_empty());
            // One move earlier nobody has won.
            assert!(!play(&moves[..moves.len() - 1]).is_terminal());
        }
    }

    #[test]
    fn full_grid_without_a_line_is_a_draw() {
        // A random pyspiel (OpenSpiel 2.0.2) game that filled the grid with no winner.
        let moves = [
            4, 3, 6, 0, 1, 4, 5, 5, 1, 1, 5, 0, 1, 6, 0, 1, 5, 5, 1, 0, 4, 6, 3, 2, 6, 6, 0, 4, 6,
            5, 2, 0, 4, 2, 4, 2, 2, 2, 3, 3, 3, 3,
        ];
        let state = play(&moves);
        assert_eq!(
            state.to_string(),
            "oxooxox\nxoxxxoo\noxoooxx\nxooxxxo\noxxxooo\noxooxxx\n"
        );
        assert!(state.is_terminal());
        assert_eq!(state.winner(), None);
        assert_eq!(state.returns(), vec![0.0, 0.0]);
        assert!(!play(&moves[..41]).is_terminal());
    }

    #[test]
    fn strings_match_openspiel() {
        // OpenSpiel 2.0.2 (pyspiel), connect_four.
        let initial = play(&[]);
        assert_eq!(initial.to_string(), ".......\n".repeat(6));
        assert_eq!(initial.information_state_string(0), "");
        assert_eq!(initial.action_to_string(0, 3), "x3");
        let state = play(&[3, 3, 2]);
        assert_eq!(
            state.to_string(),
            ".......\n.......\n.......\n.......\n...o...\n..xx...\n"
        );
        assert_eq!(state.information_state_string(0), "3, 3, 2");
        assert_eq!(state.information_state_string(1), "3, 3, 2");
        assert_eq!(state.action_to_string(1, 0), "o0");
        // A full column is no longer legal.
        let state = play(&[3, 3, 3, 3, 3, 3]);
        assert_eq!(state.legal_actions(), vec![0, 1, 2, 4, 5, 6]);
        assert!(!state.is_terminal());
    }

    #[test]
    fn heuristic_on_hand_made_positions() {
        // Empty grid: no windows with two pieces.
        assert_eq!(heuristic(&play(&[]), 0), 0.0);
        // x at the bottom of columns 0 and 1, o at the bottom of column 6 twice: one window
        // of two each (row 0 columns 0-3; column 6 rows 0-3), difference 0.
        assert_eq!(heuristic(&play(&[0, 6, 1, 6]), 0), 0.0);
        // x adds column 2: row 0 columns 0-3 holds three x (4 points), columns 1-4 two
        // (1 point); o keeps its one window of two (1 point). d = 5 - 1 = 4 for x,
        // 4 / (4 + 16) = 0.2.
        let state = play(&[0, 6, 1, 6, 2]);
        assert!((heuristic(&state, 0) - 0.2).abs() < 1e-12);
        assert!((heuristic(&state, 1) + 0.2).abs() < 1e-12);
        // Vertical three for o in column 6 (x spread out on row 0 with gaps):
        // x at columns 0, 2, 4; o at column 6 rows 0-2.
        // x windows of two (no o): row 0 columns 0-3 (x0, x2), 1-4 (x2, x4); columns 2-5
        // (x2, x4): 3 points. Column 3-6 holds o. o: column 6 rows 0-3 three o (4 points),
        // rows 1-4 two o (1 point); row windows with one o only. d for o = 5 - 3 = 2,
        // 2 / 18.
        let state = play(&[0, 6, 2, 6, 4, 6]);
        assert!((heuristic(&state, 1) - 2.0 / 18.0).abs() < 1e-12);
        assert!((heuristic(&state, 0) + 2.0 / 18.0).abs() < 1e-12);
    }

    #[test]
    fn heuristic_stays_inside_the_utility_range() {
        for seed in 0..200 {
            for state in spar_core::testing::random_playthrough(&ConnectFour::new(), seed) {
                for player in 0..2 {
                    let h = heuristic(&state, player);
                    assert!(h > -1.0 && h < 1.0, "{h} at {:?}", state.history());
                    assert_eq!(h, -heuristic(&state, 1 - player));
                }
            }
        }
    }

    #[test]
    fn playthrough_snapshot() {
        insta::assert_snapshot!(playthrough_text(&ConnectFour::new(), 42));
    }
}
