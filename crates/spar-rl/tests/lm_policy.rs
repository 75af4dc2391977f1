//! Exact tabulation of a language-model policy on Kuhn Poker.

use candle_core::{DType, Device, Tensor};
use spar_core::{Env, Game, Policy, State, TextGame, TextOptions};
use spar_games::kuhn::KuhnPoker;
use spar_games::text::TextView;
use spar_lm::checkpoint::Checkpoint;
use spar_lm::config::Config;
use spar_lm::model::init_weights;
use spar_lm::score::score_values;
use spar_lm::train::BYTE_SPECIAL_TOKENS;
use spar_lm::TextTokenizer;
use spar_rl::players::lm_policy::{tabulate, LmPolicyOptions};
use spar_rl::rollout::prompt::{completion_ids, prompt_ids};
use spar_rl::PromptStyle;

fn kuhn_env() -> TextGame<KuhnPoker, <KuhnPoker as TextView>::Text> {
    let game = KuhnPoker::new();
    let text = game.text_view();
    TextGame::new(game, text, TextOptions::default())
}

fn tiny(scale: f64) -> (Checkpoint, TextTokenizer) {
    let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS).unwrap();
    let mut config = Config::tiny(tokenizer.vocab_size(), 16, 1, 2);
    config.max_position_embeddings = 2048;
    config.eos_token_id = Some(256);
    let mut tensors = init_weights(&config, 0.2, 3, &Device::Cpu).unwrap();
    if scale == 0.0 {
        for t in tensors.values_mut() {
            *t = Tensor::zeros(t.shape(), DType::F32, &Device::Cpu).unwrap();
        }
    }
    (
        Checkpoint {
            config,
            tensors,
            tokenizer: Some(tokenizer.clone()),
        },
        tokenizer,
    )
}

/// A model whose weights are all zero gives every token probability 1/V, so the canonical
/// completion of length n has probability V^-n: the policy and the legal mass follow by hand.
#[test]
fn zero_model_policy_follows_completion_lengths() {
    let (ckpt, tok) = tiny(0.0);
    let model = ckpt.frozen().unwrap();
    let env = kuhn_env();
    let table = tabulate(&env, &model, &tok, &LmPolicyOptions::default(), |_, _| {}).unwrap();
    assert_eq!(table.policy.table.len(), 12);
    let v = tok.vocab_size() as f64;
    // Kuhn's actions are written `\boxed{check}`/`\boxed{bet}` or `\boxed{fold}`/`\boxed{call}`,
    // then the stop token: 13 + 1 and 11 + 1 bytes, or 12 + 1 and 12 + 1.
    let len = |name: &str| {
        completion_ids(&tok, &format!("\\boxed{{{name}}}"))
            .unwrap()
            .len() as i32
    };
    let mut saw_unequal = false;
    for (key, dist) in &table.policy.table {
        let mass = table.legal_mass[key];
        let lens: Vec<i32> = if key.ends_with('b') {
            vec![len("fold"), len("call")]
        } else {
            vec![len("check"), len("bet")]
        };
        let weights: Vec<f64> = lens.iter().map(|&n| v.powi(-n)).collect();
        let total: f64 = weights.iter().sum();
        for ((_, p), w) in dist.iter().zip(&weights) {
            assert!((p - w / total).abs() < 1e-9, "{key}: {dist:?}");
        }
        assert!(
            (mass / total - 1.0).abs() < 1e-6,
            "{key}: mass {mass} vs {total}"
        );
        saw_unequal |= lens[0] != lens[1];
    }
    assert!(saw_unequal);
    assert!(table.mean_outside_mass() > 0.999);
}

/// The tabulated probabilities are the model's scores of the prompts the environment really
/// shows: play to every information set through the `Env`, score there, compare.
#[test]
fn table_matches_scores_of_the_prompts_the_env_shows() {
    let (ckpt, tok) = tiny(1.0);
    let model = ckpt.frozen().unwrap();
    let mut env = kuhn_env();
    let options = LmPolicyOptions {
        style: PromptStyle::Raw,
        ..LmPolicyOptions::default()
    };
    let table = tabulate(&env, &model, &tok, &options, |_, _| {}).unwrap();
    let mut checked = 0;
    for seed in 0..40 {
        env.reset(seed);
        // Player 0 checks, then player 1 bets when possible: reaches "", "p" and "pb" nodes.
        while let Some(player) = env.current_player() {
            let observation = env.observation(player);
            let key = env.state().information_state_string(player);
            let prompt = prompt_ids(&tok, &observation, PromptStyle::Raw).unwrap();
            let legal = env.legal_action_names();
            let pairs: Vec<(Vec<u32>, Vec<u32>)> = legal
                .iter()
                .map(|(_, name)| {
                    let c = completion_ids(&tok, &format!("\\boxed{{{name}}}")).unwrap();
                    (prompt.clone(), c)
                })
                .collect();
            let logps: Vec<f64> = score_values(&model, &pairs)
                .unwrap()
                .iter()
                .map(|t| t.iter().map(|&x| f64::from(x)).sum())
                .collect();
            let max = logps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = logps.iter().map(|l| (l - max).exp()).sum();
            let row = &table.policy.table[&key];
            for (((action, p), l), (legal_action, _)) in row.iter().zip(&logps).zip(&legal) {
                assert_eq!(action, legal_action);
                assert!(((l - max).exp() / z - p).abs() < 1e-5, "{key}");
            }
            checked += 1;
            let choice = if legal.len() == 2 && player == 0 {
                0
            } else {
                1
            };
            let completion = env.completion_for(legal[choice].0);
            env.step(player, &completion);
        }
    }
    assert!(checked >= 80);
    // The table is a policy over legal actions that sums to one.
    let state = KuhnPoker::new().new_initial_state().child(0).child(1);
    let dist = table.policy.action_probabilities(&state);
    assert!((dist.iter().map(|(_, p)| p).sum::<f64>() - 1.0).abs() < 1e-9);
}
