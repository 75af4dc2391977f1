//! Kuhn Poker as text, in SPIRAL's words (anchors: SPIRAL's KuhnPoker-v1 observation).
//!
//! Actions are named by what they mean at the moment: with no bet on the table Pass is
//! `check` and Bet is `bet`; facing a bet Pass is `fold` and Bet is `call` (SPIRAL's
//! `[check]`, `[bet]`, `[fold]`, `[call]`).

use spar_core::{Action, GameText, Player};

use crate::kuhn::{KuhnPoker, KuhnState, BET, PASS};

use super::TextView;

/// The text view of [`KuhnPoker`] (a single hand, or a match of `hands` hands).
#[derive(Debug, Clone)]
pub struct KuhnText {
    hands: usize,
}

impl Default for KuhnText {
    fn default() -> Self {
        Self { hands: 1 }
    }
}

impl TextView for KuhnPoker {
    type Text = KuhnText;
    fn text_view(&self) -> KuhnText {
        KuhnText {
            hands: self.hands(),
        }
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
        let structure = if self.hands == 1 {
            "- Each player antes 1 chip and is dealt one private card.
- Player 0 acts first. With no bet on the table a player may check or bet 1 chip; facing a bet a player may fold or call 1 chip."
                .to_string()
        } else {
            format!(
                "- The game is a match of {} hands. In every hand each player antes 1 chip and is dealt one private card from a fresh deck.
- Player 1 acts first in hand 1, and the first player alternates from hand to hand. With no bet on the table a player may check or bet 1 chip; facing a bet a player may fold or call 1 chip.
- The player with more chips after the last hand wins the match.",
                self.hands
            )
        };
        format!(
            "You are playing Kuhn Poker, a two-player zero-sum card game. Make valid actions to win.

Game rules:
- The deck has three cards: J, Q and K (J lowest, K highest).
{structure}
- If both players check, or a bet is called, the higher card wins the pot. A player who folds loses the pot.

Actions:
- [check]: pass without betting (only when no bet is on the table)
- [bet]: add 1 chip to the pot (only when no bet is on the table)
- [call]: match the opponent's bet by adding 1 chip to the pot
- [fold]: give up and let the opponent win the pot"
        )
    }

    fn role_text(&self, player: Player) -> String {
        if self.hands == 1 {
            format!("You are Player {player} in a game of Kuhn Poker.")
        } else {
            format!(
                "You are Player {player} in a {} hand match of Kuhn Poker.",
                self.hands
            )
        }
    }

    fn state_text(&self, state: &KuhnState, player: Player) -> String {
        let mut lines = Vec::new();
        if self.hands > 1 {
            for (i, hand) in state.finished_hands().iter().enumerate() {
                let amount = hand.chips[player].abs();
                let unit = if amount == 1 { "chip" } else { "chips" };
                let result = if hand.chips[player] > 0 {
                    format!("you won {amount} {unit}")
                } else {
                    format!("you lost {amount} {unit}")
                };
                let reveal = if hand.showdown {
                    format!(
                        ", showdown: your {} against {}",
                        KuhnState::card_name(hand.cards[player]),
                        KuhnState::card_name(hand.cards[1 - player])
                    )
                } else {
                    String::new()
                };
                lines.push(format!(
                    "Hand {}: your card {}, betting: {}{reveal}; {result}.",
                    i + 1,
                    KuhnState::card_name(hand.cards[player]),
                    betting_words(&hand.betting, hand.first)
                ));
            }
            let chips = state.chips();
            lines.push(format!(
                "Chips so far: you {:+}, your opponent {:+}.",
                chips[player],
                chips[1 - player]
            ));
            lines.push(format!(
                "Hand {} of {} (Player {} acts first).",
                state.hand_index() + 1,
                self.hands,
                state.first_actor()
            ));
        }
        let card = match state.card(player) {
            Some(card) => format!("Your card is: {}", KuhnState::card_name(card)),
            None => "You have not been dealt a card yet.".to_string(),
        };
        let betting = if state.betting().is_empty() {
            "Betting so far: none.".to_string()
        } else {
            format!(
                "Betting so far: {}.",
                betting_words(state.betting(), state.first_actor())
            )
        };
        let pot: f64 = state.contributions().iter().sum();
        lines.extend([card, betting, format!("Pot: {pot} chips.")]);
        lines.join("\n")
    }

