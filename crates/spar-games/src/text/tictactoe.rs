//! TicTacToe as text, in TextArena's style: a numbered board, moves named by cell number.

use spar_core::{Action, GameText, Player, State};

use crate::tictactoe::{mark, TicTacToe, TicTacToeState};

use super::TextView;

/// The text view of [`TicTacToe`].
#[derive(Debug, Clone, Default)]
pub struct TicTacToeText;

impl TextView for TicTacToe {
    type Text = TicTacToeText;
    fn text_view(&self) -> TicTacToeText {
        TicTacToeText
    }
}

/// The board with marks as `X`/`O` and empty cells showing their number.
pub fn render_board(state: &TicTacToeState) -> String {
    let cell = |i: usize| match state.cells()[i] {
        Some(player) => mark(player).to_ascii_uppercase().to_string(),
        None => i.to_string(),
    };
    let rows: Vec<String> = (0..3)
        .map(|r| {
            format!(
                " {} | {} | {}",
                cell(3 * r),
                cell(3 * r + 1),
                cell(3 * r + 2)
            )
        })
        .collect();
    rows.join("\n---+---+---\n")
}

impl GameText<TicTacToeState> for TicTacToeText {
    fn rules(&self) -> String {
        "You are playing Tic Tac Toe, a two-player zero-sum game. Make valid actions to win.

Game rules:
- The board has 9 cells numbered 0 to 8, left to right and top to bottom.
- Player 0 plays X and moves first; Player 1 plays O.
- On your turn, mark one empty cell by answering with its number, e.g. 4 for the center.
- The first player with three marks in a row, column or diagonal wins. A full board without a line is a draw."
            .to_string()
    }

    fn role_text(&self, player: Player) -> String {
        format!(
            "You are Player {player} in Tic Tac Toe. You play {}.",
            mark(player).to_ascii_uppercase()
        )
    }

    fn state_text(&self, state: &TicTacToeState, _player: Player) -> String {
        let moves = state.history().len();
        format!(
            "Current board (after {moves} moves):\n{}",
            render_board(state)
        )
    }

    fn action_name(&self, _state: &TicTacToeState, _player: Player, action: Action) -> String {
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
            &TicTacToe::new(),
            &TicTacToeText,
            &Conformance {
                playthroughs: 2_000,
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn a_million_adversarial_completions() {
        assert!(check_parser_robustness(&TicTacToe::new(), &TicTacToeText, 1_000_000, 5) > 0);
    }

    #[test]
    fn prompt_snapshot_and_a_win() {
        let mut env = text_env(TicTacToe::new(), TextOptions::default());
        env.reset(0);
        for (player, cell) in [(0, "4"), (1, "0"), (0, "2"), (1, "1")] {
            assert!(!env.step(player, &format!("\\boxed{{{cell}}}")).done);
        }
        let observation = env.observation(0);
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
        let step = env.step(0, "Three in a diagonal: \\boxed{6}");
        assert!(step.done);
        assert_eq!(env.returns(), vec![1.0, -1.0]);
    }

    #[test]
    fn an_occupied_cell_is_an_invalid_move() {
        let mut env = text_env(TicTacToe::new(), TextOptions::default());
        env.reset(0);
        env.step(0, "\\boxed{4}");
        let step = env.step(1, "\\boxed{4}");
        assert!(step.done, "spiral's rule ends the game");
        assert_eq!(env.returns(), vec![0.5, -1.5]);
    }

    #[test]
    fn the_turn_limit_truncates_as_a_draw() {
        let mut env = text_env(
            TicTacToe::new(),
            TextOptions {
                max_turns: Some(3),
                ..TextOptions::default()
            },
        );
        env.reset(0);
        env.step(0, "\\boxed{0}");
        env.step(1, "\\boxed{4}");
        let step = env.step(0, "\\boxed{8}");
        assert!(step.done && step.truncated);
        assert_eq!(env.returns(), vec![0.0, 0.0]);
        assert!(env.transcript().truncated);
    }
}
