//! Kuhn Poker as text, in SPIRAL's words (anchors: SPIRAL's KuhnPoker-v1 observation).
//!
//! Actions are named by what they mean at the moment: with no bet on the table Pass is
//! `check` and Bet is `bet`; facing a bet Pass is `fold` and Bet is `call` (SPIRAL's
//! `[check]`, `[bet]`, `[fold]`, `[call]`).

use spar_core::{Action, GameText, Player};

use crate::kuhn::{KuhnPoker, KuhnState, BET, PASS};

use super::TextView;

/// The text view of [`KuhnPoker`].
#[derive(Debug, Clone, Default)]
pub struct KuhnText;

impl TextView for KuhnPoker {
    type Text = KuhnText;
    fn text_view(&self) -> KuhnText {
        KuhnText
    }
}

fn facing_bet(state: &KuhnState) -> bool {
    state.betting().contains(&BET)
}

fn verb(action: Action, facing: bool) -> &'static str {
    match (action, facing) {
        (PASS, false) => "check",
        (PASS, true) => "fold",
        (_, false) => "bet",
        (_, true) => "call",
    }
}

impl GameText<KuhnState> for KuhnText {
    fn rules(&self) -> String {
        "You are playing Kuhn Poker, a two-player zero-sum card game. Make valid actions to win.

Game rules:
- The deck has three cards: J, Q and K (J lowest, K highest).
- Each player antes 1 chip and is dealt one private card.
- Player 0 acts first. With no bet on the table a player may check or bet 1 chip; facing a bet a player may fold or call 1 chip.
- If both players check, or a bet is called, the higher card wins the pot. A player who folds loses the pot.

Actions:
- [check]: pass without betting (only when no bet is on the table)
- [bet]: add 1 chip to the pot (only when no bet is on the table)
- [call]: match the opponent's bet by adding 1 chip to the pot
- [fold]: give up and let the opponent win the pot"
            .to_string()
    }

    fn role_text(&self, player: Player) -> String {
        format!("You are Player {player} in a game of Kuhn Poker.")
    }

    fn state_text(&self, state: &KuhnState, player: Player) -> String {
        let card = match state.card(player) {
            Some(card) => format!("Your card is: {}", KuhnState::card_name(card)),
            None => "You have not been dealt a card yet.".to_string(),
        };
        let mut moves = Vec::new();
        let mut facing = false;
        for (i, &action) in state.betting().iter().enumerate() {
            moves.push(format!(
                "Player {} {}",
                i % 2,
                past_tense(verb(action, facing))
            ));
            facing |= action == BET;
        }
        let betting = if moves.is_empty() {
            "Betting so far: none.".to_string()
        } else {
            format!("Betting so far: {}.", moves.join(", "))
        };
        let pot: f64 = state.contributions().iter().sum();
        format!("{card}\n{betting}\nPot: {pot} chips.")
    }

    fn action_name(&self, state: &KuhnState, _player: Player, action: Action) -> String {
        verb(action, facing_bet(state)).to_string()
    }
}

fn past_tense(verb: &str) -> &'static str {
    match verb {
        "check" => "checked",
        "fold" => "folded",
        "bet" => "bet",
        _ => "called",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kuhn::private_chance;
    use crate::text::text_env;
    use spar_core::testing::{check_parser_robustness, check_text_conformance, Conformance};
    use spar_core::{Env, Game, State, StepOutcome, TextOptions};

    #[test]
    fn text_conformance() {
        let game = KuhnPoker::new();
        check_text_conformance(
            &game,
            &KuhnText,
            &Conformance {
                playthroughs: 2_000,
                private_chance: Some(private_chance),
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn a_million_adversarial_completions() {
        let legal = check_parser_robustness(&KuhnPoker::new(), &KuhnText, 1_000_000, 3);
        assert!(legal > 0);
    }

    #[test]
    fn names_follow_the_betting() {
        let game = KuhnPoker::new();
        let mut state = game.new_initial_state();
        state.apply_action(2);
        state.apply_action(0);
        assert_eq!(KuhnText.action_name(&state, 0, PASS), "check");
        assert_eq!(KuhnText.action_name(&state, 0, BET), "bet");
        state.apply_action(BET);
        assert_eq!(KuhnText.action_name(&state, 1, PASS), "fold");
        assert_eq!(KuhnText.action_name(&state, 1, BET), "call");
    }

    #[test]
    fn prompt_snapshot_and_a_played_hand() {
        let mut env = text_env(KuhnPoker::new(), TextOptions::default());
        env.reset(1);
        let player = env.current_player().unwrap();
        let observation = env.observation(player);
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
        let step = env.step(player, "I hold a card. \\boxed{bet}");
        assert!(matches!(
            step.outcome,
            StepOutcome::Move {
                action: Some(BET),
                ..
            }
        ));
        let step = env.step(1, "\\boxed{[fold]}");
        assert!(step.done);
        assert_eq!(env.returns(), vec![1.0, -1.0]);
        let turns = &env.transcript().turns;
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[1].role.to_string(), "kuhn/player1");
        assert!(turns[1].prompt.contains("Player 0 bet"));
    }
}
