//! Seeded matches between policies: single games, head-to-head series, round robins with
//! Elo ratings.
//!
//! Everything is a pure function of the seed. A game uses two random streams derived from
//! its seed: one for chance outcomes, one for the players' action sampling. In a
//! head-to-head series the games come in pairs with the same seed and swapped seats
//! (game `2k`: first policy in seat 0; game `2k + 1`: in seat 1), so both seat assignments
//! see the same chance stream, which lowers the variance of the comparison (as in duplicate
//! bridge). With an odd number of games the last pair is incomplete.
//!
//! Outcomes: in a two-player game a player **wins** when its return exceeds the
//! opponent's, **draws** on equal returns, and **loses** otherwise. The statistics of each
//! [`Record`] (`n` games, `w` wins, returns `x_1..x_n`):
//!
//! * win rate `p = w / n` with the 95% **Wilson** score interval
//!   `(p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`, `z = 1.959964`;
//! * score `(w + draws / 2) / n`;
//! * mean return `m` with the 95% **normal** interval `m +- z s / sqrt(n)`, `s` the sample
//!   standard deviation (divisor `n - 1`; no interval for `n < 2`).

use spar_core::{sample_action, seeded_rng, Game, Policy, State, Turn};

use crate::elo::{fit_elo, EloOptions, PairResult};
use crate::error::{Error, Result};

/// The two-sided 95% standard normal quantile.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// The results of one player over a set of games (see the module doc for the statistics).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Record {
    /// Games played.
    pub games: usize,
    /// Games won.
    pub wins: usize,
    /// Games drawn.
    pub draws: usize,
    /// Games lost.
    pub losses: usize,
    /// `wins / games`.
    pub win_rate: f64,
    /// 95% Wilson interval of the win rate.
    pub win_rate_ci95: Interval,
    /// `(wins + draws / 2) / games`.
    pub score: f64,
    /// Mean return.
    pub mean_return: f64,
    /// 95% normal interval of the mean return (`None` with fewer than two games).
    pub mean_return_ci95: Option<Interval>,
}

impl Record {
    /// The record of a player from `(own return, opponent's return)` per game.
    pub fn from_games(games: &[(f64, f64)]) -> Self {
        let n = games.len();
        let wins = games.iter().filter(|(own, other)| own > other).count();
        let draws = games.iter().filter(|(own, other)| own == other).count();
        let returns: Vec<f64> = games.iter().map(|&(own, _)| own).collect();
        let (mean_return, mean_return_ci95) = mean_interval(&returns);
        let (win_rate, score) = if n == 0 {
            (0.0, 0.0)
        } else {
            (
                wins as f64 / n as f64,
                (wins as f64 + draws as f64 / 2.0) / n as f64,
            )
        };
        Record {
            games: n,
            wins,
            draws,
            losses: n - wins - draws,
            win_rate,
            win_rate_ci95: wilson_interval(wins, n),
            score,
            mean_return,
            mean_return_ci95,
        }
    }
}

/// The 95% Wilson score interval for `successes` out of `trials` (`[0, 1]` when there are
/// no trials).
pub fn wilson_interval(successes: usize, trials: usize) -> Interval {
    if trials == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z_95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Interval {
        low: (center - half).max(0.0),
        high: (center + half).min(1.0),
    }
}

/// The mean of `values` and its 95% normal interval (none with fewer than two values).
pub fn mean_interval(values: &[f64]) -> (f64, Option<Interval>) {
    let n = values.len();
    if n == 0 {
        return (0.0, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None);
    }
    let variance = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = Z_95 * (variance / n as f64).sqrt();
    (
        mean,
        Some(Interval {
            low: mean - half,
            high: mean + half,
        }),
    )
}

/// Plays one game: `players[p]` moves for player `p`, chance outcomes and actions are
/// sampled from streams derived from `seed`. Returns the final returns; a player that gives
/// no move (an empty distribution) forfeits ([`spar_core::forfeit_returns`]).
pub fn play<G: Game>(game: &G, players: &[&dyn Policy<G::State>], seed: u64) -> Result<Vec<f64>> {
    let info = game.info();
    if players.len() != info.num_players {
        return Err(Error::WrongNumberOfPolicies {
            game: info.spec.clone(),
            expected: info.num_players,
            got: players.len(),
        });
    }
    let mut chance_rng = seeded_rng(spar_core::seeds::game(seed, 0));
    let mut action_rng = seeded_rng(spar_core::seeds::game(seed, 1));
    let mut state = game.new_initial_state();
    loop {
        match state.turn() {
            Turn::Terminal => return Ok(state.returns()),
            Turn::Chance => {
                let action = sample_action(&state.chance_outcomes(), &mut chance_rng);
                state.apply_action(action);
            }
            Turn::Player(player) => {
                let distribution = players[player].action_probabilities(&state);
                if distribution.is_empty() {
                    // No move (an invalid answer or a failed call): a forfeit.
                    return Ok(spar_core::forfeit_returns(player, info.num_players));
                }
                let action = sample_action(&distribution, &mut action_rng);
                state.apply_action(action);
            }
        }
    }
}

