//! Connect Four as text: the board drawn top row first, moves named by column number.

use spar_core::{Action, GameText, Player, State};

use crate::connect_four::{mark, ConnectFour, ConnectFourState, COLS, ROWS};

use super::TextView;

/// The text view of [`ConnectFour`].
#[derive(Debug, Clone, Default)]
pub struct ConnectFourText;

impl TextView for ConnectFour {
    type Text = ConnectFourText;
    fn text_view(&self) -> ConnectFourText {
        ConnectFourText
    }
}

/// The board, top row first, `X`/`O` for discs and `.` for empty cells, with column numbers.
pub fn render_board(state: &ConnectFourState) -> String {
    let mut lines = vec![(0..COLS)
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")];
    lines.push("-".repeat(2 * COLS - 1));
    for row in (0..ROWS).rev() {
        let cells: Vec<String> = (0..COLS)
            .map(|col| match state.cell(row, col) {
                Some(player) => mark(player).to_ascii_uppercase().to_string(),
                None => ".".to_string(),
            })
            .collect();
        lines.push(cells.join(" "));
    }
    lines.join("\n")
}

impl GameText<ConnectFourState> for ConnectFourText {
    fn rules(&self) -> String {
        format!(
            "You are playing Connect Four, a two-player zero-sum game. Make valid actions to win.

Game rules:
- The board has {ROWS} rows and {COLS} columns, numbered 0 to {} from left to right.
- Player 0 plays X and moves first; Player 1 plays O.
- On your turn, drop a disc into a column that is not full by answering with its number; the disc falls to the lowest empty cell.
- The first player to connect four discs vertically, horizontally or diagonally wins. A full board without a line is a draw.",
            COLS - 1
        )
    }

    fn role_text(&self, player: Player) -> String {
        format!(
            "You are Player {player} in Connect Four. You play {}.",
            mark(player).to_ascii_uppercase()
        )
    }

    fn state_text(&self, state: &ConnectFourState, _player: Player) -> String {
        format!(
            "Current board (after {} moves):\n{}",
            state.history().len(),
            render_board(state)
        )
    }

    fn action_name(&self, _state: &ConnectFourState, _player: Player, action: Action) -> String {
        action.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::text_env;
    use spar_core::testing::{check_parser_robustness, check_text_conformance, Conformance};
    use spar_core::{Env, TextOptions};

    #[test]
    fn text_conformance() {
        check_text_conformance(
            &ConnectFour::new(),
            &ConnectFourText,
            &Conformance {
                playthroughs: 1_000,
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn a_million_adversarial_completions() {
        assert!(check_parser_robustness(&ConnectFour::new(), &ConnectFourText, 1_000_000, 7) > 0);
    }

    #[test]
    fn prompt_snapshot_and_a_vertical_win() {
        let mut env = text_env(ConnectFour::new(), TextOptions::default());
        env.reset(0);
        for (player, column) in [(0, 3), (1, 4), (0, 3), (1, 4), (0, 3), (1, 4)] {
            assert!(!env.step(player, &format!("\\boxed{{{column}}}")).done);
        }
        let observation = env.observation(0);
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
        assert!(env.step(0, "\\boxed{3}").done);
        assert_eq!(env.returns(), vec![1.0, -1.0]);
    }
}
