//! Checking a self-play config once it is parsed: ranges, server URLs, and what refers to
//! what (every game of the run exists, `eval.exact_games` and per-game `eval.opponents` name
//! games of the run). Errors name the key.

use super::{Opponent, TrainConfig};
use crate::error::{Error, Result};
use crate::objectives::advantages::check_fits;

impl TrainConfig {
    /// Checks ranges and names.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        if self.game.names.iter().any(|n| n.trim().is_empty()) {
            return bad("game.names: an entry is empty".into());
        }
        // Every game of the run exists and takes its parameters (the registry's error lists
        // the games).
        for name in self.game.games() {
            if let Err(e) = spar_games::registry::game_info(&name) {
                return bad(format!("{}: {e}", self.game.names_key()));
            }
        }
        if !(0.0..1.0).contains(&self.advantage.decay) {
            return bad(format!(
                "advantage.decay {} is not in [0, 1)",
                self.advantage.decay
            ));
        }
        if !(self.advantage.eps.is_finite() && self.advantage.eps >= 0.0) {
            return bad(format!(
                "advantage.eps must be a finite number >= 0, got {}",
                self.advantage.eps
            ));
        }
        if self.ppo.epochs == 0 || self.ppo.minibatch_size == 0 || self.rollout.episodes == 0 {
            return bad("ppo.epochs, ppo.minibatch_size and rollout.episodes must be >= 1".into());
        }
        self.check_estimator_fits()?;
        if !(self.ppo.clip > 0.0 && self.ppo.normaliser > 0.0) {
            return bad("ppo.clip and ppo.normaliser must be positive".into());
        }
        if self.rollout.temperature.is_nan()
            || self.rollout.temperature <= 0.0
            || self.rollout.max_tokens == 0
        {
            return bad("rollout.temperature must be > 0 and rollout.max_tokens >= 1".into());
        }
        for url in &self.rollout.servers {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return bad(format!(
                    "rollout.servers: {url:?} is not an http:// or https:// URL (e.g. \
                     \"http://127.0.0.1:8000/v1\")"
                ));
            }
        }
        if !(self.rollout.server_timeout > 0.0 && self.rollout.server_timeout.is_finite()) {
            return bad(format!(
                "rollout.server_timeout must be a positive number of seconds, got {}",
                self.rollout.server_timeout
            ));
        }
        crate::config::check_non_negative(&[
            ("ppo.kl_coef", self.ppo.kl_coef),
            ("ppo.entropy_coef", self.ppo.entropy_coef),
            ("ppo.sft_coef", self.ppo.sft_coef),
        ])?;
        crate::config::check_positive(&[("ppo.learning_rate", self.ppo.learning_rate)])?;
        self.check_magnet()?;
        self.model.validate()?;
        let run_games: Vec<String> = self
            .game
            .games()
            .iter()
            .filter_map(|g| spar_core::GameSpec::parse(g).ok().map(|s| s.name))
            .collect();
        for g in &self.eval.exact_games {
            if !run_games.contains(g) {
                return bad(format!(
                    "eval.exact_games: {g:?} is not a game of this run ({})",
                    run_games.join(", ")
                ));
            }
        }
        for entry in &self.eval.opponents {
            if let Some((_, game)) = entry.rsplit_once('@') {
                let known = spar_games::registry::GAMES.iter().any(|g| g.name == game);
                if known && !run_games.iter().any(|g| g == game) {
                    return bad(format!(
                        "eval.opponents: {entry:?} is for the game {game:?}, which this run \
                         does not play ({})",
                        run_games.join(", ")
                    ));
                }
            }
        }
        crate::config::check_at_least_one(&[
            ("run.checkpoint_every", self.run.checkpoint_every),
            ("run.max_consecutive_skips", self.run.max_consecutive_skips),
        ])?;
        Ok(())
    }
}

impl TrainConfig {
    /// [`check_fits`] on self-play's groups: a role's games in a step, `rollout.episodes` of
    /// them in self-play and the seat's share (`episodes / players`) against an opponent.
    fn check_estimator_fits(&self) -> Result<()> {
        if !self.advantage.estimator.compares_within_groups() {
            return Ok(());
        }
        let episodes = self.rollout.episodes;
        let (smallest, why) = match self.rollout.opponent {
            Opponent::SelfPlay => (episodes, format!("rollout.episodes = {episodes}")),
            _ => {
                let players = self
                    .game
                    .games()
                    .iter()
                    .filter_map(|g| spar_games::registry::game_info(g).ok())
                    .map(|info| info.num_players)
                    .max()
                    .unwrap_or(1)
                    .max(1);
                (
                    episodes / players,
                    format!(
                        "rollout.episodes = {episodes} split between {players} seats against \
                         rollout.opponent = {:?}",
                        self.rollout.opponent.name()
                    ),
                )
            }
        };
        check_fits(
            self.advantage.estimator,
            "advantage.estimator",
            smallest,
            &why,
        )
    }
}

impl TrainConfig {
    /// `ppo.magnet_rate` and `ppo.kl_exact`: in range, and with what they act on.
    fn check_magnet(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(format!("config: {m}")));
        let p = &self.ppo;
        if !(0.0..=1.0).contains(&p.magnet_rate) {
            return bad(format!(
                "ppo.magnet_rate {} is not in [0, 1] (the fraction of the way the magnet moves \
                 to the policy each step; 0: a fixed magnet)",
                p.magnet_rate
            ));
        }
        if p.magnet_rate > 0.0 && p.kl_coef == 0.0 {
            return bad(
                "ppo.magnet_rate moves the magnet of the KL term, but ppo.kl_coef = 0: set \
                 ppo.kl_coef > 0 (e.g. 0.2) or ppo.magnet_rate = 0"
                    .into(),
            );
        }
        if p.magnet_rate > 0.0 && self.model.lora.is_some() {
            return bad(
                "ppo.magnet_rate needs full fine-tuning (the magnet trails every weight), but \
                 [model.lora] is set: remove [model.lora] or set ppo.magnet_rate = 0"
                    .into(),
            );
        }
        if p.kl_exact && self.rollout.policy != crate::rollout::Decode::Legal {
            return bad(format!(
                "ppo.kl_exact computes the KL over the legal actions, which needs \
                 rollout.policy = \"legal\" (got {:?}); set it or ppo.kl_exact = false",
                crate::config::choice::Choice::name(self.rollout.policy)
            ));
        }
        Ok(())
    }
}
