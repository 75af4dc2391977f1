//! The one error type of `spar-eval`.

use std::path::PathBuf;

/// Errors raised by evaluation: unreadable or invalid policy files, games an algorithm does
/// not apply to, policies that break their contract, trees too large to enumerate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy file could not be read or written.
    #[error("{}: {action} failed: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`reading`, `writing`, `renaming the temporary file`).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A policy file is not valid JSON.
    #[error("{}:{line}:{column}: invalid JSON: {message}", path.display())]
    PolicyJson {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser reported.
        message: String,
    },
    /// A policy file is valid JSON but not in the tabular policy format.
    #[error(
        "{}: field {field}: {reason} (expected {{\"game\": \"<spec>\", \"policy\": {{\"<information state>\": [[action, probability], ...]}}}} or the bare policy map; see docs/policy-format.md)",
        path.display()
    )]
    PolicyFormat {
        /// The file.
        path: PathBuf,
        /// Where in the document (`policy["1pb"][0]`).
        field: String,
        /// What is wrong there.
        reason: String,
    },
    /// A policy file was written for a different game.
    #[error("{}: the policy is for game {found:?}, but the game is {expected:?}", path.display())]
    GameMismatch {
        /// The file.
        path: PathBuf,
        /// The game being evaluated (its specification).
        expected: String,
        /// The game named in the file.
        found: String,
    },
    /// A probability in a policy file is not a number in [0, 1].
    #[error("{}: policy[{info_state:?}], action {action}: probability {value} is not a finite number in [0, 1]", path.display())]
    BadProbability {
        /// The file.
        path: PathBuf,
        /// The information state.
        info_state: String,
        /// The action.
        action: usize,
        /// The value found.
        value: f64,
    },
    /// The probabilities at one information state do not sum to 1.
    #[error("{}: policy[{info_state:?}]: probabilities sum to {sum}, expected 1 (within 1e-6)", path.display())]
    NotADistribution {
        /// The file.
        path: PathBuf,
        /// The information state.
        info_state: String,
        /// The sum found.
        sum: f64,
    },
    /// A policy file gives probability to an action that is illegal at that information
    /// state, or lists an action twice.
    #[error("{}: policy[{info_state:?}]: action {action} {reason}; legal actions there: {legal:?}", path.display())]
    IllegalAction {
        /// The file.
        path: PathBuf,
        /// The information state.
        info_state: String,
        /// The offending action.
        action: usize,
        /// `is not legal` or `is listed twice`.
        reason: &'static str,
        /// The legal actions at that information state.
        legal: Vec<usize>,
    },
    /// A policy file names an information state that no decision node of the game has.
    #[error("{}: policy[{info_state:?}]: no decision node of {game} has this information state ({known} known, e.g. {example:?})", path.display())]
    UnknownInfoState {
        /// The file.
        path: PathBuf,
        /// The unknown key.
        info_state: String,
        /// The game's specification.
        game: String,
        /// How many information states the game has.
        known: usize,
        /// One information state the game does have.
        example: String,
    },
    /// A policy (in memory) returned something that is not a distribution over the legal
    /// actions at some information state.
    #[error("policy {policy:?} at information state {info_state:?}: {reason}; legal actions there: {legal:?}")]
    BadPolicyOutput {
        /// The policy's name.
        policy: String,
        /// The information state.
        info_state: String,
        /// What was wrong.
        reason: String,
        /// The legal actions there.
        legal: Vec<usize>,
    },
    /// NashConv and exploitability are defined here only for two-player zero-sum or
    /// constant-sum games.
    #[error("{game}: {what} needs a two-player zero-sum or constant-sum game; this one has {num_players} players and {utility} utility")]
    NotTwoPlayerZeroSum {
        /// The game's specification.
        game: String,
        /// The computation asked for.
        what: &'static str,
        /// Number of players.
        num_players: usize,
        /// The utility structure (`general-sum`).
        utility: String,
    },
    /// Minimax and alpha-beta need deterministic perfect-information two-player games.
    #[error("{game}: {what} needs a two-player zero-sum game of perfect information without chance: {reason}")]
    NeedsPerfectInformation {
        /// The game's specification.
        game: String,
        /// The algorithm.
        what: &'static str,
        /// Which requirement fails.
        reason: String,
    },
    /// Enumerating the game tree exceeded the node limit.
    #[error("{game}: the game tree has more than {limit} nodes; exact evaluation is out of reach (raise the limit or use a smaller game)")]
    TreeTooLarge {
        /// The game's specification.
        game: String,
        /// The limit that was hit.
        limit: usize,
    },
    /// A match needs one policy per player.
    #[error("{game}: {got} policies given for a {expected}-player game")]
    WrongNumberOfPolicies {
        /// The game's specification.
        game: String,
        /// Players in the game.
        expected: usize,
        /// Policies given.
        got: usize,
    },
    /// Bad input to a rating or tournament computation.
    #[error("{0}")]
    BadInput(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// The utility structure as a word, for error messages.
pub(crate) fn utility_name(utility: spar_core::Utility) -> String {
    match utility {
        spar_core::Utility::ZeroSum => "zero-sum".to_string(),
        spar_core::Utility::ConstantSum(c) => format!("constant-sum ({c})"),
        spar_core::Utility::GeneralSum => "general-sum".to_string(),
    }
}
