//! The game registry: names, descriptions, and the one `match` from a specification to a
//! concrete game (see [`with_game!`](crate::with_game)).

use spar_core::{Error, GameInfo, GameSpec};

/// One registered game: its name and a one-line description of its parameters.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The name used in specifications.
    pub name: &'static str,
    /// Accepted parameters with defaults, e.g. `hands=1`.
    pub parameters: &'static str,
}

/// Every game spar ships, in the order `spar games` lists them.
pub const GAMES: &[Entry] = &[
    Entry {
        name: "kuhn",
        parameters: "hands=1, payoff=winner|chips",
    },
    Entry {
        name: "leduc",
        parameters: "",
    },
    Entry {
        name: "tictactoe",
        parameters: "",
    },
    Entry {
        name: "connect_four",
        parameters: "",
    },
    Entry {
        name: "negotiation",
        parameters: "wood=10, gold=10, max_turns=10, max_quantity=3",
    },
];

/// The error for a name no entry has, listing the known names.
pub fn unknown_game(name: &str) -> Error {
    Error::UnknownGame {
        name: name.to_string(),
        known: GAMES.iter().map(|e| e.name).collect::<Vec<_>>().join(", "),
    }
}

/// Parses `text` and builds the game, returning its static facts (for listings).
pub fn game_info(text: &str) -> spar_core::Result<GameInfo> {
    let spec = GameSpec::parse(text)?;
    crate::with_game!(&spec, |game| Ok(spar_core::Game::info(&game).clone()))
}

/// Builds the game named by a [`GameSpec`] and evaluates `$body` with `$game` bound to
/// it (a concrete type, so the body is monomorphised per game). Evaluates to
/// `spar_core::Result<_>`: `$body` must itself produce a `Result` with an error type that
/// `spar_core::Error` converts into.
///
/// ```
/// use spar_core::{Game, GameSpec};
/// let spec = GameSpec::parse("kuhn").unwrap();
/// let players: spar_core::Result<usize> =
///     spar_games::with_game!(&spec, |game| Ok(game.info().num_players));
/// assert_eq!(players.unwrap(), 2);
/// ```
#[macro_export]
macro_rules! with_game {
    ($spec:expr, |$game:ident| $body:expr) => {{
        let spec: &spar_core::GameSpec = $spec;
        match spec.name.as_str() {
            "kuhn" => match $crate::kuhn::KuhnPoker::from_spec(spec) {
                Ok($game) => $body,
                Err(error) => Err(error.into()),
            },
            "leduc" => match $crate::leduc::LeducPoker::from_spec(spec) {
                Ok($game) => $body,
                Err(error) => Err(error.into()),
            },
            "tictactoe" => match $crate::tictactoe::TicTacToe::from_spec(spec) {
                Ok($game) => $body,
                Err(error) => Err(error.into()),
            },
            "connect_four" => match $crate::connect_four::ConnectFour::from_spec(spec) {
                Ok($game) => $body,
                Err(error) => Err(error.into()),
            },
            "negotiation" => match $crate::negotiation::Negotiation::from_spec(spec) {
                Ok($game) => $body,
                Err(error) => Err(error.into()),
            },
            other => Err($crate::registry::unknown_game(other).into()),
        }
    }};
}
