//! The one rollout of every loop, `Rollout::play`: episodes independent of their batch,
//! scripted and random seats, action-level answers, group sampling, rewards, and the errors
//! of an environment that cannot be played as asked.

use std::sync::Arc;

use rand_chacha::ChaCha8Rng;
use spar_core::{Env, Player, TextGame, TextOptions};
use spar_games::kuhn::KuhnPoker;
use spar_games::tasks::{task_from_spec, Split, TaskEnv};
use spar_games::text::TextView;
use spar_lm::checkpoint::Checkpoint;
use spar_lm::config::Config;
use spar_lm::model::init_weights;
use spar_lm::sample::SamplingParams;
use spar_lm::train::BYTE_SPECIAL_TOKENS;
use spar_lm::{Llama, LocalEngine, TextTokenizer};
use spar_rl::rollout::{episodes, groups, Batch, Decode, Rollout, Scripted, Seat};
use spar_rl::PromptStyle;

type Kuhn = TextGame<KuhnPoker, <KuhnPoker as TextView>::Text>;

fn kuhn() -> Kuhn {
    let game = KuhnPoker::new();
    let text = game.text_view();
    TextGame::new(game, text, TextOptions::default())
}

fn model() -> (Llama, TextTokenizer) {
    let tokenizer = TextTokenizer::byte_level(&BYTE_SPECIAL_TOKENS).unwrap();
    let mut config = Config::tiny(tokenizer.vocab_size(), 16, 1, 2);
    config.max_position_embeddings = 2048;
    config.eos_token_id = Some(256);
    let tensors = init_weights(&config, 0.2, 3, &candle_core::Device::Cpu).unwrap();
    let checkpoint = Checkpoint {
        config,
        tensors,
        tokenizer: Some(tokenizer.clone()),
    };
    (checkpoint.frozen().unwrap(), tokenizer)
}

fn params() -> SamplingParams {
    SamplingParams {
        temperature: 1.0,
        max_tokens: 12,
        ..SamplingParams::default()
    }
}

