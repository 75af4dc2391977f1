//! Elo ratings fitted to a table of pairwise results by maximum likelihood.
//!
//! The model (Bradley-Terry on the Elo scale): player `i` scores against player `j` with
//! expectation
//!
//! ```text
//! E_ij = 1 / (1 + 10^((R_j - R_i) / 400))
//! ```
//!
//! where a win scores 1, a draw 1/2 and a loss 0. Given, for every pair, the number of games
//! `n_ij` and the score `s_ij` of `i`, the ratings maximise the likelihood
//! `prod_{i<j} E_ij^{s_ij} (1 - E_ij)^{n_ij - s_ij}`. With `gamma_i = 10^(R_i / 400)` the
//! maximum satisfies `S_i = sum_j n_ij * gamma_i / (gamma_i + gamma_j)` for every `i`
//! (`S_i` = the total score of `i`), which the minorisation-maximisation iteration of
//! Hunter (2004) solves:
//!
//! ```text
//! gamma_i <- S_i / sum_j ( n_ij / (gamma_i + gamma_j) )
//! ```
//!
//! Ratings are defined up to a constant; [`EloAnchor`] fixes it (mean 1500 by default).
//!
//! A player who won (or lost) every game has no finite maximum-likelihood rating. By default
//! each pair that met gets one virtual drawn game ([`EloOptions::virtual_draws`]), a weak
//! prior in the spirit of BayesElo that keeps every rating finite and moves well-measured
//! ratings very little; set it to 0 for the plain maximum-likelihood fit.
//!
//! References: Elo, "The Rating of Chessplayers, Past and Present", 1978; Hunter, "MM
//! algorithms for generalized Bradley-Terry models", Annals of Statistics 2004; Coulom,
//! BayesElo.

use crate::error::{Error, Result};

/// The results of all games between two players.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PairResult {
    /// The first player's index.
    pub a: usize,
    /// The second player's index.
    pub b: usize,
    /// Games played between them.
    pub games: f64,
    /// The first player's score: wins + draws / 2.
    pub score_a: f64,
}

/// Where the rating scale is anchored.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EloAnchor {
    /// The mean rating equals this value.
    Mean(f64),
    /// The first player's rating equals this value.
    First(f64),
}

/// Options of [`fit_elo`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EloOptions {
    /// Virtual drawn games added to every pair that played (default 1; 0 for the plain
    /// maximum-likelihood fit).
    pub virtual_draws: f64,
    /// How the scale is anchored (default: mean 1500).
    pub anchor: EloAnchor,
    /// Iteration cap of the MM algorithm (default 100,000).
    pub max_iterations: usize,
    /// Stop when no rating moves by more than this many Elo points (default 1e-9).
    pub tolerance: f64,
}

impl Default for EloOptions {
    fn default() -> Self {
        Self {
            virtual_draws: 1.0,
            anchor: EloAnchor::Mean(1500.0),
            max_iterations: 100_000,
            tolerance: 1e-9,
        }
    }
}

/// The expected score of a player rated `rating` against one rated `opponent`.
pub fn expected_score(rating: f64, opponent: f64) -> f64 {
    1.0 / (1.0 + 10f64.powf((opponent - rating) / 400.0))
}

/// Fits Elo ratings to `results` (see the module doc). Fails on an out-of-range player
/// index, a score outside `[0, games]`, players not all connected by games, or (with no
/// virtual draws) a player who won or lost every game.
pub fn fit_elo(
    num_players: usize,
    results: &[PairResult],
    options: &EloOptions,
) -> Result<Vec<f64>> {
    if num_players == 0 {
        return Ok(Vec::new());
    }
    let mut games = vec![vec![0.0; num_players]; num_players];
    let mut score = vec![0.0; num_players];
    for result in results {
        let PairResult {
            a,
            b,
            games: n,
            score_a,
        } = *result;
        if a >= num_players || b >= num_players || a == b {
            return Err(Error::BadInput(format!(
                "Elo: result between players {a} and {b} (need two different players below {num_players})"
            )));
        }
        if !(n >= 0.0 && (0.0..=n).contains(&score_a)) {
            return Err(Error::BadInput(format!(
                "Elo: players {a} and {b}: score {score_a} is not within [0, {n}] games"
            )));
        }
        if n == 0.0 {
            continue;
        }
        let extra = options.virtual_draws;
        games[a][b] += n + extra;
        games[b][a] += n + extra;
        score[a] += score_a + extra / 2.0;
        score[b] += n - score_a + extra / 2.0;
    }
    check_connected(&games)?;
    for (player, &s) in score.iter().enumerate() {
        let total: f64 = games[player].iter().sum();
        if num_players > 1 && (s <= 0.0 || s >= total) {
            return Err(Error::BadInput(format!(
                "Elo: player {player} scored {s} of {total}: with all games won or lost the rating is unbounded (use virtual draws > 0)"
            )));
        }
    }
    let mut gamma = vec![1.0; num_players];
    for _ in 0..options.max_iterations {
        let mut largest_move: f64 = 0.0;
        for i in 0..num_players {
            let denominator: f64 = (0..num_players)
                .filter(|&j| games[i][j] > 0.0)
                .map(|j| games[i][j] / (gamma[i] + gamma[j]))
                .sum();
            if denominator == 0.0 {
                continue;
            }
            let updated = score[i] / denominator;
            largest_move = largest_move.max((400.0 * (updated / gamma[i]).log10()).abs());
            gamma[i] = updated;
        }
        // Keep the scale near 1 (the fit is invariant to a common factor).
        let log_mean = gamma.iter().map(|g| g.ln()).sum::<f64>() / num_players as f64;
        for g in &mut gamma {
            *g /= log_mean.exp();
        }
        if largest_move < options.tolerance {
            break;
        }
    }
    let mut ratings: Vec<f64> = gamma.iter().map(|g| 400.0 * g.log10()).collect();
    let shift = match options.anchor {
        EloAnchor::Mean(mean) => mean - ratings.iter().sum::<f64>() / num_players as f64,
        EloAnchor::First(first) => first - ratings[0],
    };
    for rating in &mut ratings {
        *rating += shift;
    }
    Ok(ratings)
}