/// A head-to-head series between two policies (see the module doc).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HeadToHead {
    /// The game's specification.
    pub game: String,
    /// The two policies' names, first and second.
    pub players: [String; 2],
    /// Games played.
    pub games: usize,
    /// The seed of the series.
    pub seed: u64,
    /// Each policy's record over all games.
    pub overall: [Record; 2],
    /// `by_seat[i][s]`: policy `i`'s record in the games where it sat in seat `s`.
    pub by_seat: [[Record; 2]; 2],
}

/// Plays `games` games between `a` and `b` in a two-player game, alternating seats (see the
/// module doc); deterministic given `seed`.
pub fn head_to_head<G: Game>(
    game: &G,
    a: &dyn Policy<G::State>,
    b: &dyn Policy<G::State>,
    games: usize,
    seed: u64,
) -> Result<HeadToHead> {
    let info = game.info();
    if info.num_players != 2 {
        return Err(Error::WrongNumberOfPolicies {
            game: info.spec.clone(),
            expected: info.num_players,
            got: 2,
        });
    }
    // results[i][s]: (own, opponent) returns of policy i in seat s.
    let mut results: [[Vec<(f64, f64)>; 2]; 2] = Default::default();
    for index in 0..games {
        let pair_seed = spar_core::seeds::game(seed, (index / 2) as u64);
        let a_seat = index % 2;
        let seats: [&dyn Policy<G::State>; 2] = if a_seat == 0 { [a, b] } else { [b, a] };
        let returns = play(game, &seats, pair_seed)?;
        let b_seat = 1 - a_seat;
        results[0][a_seat].push((returns[a_seat], returns[b_seat]));
        results[1][b_seat].push((returns[b_seat], returns[a_seat]));
    }
    let overall = |i: usize| {
        let all: Vec<(f64, f64)> = results[i].iter().flatten().copied().collect();
        Record::from_games(&all)
    };
    Ok(HeadToHead {
        game: info.spec.clone(),
        players: [a.name(), b.name()],
        games,
        seed,
        overall: [overall(0), overall(1)],
        by_seat: [
            [
                Record::from_games(&results[0][0]),
                Record::from_games(&results[0][1]),
            ],
            [
                Record::from_games(&results[1][0]),
                Record::from_games(&results[1][1]),
            ],
        ],
    })
}

/// Every pair of players, head to head, with Elo ratings fitted to all results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoundRobin {
    /// The players' names, in the order given.
    pub players: Vec<String>,
    /// One series per pair `(i, j)`, `i < j`, in lexicographic order; in each, `players[0]`
    /// is policy `i`.
    pub matches: Vec<HeadToHead>,
    /// Elo ratings (default [`EloOptions`]: one virtual draw per pair, mean 1500), in the
    /// order of `players`.
    pub elo: Vec<f64>,
}

