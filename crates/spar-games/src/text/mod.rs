//! Text views: how each game is shown to language models (prompts, action names).
//!
//! Rules are pure; text is a view (STYLE rule 3). Each game's [`GameText`] lives here, in a
//! file of its own beside the rules file, and every one is checked by
//! `spar_core::testing::check_text_conformance` (a prompt is a function of the acting
//! player's information state only) and `check_parser_robustness` (a million adversarial
//! completions, no panic).
//!
//! [`TextView`] ties a game to its text, so that any registered game becomes an
//! [`spar_core::Env`] with [`text_env`].

use spar_core::{Game, GameText, TextGame, TextOptions};

pub mod connect_four;
pub mod kuhn;
pub mod leduc;
pub mod negotiation;
pub mod tictactoe;

/// A game with a text view.
pub trait TextView: Game + Sized {
    /// The game's text view.
    type Text: GameText<Self::State>;

    /// The text view for this game instance (its rules text may depend on parameters).
    fn text_view(&self) -> Self::Text;
}

/// The game as a text environment, with the given protocol, invalid-move rule and limit.
pub fn text_env<G: TextView>(game: G, options: TextOptions) -> TextGame<G, G::Text> {
    let text = game.text_view();
    TextGame::new(game, text, options)
}
