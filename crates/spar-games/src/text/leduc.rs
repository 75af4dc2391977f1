//! Leduc Hold'em as text: the player's card, the public card once dealt, each round's
//! betting, the pot. Actions are `fold`, `check` (a call when nothing is owed), `call` and
//! `raise`.

use spar_core::{Action, GameText, Player};

use crate::leduc::{LeducPoker, LeducState, CALL, FOLD};

use super::TextView;

/// The text view of [`LeducPoker`].
#[derive(Debug, Clone, Default)]
pub struct LeducText;

impl TextView for LeducPoker {
    type Text = LeducText;
    fn text_view(&self) -> LeducText {
        LeducText
    }
}

fn verb(action: Action, facing: bool) -> &'static str {
    match action {
        FOLD => "fold",
        CALL if facing => "call",
        CALL => "check",
        _ => "raise",
    }
}

fn past_tense(verb: &str) -> &'static str {
    match verb {
        "fold" => "folded",
        "call" => "called",
        "check" => "checked",
        _ => "raised",
    }
}

/// One round's betting in words, replaying who owed what.
fn round_text(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "none yet".to_string();
    }
    let mut facing = false;
    let words: Vec<String> = actions
        .iter()
        .enumerate()
        .map(|(i, &action)| {
            let word = format!("Player {} {}", i % 2, past_tense(verb(action, facing)));
            facing = action == crate::leduc::RAISE;
            word
        })
        .collect();
    words.join(", ")
}

impl GameText<LeducState> for LeducText {
    fn rules(&self) -> String {
        "You are playing Leduc Hold'em, a two-player zero-sum poker game. Make valid actions to win.

Game rules:
- The deck has six cards: two Jacks (J), two Queens (Q) and two Kings (K).
- Each player antes 1 chip and is dealt one private card.
- There are two betting rounds. After the first, one public card is dealt face up.
- Player 0 acts first in each round. A raise adds 2 chips in round 1 and 4 chips in round 2 on top of matching the opponent; at most 2 raises per round.
- A round ends when a player calls (or checks after a check). A player who folds loses the chips they put in.
- At showdown, a private card that pairs the public card wins; otherwise the higher card wins; equal ranks split the pot.

Actions:
- [check]: pass without betting (only when nothing is owed)
- [call]: match the opponent's raise
- [raise]: raise by the round's raise size
- [fold]: give up (only when facing a raise)"
            .to_string()
    }

    fn role_text(&self, player: Player) -> String {
        format!("You are Player {player} in a game of Leduc Hold'em.")
    }

    fn state_text(&self, state: &LeducState, player: Player) -> String {
        let mut lines = vec![match state.private_card(player) {
            Some(card) => format!("Your card is: {}", LeducState::rank_name(card)),
            None => "You have not been dealt a card yet.".to_string(),
        }];
        lines.push(match state.public_card() {
            Some(card) => format!("Public card: {}", LeducState::rank_name(card)),
            None => "Public card: not dealt yet".to_string(),
        });
        lines.push(format!(
            "Round 1 betting: {}",
            round_text(state.round_actions(0))
        ));
        if state.public_card().is_some() {
            lines.push(format!(
                "Round 2 betting: {}",
                round_text(state.round_actions(1))
            ));
        }
        let paid = state.contributions();
        lines.push(format!(
            "Pot: {} chips (you put in {}, your opponent {}).",
            paid[0] + paid[1],
            paid[player],
            paid[1 - player]
        ));
        lines.join("\n")
    }

    fn action_name(&self, state: &LeducState, _player: Player, action: Action) -> String {
        verb(action, state.facing_bet()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leduc::private_chance;
    use crate::text::text_env;
    use spar_core::testing::{check_parser_robustness, check_text_conformance, Conformance};
    use spar_core::{Env, TextOptions};

    #[test]
    fn text_conformance() {
        check_text_conformance(
            &LeducPoker::new(),
            &LeducText,
            &Conformance {
                playthroughs: 2_000,
                private_chance: Some(private_chance),
                ..Conformance::default()
            },
        );
    }

    #[test]
    fn a_million_adversarial_completions() {
        assert!(check_parser_robustness(&LeducPoker::new(), &LeducText, 1_000_000, 13) > 0);
    }

    #[test]
    fn prompt_snapshot_and_a_fold() {
        let mut env = text_env(LeducPoker::new(), TextOptions::default());
        env.reset(2);
        assert!(!env.step(0, "\\boxed{raise}").done);
        let observation = env.observation(1);
        assert_eq!(
            observation.legal_actions,
            Some(vec!["fold".into(), "call".into(), "raise".into()])
        );
        insta::assert_snapshot!(format!(
            "--- system ---\n{}\n--- prompt ---\n{}",
            observation.system,
            observation.prompt()
        ));
        assert!(env.step(1, "\\boxed{fold}").done);
        assert_eq!(env.returns(), vec![1.0, -1.0]);
    }
}