    fn action_name(&self, state: &KuhnState, _player: Player, action: Action) -> String {
        verb(action, facing_bet(state)).to_string()
    }
}

/// A hand's betting in words (`Player 1 checked, Player 0 bet`).
fn betting_words(betting: &[Action], first: Player) -> String {
    let mut facing = false;
    let moves: Vec<String> = betting
        .iter()
        .enumerate()
        .map(|(i, &action)| {
            let word = format!(
                "Player {} {}",
                (first + i) % 2,
                past_tense(verb(action, facing))
            );
            facing |= action == BET;
            word
        })
        .collect();
    moves.join(", ")
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
    use spar_core::{Env, Game, State, StepOutcome, TextGame, TextOptions};

    #[test]
    fn text_conformance() {
        let game = KuhnPoker::new();
        check_text_conformance(
            &game,
            &KuhnText::default(),
            &Conformance {
                playthroughs: 2_000,
                private_chance: Some(private_chance),
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn a_million_adversarial_completions() {
        let legal = check_parser_robustness(&KuhnPoker::new(), &KuhnText::default(), 1_000_000, 3);
        assert!(legal > 0);
    }

    #[test]
    fn views_full_norules_and_compact() {
        let game = KuhnPoker::new();
        let mut state = game.new_initial_state();
        state.apply_action(2); // player 0: K
        state.apply_action(0); // player 1: J
        state.apply_action(PASS);
        let env = |view| {
            TextGame::new(
                game.clone(),
                KuhnText::default(),
                TextOptions {
                    view,
                    ..TextOptions::default()
                },
            )
        };
        let full = env(spar_core::View::Full).observation_at(&state, 1);
        assert!(full.system.contains("Kuhn Poker") && full.prompt().contains("Your card is: J"));
        let norules = env(spar_core::View::NoRules).observation_at(&state, 1);
        assert!(norules.system.is_empty());
        assert_eq!(norules.prompt(), full.prompt());
        let compact = env(spar_core::View::Compact).observation_at(&state, 1);
        assert!(compact.system.is_empty());
        // OpenSpiel's information-state string: card 0 (J), then the pass.
        assert_eq!(
            compact.full_prompt(),
            "Player 1\n\n0p\n\nLegal actions: [check], [bet]"
        );
        assert_eq!(
            "compact".parse::<spar_core::View>(),
            Ok(spar_core::View::Compact)
        );
        assert!("tiny".parse::<spar_core::View>().is_err());
    }

    #[test]
    fn names_follow_the_betting() {
        let game = KuhnPoker::new();
        let mut state = game.new_initial_state();
        state.apply_action(2);
        state.apply_action(0);
        assert_eq!(KuhnText::default().action_name(&state, 0, PASS), "check");
        assert_eq!(KuhnText::default().action_name(&state, 0, BET), "bet");
        state.apply_action(BET);
        assert_eq!(KuhnText::default().action_name(&state, 1, PASS), "fold");
        assert_eq!(KuhnText::default().action_name(&state, 1, BET), "call");
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

    fn five_hands() -> KuhnPoker {
        KuhnPoker::from_spec(&spar_core::GameSpec::parse("kuhn(hands=5)").unwrap()).unwrap()
    }

    #[test]
    fn match_text_conformance() {
        let game = five_hands();
        check_text_conformance(
            &game,
            &game.text_view(),
            &Conformance {
                playthroughs: 1_000,
                private_chance: Some(private_chance),
                reveals: Some(crate::kuhn::showdown_revealed),
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn match_prompt_snapshot() {
        let mut env = text_env(five_hands(), TextOptions::default());
        env.reset(4);
        // Play until hand 3 with scripted answers (check whenever possible, else call).
        while env.state().hand_index() < 2 {
            let player = env.current_player().unwrap();
            let names = env.legal_action_names();
            let answer = if names.iter().any(|(_, n)| n == "check") {
                "check"
            } else {
                "call"
            };
            env.step(player, &format!("\\boxed{{{answer}}}"));
        }
        let player = env.current_player().unwrap();
        assert_eq!(player, env.state().first_actor());
        let observation = env.observation(player);
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
    }
}
