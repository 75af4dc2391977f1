//! Simple Negotiation as text, in SPIRAL's words: inventories, values, the pending offer,
//! and the bracketed tokens `[Offer: 3 Wood -> 2 Gold]`, `[Accept]`, `[Deny]`, `[Pass]`.

use spar_core::{Action, GameText, Player, State};

use crate::negotiation::{
    Negotiation, NegotiationConfig, NegotiationState, Resource, ACCEPT, DENY, PASS, VALUES,
};

use super::TextView;

/// The text view of [`Negotiation`].
#[derive(Debug, Clone)]
pub struct NegotiationText {
    config: NegotiationConfig,
}

impl TextView for Negotiation {
    type Text = NegotiationText;
    fn text_view(&self) -> NegotiationText {
        NegotiationText {
            config: *self.config(),
        }
    }
}

impl NegotiationText {
    fn name(&self, action: Action) -> String {
        match action {
            PASS => "Pass".to_string(),
            ACCEPT => "Accept".to_string(),
            DENY => "Deny".to_string(),
            offer => match self.config.offer(offer) {
                Some(offer) => offer.to_string(),
                None => format!("action {offer}"),
            },
        }
    }

    /// Every move so far with its player: a response keeps the turn, a proposal ends it.
    fn moves(&self, history: &[Action]) -> Vec<String> {
        let mut turn = 0;
        history
            .iter()
            .map(|&action| {
                let line = format!("Player {}: [{}]", turn % 2, self.name(action));
                if action != ACCEPT && action != DENY {
                    turn += 1;
                }
                line
            })
            .collect()
    }
}

impl GameText<NegotiationState> for NegotiationText {
    fn rules(&self) -> String {
        let NegotiationConfig {
            wood,
            gold,
            max_turns,
            max_quantity,
        } = self.config;
        format!(
            "You are playing Simple Negotiation, a two-player zero-sum trading game. Make valid actions to win.

Game rules:
- There are two resources, Wood and Gold. Each player starts with {wood} Wood and {gold} Gold.
- Player 0 values Wood at {} and Gold at {} per unit; Player 1 values Wood at {} and Gold at {} per unit.
- Players take turns, Player 0 first; the game lasts {max_turns} turns.
- If your opponent's last turn ended with an offer, first answer it with [Accept] (the trade happens) or [Deny].
- Then end your turn with a new offer or [Pass]. An offer [Offer: a Wood -> b Gold] gives a Wood and asks b Gold in return (or the other way round), with a and b from 1 to {max_quantity}; both sides must own what they trade.
- At the end, the player whose inventory value grew more (at their own values) wins; equal gains are a draw.

Actions:
- [Offer: a Wood -> b Gold] or [Offer: a Gold -> b Wood]: propose a trade
- [Accept]: accept the pending offer
- [Deny]: refuse the pending offer
- [Pass]: end your turn without an offer",
            VALUES[0][0], VALUES[0][1], VALUES[1][0], VALUES[1][1]
        )
    }

    fn role_text(&self, player: Player) -> String {
        format!("You are Player {player} in Simple Negotiation.")
    }

    fn state_text(&self, state: &NegotiationState, player: Player) -> String {
        let mut lines = Vec::new();
        for p in [player, 1 - player] {
            let who = if p == player {
                "Your".to_string()
            } else {
                "Your opponent's".to_string()
            };
            lines.push(format!(
                "{who} inventory: {} Wood, {} Gold (value {}, gain {:+}).",
                state.inventory(p, Resource::Wood),
                state.inventory(p, Resource::Gold),
                state.value(p),
                state.gain(p)
            ));
        }
        lines.push(format!(
            "Turn {} of {}.",
            (state.turns_done() + 1).min(self.config.max_turns),
            self.config.max_turns
        ));
        let moves = self.moves(state.history());
        if !moves.is_empty() {
            lines.push(format!("Moves so far:\n{}", moves.join("\n")));
        }
        if let Some(offer) = state.pending_offer() {
            lines.push(format!("Pending offer to you: [{offer}]"));
        }
        lines.join("\n")
    }

    fn action_name(&self, _state: &NegotiationState, _player: Player, action: Action) -> String {
        self.name(action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::text_env;
    use spar_core::testing::{check_parser_robustness, check_text_conformance, Conformance};
    use spar_core::{Env, GameSpec, TextOptions};

    fn game() -> Negotiation {
        Negotiation::from_spec(&GameSpec::parse("negotiation").unwrap()).unwrap()
    }

    #[test]
    fn text_conformance_and_names_match_the_rules() {
        let game = game();
        let text = game.text_view();
        check_text_conformance(
            &game,
            &text,
            &Conformance {
                playthroughs: 1_000,
                ..Conformance::default()
            },
        );
        // The text view's names are the game's own action names.
        for seed in 0..50 {
            for state in spar_core::testing::random_playthrough(&game, seed) {
                if let Some(player) = state.current_player() {
                    for action in state.legal_actions() {
                        assert_eq!(
                            text.action_name(&state, player, action),
                            state.action_to_string(player, action)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_million_adversarial_completions() {
        let game = game();
        assert!(check_parser_robustness(&game, &game.text_view(), 1_000_000, 11) > 0);
    }

    #[test]
    fn prompt_snapshot_and_a_trade() {
        let mut env = text_env(game(), TextOptions::default());
        env.reset(0);
        assert!(
            !env.step(0, "I offer wood. \\boxed{[Offer: 3 Wood -> 2 Gold]}")
                .done
        );
        let observation = env.observation(1);
        assert!(observation
            .state_text
            .contains("Pending offer to you: [Offer: 3 Wood -> 2 Gold]"));
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
        assert!(!env.step(1, "\\boxed{Accept}").done);
        let state = env.state();
        assert_eq!(state.inventory(0, Resource::Wood), 7);
        assert_eq!(state.inventory(0, Resource::Gold), 12);
        // Player 0 gave 3 Wood (value 5) for 2 Gold (value 15): gain -15 + 30 = +15.
        assert_eq!(state.gain(0), 15);
        assert_eq!(state.gain(1), 45 - 10);
    }
}