/// Plays `games_per_pair` games between every pair of `players` (pair number `k` uses a
/// seed derived from `seed` and `k`) and fits Elo ratings to the scores.
pub fn round_robin<G: Game>(
    game: &G,
    players: &[&dyn Policy<G::State>],
    games_per_pair: usize,
    seed: u64,
) -> Result<RoundRobin> {
    let mut matches = Vec::new();
    let mut results = Vec::new();
    for i in 0..players.len() {
        for j in i + 1..players.len() {
            let pair_seed = spar_core::seeds::game(seed, matches.len() as u64);
            let series = head_to_head(game, players[i], players[j], games_per_pair, pair_seed)?;
            let record = &series.overall[0];
            results.push(PairResult {
                a: i,
                b: j,
                games: record.games as f64,
                score_a: record.wins as f64 + record.draws as f64 / 2.0,
            });
            matches.push(series);
        }
    }
    let elo = fit_elo(players.len(), &results, &EloOptions::default())?;
    Ok(RoundRobin {
        players: players.iter().map(|p| p.name()).collect(),
        matches,
        elo,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spar_core::{TabularPolicy, UniformRandom};
    use spar_games::kuhn::{always_pass_policy, nash_policy, KuhnPoker};

    #[test]
    fn wilson_interval_matches_a_hand_computation() {
        // 7 of 10, z = 1.959964: z^2 = 3.841459; center = (0.7 + 0.192073) / 1.384146 =
        // 0.644493; half = 1.959964 / 1.384146 * sqrt(0.021 + 0.009604) = 0.247715.
        let interval = wilson_interval(7, 10);
        assert!((interval.low - 0.396_778).abs() < 1e-5, "{interval:?}");
        assert!((interval.high - 0.892_208).abs() < 1e-5, "{interval:?}");
        // 0 of 5 keeps a positive upper end: z^2/(n + z^2) = 3.841459 / 8.841459 = 0.434479.
        let zero = wilson_interval(0, 5);
        assert_eq!(zero.low, 0.0);
        assert!((zero.high - 0.434_479).abs() < 1e-5, "{zero:?}");
    }

    #[test]
    fn mean_interval_matches_a_hand_computation() {
        // Returns 1, -1, 2, 2: mean 1, sample variance (0 + 4 + 1 + 1) / 3 = 2,
        // half width 1.959964 * sqrt(2 / 4) = 1.385904.
        let (mean, interval) = mean_interval(&[1.0, -1.0, 2.0, 2.0]);
        assert_eq!(mean, 1.0);
        let interval = interval.unwrap();
        assert!(
            (interval.low - (1.0 - 1.385_904)).abs() < 1e-6,
            "{interval:?}"
        );
        assert!(
            (interval.high - (1.0 + 1.385_904)).abs() < 1e-6,
            "{interval:?}"
        );
        assert_eq!(mean_interval(&[3.0]), (3.0, None));
    }

    #[test]
    fn record_counts_wins_draws_and_losses() {
        let record = Record::from_games(&[(1.0, -1.0), (0.0, 0.0), (-2.0, 2.0), (2.0, -2.0)]);
        assert_eq!((record.wins, record.draws, record.losses), (2, 1, 1));
        assert_eq!(record.win_rate, 0.5);
        assert_eq!(record.score, 0.625);
        assert_eq!(record.mean_return, 0.25);
    }

    #[test]
    fn play_is_seeded_and_checks_the_number_of_players() {
        let game = KuhnPoker::new();
        let players: [&dyn Policy<_>; 2] = [&UniformRandom, &UniformRandom];
        let outcomes = |seed: u64| {
            (0..40)
                .map(|i| play(&game, &players, seed + i).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(outcomes(5), outcomes(5));
        assert_ne!(outcomes(5), outcomes(6));
        assert!(play(&game, &players[..1], 0).is_err());
    }

    #[test]
    fn sampled_play_agrees_with_the_exact_value() {
        // Nash against Nash: the exact value for player 0 is -1/18 (Kuhn 1950). The mean
        // of 20,000 seeded games must cover it with its 95% interval.
        let game = KuhnPoker::new();
        let nash = nash_policy(0.2);
        let players: [&dyn Policy<_>; 2] = [&nash, &nash];
        let returns: Vec<f64> = (0..20_000)
            .map(|seed| play(&game, &players, seed).unwrap()[0])
            .collect();
        let (mean, interval) = mean_interval(&returns);
        let interval = interval.unwrap();
        assert!(
            interval.low <= -1.0 / 18.0 && -1.0 / 18.0 <= interval.high,
            "mean {mean}, interval {interval:?}"
        );
        assert!(interval.high - interval.low < 0.05, "{interval:?}");
    }

    #[test]
    fn head_to_head_is_deterministic_and_seat_balanced() {
        let game = KuhnPoker::new();
        let nash = nash_policy(0.2);
        let series = head_to_head(&game, &nash, &UniformRandom, 101, 9).unwrap();
        assert_eq!(
            series,
            head_to_head(&game, &nash, &UniformRandom, 101, 9).unwrap()
        );
        assert_eq!(series.by_seat[0][0].games, 51);
        assert_eq!(series.by_seat[0][1].games, 50);
        assert_eq!(series.by_seat[1][1].games, 51);
        let (a, b) = (&series.overall[0], &series.overall[1]);
        assert_eq!(a.wins, b.losses);
        assert_eq!(a.draws, b.draws);
        assert!((a.mean_return + b.mean_return).abs() < 1e-12, "zero-sum");
    }

    #[test]
    fn always_pass_against_itself_splits_by_card() {
        // Both players always check: the higher card wins 1. With seats swapped on the same
        // deal, each pair of games is one win for each policy, so the records are equal.
        let game = KuhnPoker::new();
        let pass = always_pass_policy();
        let series = head_to_head(&game, &pass, &pass, 200, 1).unwrap();
        assert_eq!(series.overall[0].wins, 100);
        assert_eq!(series.overall[0].mean_return, 0.0);
    }

    #[test]
    fn round_robin_ranks_a_dominated_policy_last() {
        // Always-pass never wins a showdown it could have avoided and never steals a pot;
        // over 400 games per pair the Nash policy and uniform play both beat it.
        let game = KuhnPoker::new();
        let nash = nash_policy(0.2);
        let pass: TabularPolicy = always_pass_policy();
        let players: [&dyn Policy<_>; 3] = [&nash, &UniformRandom, &pass];
        let table = round_robin(&game, &players, 400, 3).unwrap();
        assert_eq!(table.matches.len(), 3);
        assert!((table.elo.iter().sum::<f64>() / 3.0 - 1500.0).abs() < 1e-9);
        assert!(
            table.elo[0] > table.elo[2] && table.elo[1] > table.elo[2],
            "{:?}",
            table.elo
        );
    }
}