/// Plays `envs` with the in-process engine, `Rollout::new`'s settings but `decode` and what
/// `adjust` changes.
fn play_with<E: Env>(
    model: &Llama,
    tokenizer: &TextTokenizer,
    envs: &mut [E],
    seats: &[Seat<E>],
    decode: Decode,
    seed: u64,
    adjust: impl FnOnce(Rollout<'_>) -> Rollout<'_>,
) -> spar_rl::Result<Batch> {
    let engine = LocalEngine { model, tokenizer };
    let params = params();
    let rollout = adjust(Rollout {
        decode,
        ..Rollout::new(&engine, tokenizer, PromptStyle::Raw, &params)
    });
    rollout.play(envs, seats, seed)
}

fn play<E: Env>(
    model: &Llama,
    tokenizer: &TextTokenizer,
    envs: &mut [E],
    seats: &[Seat<E>],
    decode: Decode,
    seed: u64,
) -> spar_rl::Result<Batch> {
    play_with(model, tokenizer, envs, seats, decode, seed, |r| r)
}

/// The texts the model wrote in episode `e`, in order.
fn texts(batch: &Batch, e: usize) -> Vec<String> {
    batch
        .turns
        .iter()
        .filter(|s| s.episode == e)
        .map(|s| s.text.clone())
        .collect()
}

/// A seat that always checks or calls (Kuhn's passive move), or never answers.
struct Passive {
    answers: bool,
}

impl Scripted<Kuhn> for Passive {
    fn name(&self) -> String {
        "passive".into()
    }

    fn answer(&self, env: &Kuhn, _player: Player, _rng: &mut ChaCha8Rng) -> Option<String> {
        let legal = env.legal_answers().expect("a game");
        self.answers.then(|| {
            legal
                .into_iter()
                .find(|a| a.contains("check") || a.contains("call"))
                .expect("check or call is always legal in Kuhn")
        })
    }
}

#[test]
fn an_episode_plays_the_same_whatever_else_is_in_its_batch() {
    let (model, tok) = model();
    for seats in [vec![], vec![Seat::Model, Seat::Random]] {
        for decode in [Decode::Sample, Decode::Legal] {
            let mut a = episodes(&kuhn, 6, 100);
            // Same deal at index 3, different deals (and so different play) elsewhere.
            let mut b: Vec<Kuhn> = (0..6u64)
                .map(|g| {
                    let mut env = kuhn();
                    env.reset(if g == 3 { 103 } else { 900 + g });
                    env
                })
                .collect();
            let first = play(&model, &tok, &mut a, &seats, decode, 7).unwrap();
            let second = play(&model, &tok, &mut b, &seats, decode, 7).unwrap();
            assert!(!texts(&first, 3).is_empty());
            assert_eq!(texts(&first, 3), texts(&second, 3), "{decode:?} {seats:?}");
            assert_eq!(first.returns[3], second.returns[3]);
            assert_eq!(first.transcripts[3], second.transcripts[3]);
            // A different seed plays differently somewhere in the batch (free text, or the
            // random seat; this tiny model's action-level policy is nearly deterministic).
            if decode == Decode::Sample || !seats.is_empty() {
                let mut c = episodes(&kuhn, 6, 100);
                let third = play(&model, &tok, &mut c, &seats, decode, 8).unwrap();
                assert_ne!(first.transcripts, third.transcripts, "{decode:?} {seats:?}");
            }
        }
    }
}

#[test]
fn samples_carry_their_role_episode_reward_and_group() {
    let (model, tok) = model();
    let mut envs = episodes(&kuhn, 6, 5);
    let batch = play_with(&model, &tok, &mut envs, &[], Decode::Legal, 11, |r| {
        Rollout { group_size: 3, ..r }
    })
    .unwrap();
    assert_eq!(batch.returns.len(), 6);
    for s in &batch.turns {
        assert_eq!(s.group, (s.episode / 3) as u64);
        assert_eq!(s.role.env, "kuhn");
        let player = s.role.seat;
        assert_eq!(s.reward, batch.returns[s.episode][player]);
        // Action-level answers are the canonical completion of one legal action.
        assert_eq!(s.alternatives.len(), 2);
        assert_eq!(s.completion, s.alternatives[s.chosen]);
        assert!(!s.invalid && !s.failed);
    }
    // Kuhn is zero-sum: the two seats' returns cancel in every episode.
    for r in &batch.returns {
        assert_eq!(r[0] + r[1], 0.0);
    }
}

#[test]
fn scripted_seats_move_in_place_and_their_silence_is_counted() {
    let (model, tok) = model();
    let passive = Passive { answers: true };
    let seats = [Seat::Model, Seat::Scripted(&passive)];
    let batch = play(
        &model,
        &tok,
        &mut episodes(&kuhn, 4, 3),
        &seats,
        Decode::Legal,
        1,
    )
    .unwrap();
    assert!(batch.turns.iter().all(|s| s.role.seat == 0));
    for t in &batch.transcripts {
        for turn in t.turns.iter().filter(|turn| turn.player == 1) {
            assert!(turn.completion.contains("check") || turn.completion.contains("call"));
        }
    }
    assert_eq!(batch.opponent_failures, 0);
    // A seat with no answer plays an empty, invalid answer: Kuhn's default rule forfeits.
    let silent = Passive { answers: false };
    let seats = [Seat::Scripted(&silent), Seat::Model];
    let batch = play(
        &model,
        &tok,
        &mut episodes(&kuhn, 4, 3),
        &seats,
        Decode::Legal,
        1,
    )
    .unwrap();
    assert!(batch.opponent_failures >= 4);
    assert!(
        batch.returns.iter().all(|r| r[1] > 0.0),
        "{:?}",
        batch.returns
    );
    assert!(batch.turns.is_empty());
}

#[test]
fn a_random_seat_or_action_level_answers_need_a_game() {
    let (model, tok) = model();
    let task: Arc<dyn spar_games::tasks::Task> = Arc::from(task_from_spec("arithmetic").unwrap());
    let mut env = TaskEnv::new(task, Split::Train, 1);
    env.reset(0);
    for (seats, decode) in [
        (vec![Seat::Random], Decode::Sample),
        (vec![], Decode::Legal),
    ] {
        let err = play(&model, &tok, &mut [env.clone()], &seats, decode, 1).unwrap_err();
        assert!(err.to_string().contains("no finite set of moves"), "{err}");
    }
    // Free text with the model in the seat plays the task: one answer, its verdict the reward;
    // copies of one environment (group sampling) answer the same problem.
    let mut copies = groups(&[env], 3);
    let batch = play(&model, &tok, &mut copies, &[], Decode::Sample, 1).unwrap();
    assert_eq!(batch.turns.len(), 3);
    for s in &batch.turns {
        assert_eq!(s.reward, batch.returns[s.episode][0]);
        assert_eq!(s.prompt, batch.turns[0].prompt);
    }
}

#[test]
fn an_episode_still_running_after_max_rounds_is_an_error() {
    let (model, tok) = model();
    // Kuhn takes at least two model turns with the model in both seats.
    let mut envs = episodes(&kuhn, 2, 0);
    let err = play_with(&model, &tok, &mut envs, &[], Decode::Legal, 0, |r| {
        Rollout { max_rounds: 1, ..r }
    })
    .unwrap_err();
    assert!(
        err.to_string().contains("still running after 1 rounds"),
        "{err}"
    );
}