fn check_connected(games: &[Vec<f64>]) -> Result<()> {
    let n = games.len();
    let mut reached = vec![false; n];
    let mut stack = vec![0];
    reached[0] = true;
    while let Some(i) = stack.pop() {
        for j in 0..n {
            if games[i][j] > 0.0 && !reached[j] {
                reached[j] = true;
                stack.push(j);
            }
        }
    }
    match reached.iter().position(|&r| !r) {
        None => Ok(()),
        Some(player) => Err(Error::BadInput(format!(
            "Elo: player {player} is not connected to player 0 by any chain of games; ratings across the gap are undefined"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> EloOptions {
        EloOptions {
            virtual_draws: 0.0,
            ..EloOptions::default()
        }
    }

    #[test]
    fn two_players_match_the_closed_form() {
        // 3 points of 4: E = 3/4, so R_a - R_b = 400 log10(3) = 190.848...
        let results = [PairResult {
            a: 0,
            b: 1,
            games: 4.0,
            score_a: 3.0,
        }];
        let ratings = fit_elo(2, &results, &plain()).unwrap();
        assert!(
            (ratings[0] - ratings[1] - 400.0 * 3f64.log10()).abs() < 1e-6,
            "{ratings:?}"
        );
        assert!((ratings[0] + ratings[1] - 3000.0).abs() < 1e-9);
        // One virtual draw: 3.5 of 5, E = 0.7, difference 400 log10(7/3) = 147.19...
        let ratings = fit_elo(2, &results, &EloOptions::default()).unwrap();
        assert!((ratings[0] - ratings[1] - 400.0 * (7.0f64 / 3.0).log10()).abs() < 1e-6);
    }

    #[test]
    fn recovers_known_ratings_from_their_expected_scores() {
        // A synthetic table: every pair plays 100 games and scores exactly its expectation
        // under the true ratings, so the maximum-likelihood fit is the truth.
        let truth = [1700.0, 1500.0, 1450.0, 1350.0];
        let mut results = Vec::new();
        for a in 0..4 {
            for b in a + 1..4 {
                results.push(PairResult {
                    a,
                    b,
                    games: 100.0,
                    score_a: 100.0 * expected_score(truth[a], truth[b]),
                });
            }
        }
        let ratings = fit_elo(4, &results, &plain()).unwrap();
        for (fitted, expected) in ratings.iter().zip(truth) {
            assert!((fitted - expected).abs() < 1e-6, "{ratings:?}");
        }
        let anchored = fit_elo(
            4,
            &results,
            &EloOptions {
                anchor: EloAnchor::First(1000.0),
                ..plain()
            },
        )
        .unwrap();
        assert!((anchored[0] - 1000.0).abs() < 1e-9);
        assert!((anchored[3] - 650.0).abs() < 1e-6, "{anchored:?}");
    }

    #[test]
    fn unbounded_and_disconnected_tables_are_errors_unless_regularised() {
        let sweep = [PairResult {
            a: 0,
            b: 1,
            games: 10.0,
            score_a: 10.0,
        }];
        assert!(fit_elo(2, &sweep, &plain()).is_err());
        let ratings = fit_elo(2, &sweep, &EloOptions::default()).unwrap();
        // 10.5 of 11: difference 400 log10(21) = 528.9.
        assert!((ratings[0] - ratings[1] - 400.0 * 21f64.log10()).abs() < 1e-6);
        let apart = [
            PairResult {
                a: 0,
                b: 1,
                games: 2.0,
                score_a: 1.0,
            },
            PairResult {
                a: 2,
                b: 3,
                games: 2.0,
                score_a: 1.0,
            },
        ];
        assert!(fit_elo(4, &apart, &EloOptions::default()).is_err());
    }
}
