//! The self-play loop end to end on Kuhn Poker with a tiny model: it runs, writes its run
//! directory, and a run stopped and resumed gives the same metrics and weights as one that
//! never stopped.

use std::path::Path;

use spar_rl::config::{LoraSettings, Opponent, PoolSampling};
use spar_rl::loops::selfplay::run;
use spar_rl::objectives::advantages::EstimatorKind;
use spar_rl::objectives::estimators::Estimator;
use spar_rl::trainer::Line;
use spar_rl::trainer::{checkpoint_dir, checkpoint_tensors};
use spar_rl::TrainConfig;

fn tiny_config(steps: usize) -> TrainConfig {
    let text = format!(
        r#"
[run]
seed = 7
steps = {steps}
checkpoint_every = 1
[model]
hidden = 16
layers = 1
heads = 2
prompt_style = "raw"
[warm_start]
steps = 3
episodes = 4
batch_size = 4
[rollout]
episodes = 4
max_tokens = 16
[game]
view = "compact"
[ppo]
minibatch_size = 4
learning_rate = 1e-3
kl_coef = 0.05
kl_estimator = "k2"
entropy_coef = 0.01
sft_coef = 0.5
[eval]
every = 1
games_vs_random = 2
games_vs_cfr = 2
cfr_iterations = 50
"#
    );
    TrainConfig::parse(&text, &[]).unwrap()
}

fn without_time(ms: &[Line]) -> Vec<Line> {
    ms.iter()
        .map(|m| {
            let mut m = m.clone();
            m.remove(spar_rl::trainer::metrics::SECONDS);
            m
        })
        .collect()
}

/// The per-seat values `eval/<game>/player<i>/<metric>` of `m`, seat by seat.
fn seats(m: &Line, game: &str, metric: &str) -> Option<Vec<f64>> {
    let v: Vec<f64> = (0..)
        .map_while(|i| m.number(&format!("eval/{game}/player{i}/{metric}")))
        .collect();
    (!v.is_empty()).then_some(v)
}

/// The roles `selfplay/<role>/<metric>` of `m` names.
fn roles<'a>(m: &'a Line, metric: &'a str) -> Vec<&'a str> {
    m.between("selfplay/", metric).map(|(r, _)| r).collect()
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("spar-rl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn read_metrics(dir: &Path) -> Vec<Line> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The checkpoints of step `step` of two runs hold the same tensors, bit for bit.
fn assert_same_weights(straight: &Path, split: &Path, step: usize) {
    let a = checkpoint_tensors(&checkpoint_dir(straight, step)).unwrap();
    let b = checkpoint_tensors(&checkpoint_dir(split, step)).unwrap();
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let x: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let y: Vec<f32> = b[name].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(x, y, "{name} differs after resume");
    }
}

#[test]
fn resumed_run_matches_an_uninterrupted_one() {
    let straight = temp("straight");
    let full = run(&tiny_config(2), &straight, false, |_| {}).unwrap();
    assert_eq!(full.len(), 3, "step 0 (warm start) and two steps");
    let m = &full[2];
    assert!(m.number("learner/samples").unwrap() > 0.0);
    assert!(m.number("selfplay/response_tokens").unwrap() > 0.0);
    assert!(m
        .number("eval/kuhn/nash_conv")
        .is_some_and(|v| (0.0..=4.0).contains(&v)));
    assert_eq!(seats(m, "kuhn", "vs_random").map(|v| v.len()), Some(2));
    assert_eq!(seats(m, "kuhn", "vs_cfr").map(|v| v.len()), Some(2));
    assert_eq!(seats(m, "kuhn", "vs_cfr_ci95").map(|v| v.len()), Some(2));
    // Exact values against CFR+ (50 iterations: within 0.05 of a Nash equilibrium): no
    // policy gets more than the game value -1/18 (seat 0) or +1/18 (seat 1) against Nash.
    let exact = seats(m, "kuhn", "exact_vs_cfr").expect("exact values on Kuhn");
    assert!(
        exact[0] <= -1.0 / 18.0 + 0.05 && exact[1] <= 1.0 / 18.0 + 0.05,
        "{exact:?}"
    );
    assert!(exact.iter().all(|v| (-2.0..=2.0).contains(v)));
    assert!(m.number("learner/kl_ref").is_some_and(f64::is_finite));
    assert!(m.number("learner/entropy").is_some_and(|h| h > 0.0));
    assert!(m.number("learner/sft_loss").is_some_and(|l| l > 0.0));
    assert!(m.number("learner/learning_rate").is_some_and(|r| r > 0.0));
    // The average of the checkpointed policies (steps 1 and 2) at the last step only.
    assert!(m
        .number("eval/kuhn/avg_exploitability")
        .is_some_and(|e| (0.0..=2.0).contains(&e)));
    assert!(full[1].get("eval/kuhn/avg_exploitability").is_none());
    assert!(straight.join("average_policy.json").exists());
    assert!(straight
        .join("checkpoints/step-000002/prompting.json")
        .exists());
    assert!(
        std::fs::read_dir(straight.join("tensorboard"))
            .unwrap()
            .count()
            >= 1
    );
    assert!(full[0].number("learner/warm_start_loss").is_some());
    for file in ["config.toml", "metrics.jsonl"] {
        assert!(straight.join(file).exists(), "{file}");
    }
    assert_eq!(without_time(&read_metrics(&straight)), without_time(&full));

    // Stop after one step (as a run killed after its step-1 checkpoint would), then resume.
    let split = temp("split");
    // (A 1-step run's last step is step 1, where it would average its policies; a run killed
    // there would not have, so the average is off for this stand-in.)
    let mut one = tiny_config(1);
    one.eval.average = false;
    run(&one, &split, false, |_| {}).unwrap();
    // The run directory holds the config of the run it stands in for (2 steps, averaging).
    std::fs::write(split.join("config.toml"), tiny_config(2).to_toml()).unwrap();
    // A half-written later checkpoint (no state.json) is ignored on resume.
    std::fs::create_dir_all(checkpoint_dir(&split, 2)).unwrap();
    let resumed = run(&tiny_config(2), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));
    assert_eq!(without_time(&read_metrics(&split)), without_time(&full));
    assert_same_weights(&straight, &split, 2);
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

/// Issue 15: self-play with a group-relative estimator (GRPO over each role's games of the
/// step, REINFORCE++'s batch normalisation on top) trains, keeps no baselines, and a run
/// stopped after step 1 and resumed ends with the same metrics and weights.
#[test]
fn a_group_relative_estimator_trains_and_resumes_exactly() {
    let grpo = |steps| {
        let mut c = tiny_config(steps);
        c.advantage.estimator = EstimatorKind::Group(Estimator::Grpo);
        c.advantage.batch_norm = true;
        // Legal play, so that the games' returns differ (free text from this tiny model is
        // all invalid moves, whose equal returns GRPO rightly gives zero advantage).
        c.rollout.policy = spar_rl::rollout::Decode::Legal;
        c.rollout.episodes = 8;
        (c.eval.every, c.eval.average) = (0, false);
        c
    };
    let straight = temp("grpo-straight");
    let full = run(&grpo(2), &straight, false, |_| {}).unwrap();
    assert_eq!(full.len(), 3);
    for m in &full[1..] {
        assert!(m.number("learner/samples").unwrap() > 0.0, "{m:?}");
        assert!(
            m.number("learner/loss").is_some_and(f64::is_finite),
            "{m:?}"
        );
        assert!(
            roles(m, "baseline").is_empty(),
            "GRPO keeps no baselines: {m:?}"
        );
    }
    let config = std::fs::read_to_string(straight.join("config.toml")).unwrap();
    assert!(config.contains("estimator = \"grpo\"") && config.contains("batch_norm = true"));
    let split = temp("grpo-split");
    run(&grpo(1), &split, false, |_| {}).unwrap();
    let resumed = run(&grpo(2), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));
    assert_same_weights(&straight, &split, 2);
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

#[test]
fn resume_without_a_checkpoint_is_refused() {
    let dir = temp("empty");
    std::fs::create_dir_all(&dir).unwrap();
    let err = run(&tiny_config(1), &dir, true, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("no complete checkpoint"), "{err}");
}

/// `tiny_config` training a rank-2 adapter on every projection over a frozen scratch base.
fn tiny_lora_config(steps: usize) -> TrainConfig {
    let mut config = tiny_config(steps);
    config.model.lora = Some(LoraSettings {
        r: 2,
        alpha: 4.0,
        targets: vec!["all-linear".into()],
    });
    config.validate().unwrap();
    config
}

fn bits(
    tensors: &std::collections::HashMap<String, candle_core::Tensor>,
) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = tensors
        .iter()
        .map(|(name, t)| {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            (name.clone(), v.iter().map(|x| x.to_bits()).collect())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn lora_run_trains_only_the_adapter_loads_and_resumes_exactly() {
    use candle_core::Device;
    use spar_core::{TextGame, TextOptions};
    use spar_games::kuhn::KuhnPoker;
    use spar_games::text::TextView;

    let straight = temp("lora-straight");
    let full = run(&tiny_lora_config(2), &straight, false, |_| {}).unwrap();
    assert_eq!(full.len(), 3);
    assert!(full[2].number("learner/kl_ref").is_some_and(f64::is_finite));

    // A LoRA checkpoint: the adapter (PEFT layout), base.json, the base's config and
    // tokenizer, and the run's own files; no full weights.
    let step2 = checkpoint_dir(&straight, 2);
    let mut files: Vec<String> = std::fs::read_dir(&step2)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    for expected in [
        "adapter_config.json",
        "adapter_model.safetensors",
        "base.json",
        "config.json",
        "optimizer.safetensors",
        "prompting.json",
        "state.json",
        "tokenizer.json",
    ] {
        assert!(
            files.iter().any(|f| f == expected),
            "{expected} in {files:?}"
        );
    }
    assert!(!files.iter().any(|f| f == "model.safetensors"), "{files:?}");
    let base = spar_lm::load::lora_base(&step2).unwrap();
    assert!(base.is_absolute());
    assert_eq!(base, std::path::absolute(straight.join("base")).unwrap());

    // The saved base is the seeded initialisation, bit for bit (and below, the in-run model at
    // step 2 equals this base plus the step-2 adapter, so training left the base alone).
    let base_ckpt = spar_lm::checkpoint::Checkpoint::load(&base, &Device::Cpu).unwrap();
    let init = spar_lm::model::init_weights(&base_ckpt.config, 0.02, 7, &Device::Cpu).unwrap();
    assert_eq!(bits(&base_ckpt.tensors), bits(&init));

    // The optimiser's moments cover the adapter's tensors and nothing else.
    let adapter = checkpoint_tensors(&step2).unwrap();
    assert_eq!(adapter.len(), 2 * 7, "A and B of 7 projections of 1 layer");
    let moments =
        candle_core::safetensors::load(step2.join("optimizer.safetensors"), &Device::Cpu).unwrap();
    let mut expected: Vec<String> = adapter
        .keys()
        .flat_map(|k| [format!("m.{k}"), format!("v.{k}")])
        .collect();
    expected.sort();
    let mut got: Vec<String> = moments.keys().cloned().collect();
    got.sort();
    assert_eq!(got, expected);
    // The adapter was trained: B started at zero.
    let b_norm: f32 = adapter
        .iter()
        .filter(|(k, _)| k.contains("lora_B"))
        .map(|(_, t)| {
            t.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        })
        .sum();
    assert!(b_norm > 0.0);

    // load_model gives the in-run model: its exact exploitability is the run's, bit for bit
    // (any change to a base weight or the adapter would move it).
    let loaded =
        spar_lm::load::load_model(&step2, spar_lm::load::GgufMode::Quantized, &Device::Cpu)
            .unwrap();
    let game = KuhnPoker::new();
    let text = game.text_view();
    let env = TextGame::new(
        game,
        text,
        TextOptions {
            view: "compact".parse().unwrap(),
            max_turns: Some(50),
            ..TextOptions::default()
        },
    );
    let options = spar_rl::LmPolicyOptions {
        temperature: 1.0,
        style: spar_rl::PromptStyle::Raw,
        ..spar_rl::LmPolicyOptions::default()
    };
    let table =
        spar_rl::tabulate(&env, &loaded.model, &loaded.tokenizer, &options, |_, _| {}).unwrap();
    let nc = spar_eval::nash_conv(env.game(), &table.policy).unwrap();
    assert_eq!(
        Some(nc.exploitability),
        full[2].number("eval/kuhn/exploitability")
    );
    // The exact returns against the uniform player are the same tree computation, per seat.
    let by_seat =
        spar_eval::returns_by_seat(env.game(), &table.policy, &spar_core::UniformRandom).unwrap();
    assert_eq!(Some(by_seat), seats(&full[2], "kuhn", "exact_vs_random"));
    // ... and it differs from the base alone (the adapter matters).
    let bare = base_ckpt.frozen().unwrap();
    let ids = loaded.tokenizer.encode("Player 0").unwrap();
    assert_ne!(
        spar_lm::score::next_token_logits(&loaded.model, &ids).unwrap(),
        spar_lm::score::next_token_logits(&bare, &ids).unwrap()
    );

    // Stopped after step 1 and resumed: the same metrics, adapter and optimiser bytes.
    let split = temp("lora-split");
    let mut one = tiny_lora_config(1);
    one.eval.average = false;
    run(&one, &split, false, |_| {}).unwrap();
    std::fs::write(split.join("config.toml"), tiny_lora_config(2).to_toml()).unwrap();
    let resumed = run(&tiny_lora_config(2), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));
    let split2 = checkpoint_dir(&split, 2);
    assert_eq!(bits(&checkpoint_tensors(&split2).unwrap()), bits(&adapter));
    for file in [
        "adapter_model.safetensors",
        "optimizer.safetensors",
        "state.json",
    ] {
        assert_eq!(
            std::fs::read(step2.join(file)).unwrap(),
            std::fs::read(split2.join(file)).unwrap(),
            "{file} differs after resume"
        );
    }
    // Full weights cannot resume a LoRA run's checkpoint, and the error says why.
    let err = run(&tiny_config(3), &split, true, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("[model.lora]"), "{err}");
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

/// Against a fixed opponent the model plays every seat in turn: its returns are recorded for
/// both roles, the opponent's turns are never samples, and `eval.opponents` adds a result per
/// opponent and seat.
#[test]
fn a_fixed_opponent_and_evaluation_opponents() {
    let out = temp("opponent");
    let mut config = tiny_config(2);
    config.rollout.opponent = Opponent::Player("cfr+:50".into());
    config.rollout.episodes = 5;
    config.eval.opponents = vec!["random".into(), "cfr+:20".into()];
    config.eval.games_vs_opponents = 3;
    let metrics = run(&config, &out, false, |_| {}).unwrap();
    let last = metrics.last().unwrap();
    assert_eq!(last.number("selfplay/opponent_failures"), Some(0.0));
    // Five episodes: three with the model as player 0, two as player 1.
    assert_eq!(roles(last, "mean_return").len(), 2, "{last:?}");
    for opponent in ["random", "cfr+:20"] {
        let vs = seats(last, "kuhn", &format!("vs_players/{opponent}"));
        assert_eq!(vs.map(|v| v.len()), Some(2), "{last:?}");
    }
    let wins = seats(last, "kuhn", "win_rate_vs_players/random").unwrap();
    assert!(wins.iter().all(|w| (0.0..=1.0).contains(w)));
    // A player that cannot be built is refused before training, naming it.
    let mut bad = tiny_config(1);
    bad.eval.opponents = vec!["grandmaster".into()];
    let err = run(&bad, &temp("bad-opponent"), false, |_| {}).unwrap_err();
    assert!(
        err.to_string().contains("unknown player \"grandmaster\""),
        "{err}"
    );
}

/// An opponent pool of past checkpoints: every step plays an earlier checkpoint, the
/// learner's record against the pool is in the checkpoint, and a resumed run picks the same
/// opponents (prioritised sampling reads that record) and gives the same metrics.
#[test]
fn the_opponent_pool_plays_past_checkpoints_and_resumes_exactly() {
    let pool_config = |steps: usize| {
        let mut c = tiny_config(steps);
        c.rollout.opponent = Opponent::Pool;
        c.rollout.pool_sampling = PoolSampling::Prioritised;
        c.rollout.episodes = 6;
        c.eval.average = false;
        c
    };
    let straight = temp("pool-straight");
    let full = run(&pool_config(4), &straight, false, |_| {}).unwrap();
    for m in &full[1..] {
        let member = m
            .number("selfplay/pool_opponent")
            .expect("a pool opponent every step");
        assert!(
            member < m.step as f64,
            "step {} played step {member}",
            m.step
        );
        assert!(m
            .number("selfplay/pool_win_rate")
            .is_some_and(|w| (0.0..=1.0).contains(&w)));
        assert_eq!(roles(m, "mean_return").len(), 2);
    }
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(checkpoint_dir(&straight, 4).join("state.json")).unwrap(),
    )
    .unwrap();
    let games: u64 = state["pool"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["games"].as_u64().unwrap())
        .sum();
    assert_eq!(games, 4 * 6, "every pool game is on record");

    let split = temp("pool-split");
    run(&pool_config(2), &split, false, |_| {}).unwrap();
    let resumed = run(&pool_config(4), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));
    // A bad sampling rule is refused when the config is read, naming the key and the rules.
    let err = TrainConfig::parse(
        "[rollout]\nopponent = \"pool\"\npool_sampling = \"best\"\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "config: rollout.pool_sampling: \"best\" is not one of latest, uniform, prioritised"
    );
}

/// Multi-game training: one model on Kuhn Poker and TicTacToe at once. Every step plays
/// `rollout.episodes` games of each; returns and RAE baselines are per game and role; each
/// game is evaluated on its own under `games` (exact values for the games in
/// `eval.exact_games` only; `SPEC@GAME` opponents in that game only); the run resumes exactly;
/// and the first game of a run draws what it draws alone (the warm start's data aside).
#[test]
fn multi_game_runs_train_every_game_and_resume_exactly() {
    let multi = |steps: usize| {
        let mut c = tiny_config(steps);
        c.game.names = vec!["kuhn".into(), "tictactoe".into()];
        c.eval.exact_games = vec!["kuhn".into()];
        c.eval.opponents = vec!["minimax@tictactoe".into(), "random".into()];
        c.eval.games_vs_opponents = 2;
        c.eval.average = false;
        c.game.max_turns = 12;
        c
    };
    let straight = temp("multi-straight");
    let full = run(&multi(2), &straight, false, |_| {}).unwrap();
    let last = full.last().unwrap();
    let played = roles(last, "mean_return");
    assert_eq!(
        played,
        [
            "kuhn/player0",
            "kuhn/player1",
            "tictactoe/player0",
            "tictactoe/player1"
        ]
    );
    assert_eq!(roles(last, "baseline"), played);
    // Per-game rollouts and evaluations, under each game's name.
    assert_eq!(last.number("selfplay/kuhn/episodes"), Some(4.0));
    assert_eq!(last.number("selfplay/tictactoe/episodes"), Some(4.0));
    assert!(last
        .number("eval/kuhn/exploitability")
        .is_some_and(|e| (0.0..=2.0).contains(&e)));
    assert!(
        last.get("eval/tictactoe/exploitability").is_none(),
        "not in eval.exact_games"
    );
    assert!(
        seats(last, "kuhn", "vs_cfr").is_some() && seats(last, "tictactoe", "vs_cfr").is_none()
    );
    assert_eq!(seats(last, "kuhn", "vs_random").map(|v| v.len()), Some(2));
    assert!(seats(last, "kuhn", "vs_players/random").is_some());
    assert!(seats(last, "kuhn", "vs_players/minimax").is_none());
    assert!(seats(last, "tictactoe", "vs_players/minimax").is_some());
    assert!(seats(last, "tictactoe", "vs_players/random").is_some());
    // The step's rollouts together: every sample of both games.
    let turns = |game: &str| {
        last.number(&format!("selfplay/{game}/response_tokens"))
            .unwrap()
            > 0.0
    };
    assert!(turns("kuhn") && turns("tictactoe"));
    assert!(last.number("learner/samples").unwrap() > 0.0);

    let split = temp("multi-split");
    run(&multi(1), &split, false, |_| {}).unwrap();
    let resumed = run(&multi(2), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));

    // A game listed twice, or an exact game not in the run, is refused naming the key.
    let mut twice = multi(1);
    twice.game.names = vec!["kuhn".into(), "kuhn".into()];
    twice.eval.opponents = vec!["random".into()];
    let err = run(&twice, &temp("multi-twice"), false, |_| {}).unwrap_err();
    assert!(err.to_string().contains("game.names"), "{err}");
    let mut stray = multi(1);
    stray.eval.exact_games = vec!["leduc".into()];
    let err = run(&stray, &temp("multi-stray"), false, |_| {}).unwrap_err();
    assert!(err.to_string().contains("eval.exact_games"), "{err}");
    let mut elsewhere = multi(1);
    elsewhere.game.names = vec!["kuhn".into(), "leduc".into()];
    let err = run(&elsewhere, &temp("multi-elsewhere"), false, |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"minimax@tictactoe\" is for the game \"tictactoe\""),
        "{err}"
    );
    // An opponent that cannot play one of the games names that game.
    let mut unplayable = multi(1);
    unplayable.eval.opponents = vec!["minimax".into()];
    unplayable.game.names = vec!["kuhn".into(), "connect_four".into()];
    unplayable.eval.exact_games = Vec::new();
    let err = run(&unplayable, &temp("multi-unplayable"), false, |_| {}).unwrap_err();
    assert!(err.to_string().contains("SPEC@GAME"), "{err}");
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

/// Issue 21: magnetic mirror descent's moving magnet (`ppo.magnet_rate`, with the exact KL
/// over the legal actions). The magnet moves each step (its checkpointed weights differ from
/// step 0's model and between steps), it is saved in every checkpoint after step 0, and a run
/// stopped after step 1 and resumed gives the same metrics, weights and magnet bit for bit (a
/// resume that restarted the magnet from step 0 would give another KL at step 2).
#[test]
fn the_moving_magnet_trails_the_policy_and_resumes_exactly() {
    use spar_rl::loops::selfplay::MAGNET_FILE;
    let mmd = |steps| {
        let mut c = tiny_config(steps);
        c.rollout.policy = spar_rl::rollout::Decode::Legal;
        c.rollout.episodes = 8;
        c.ppo.kl_coef = 0.5;
        c.ppo.kl_exact = true;
        c.ppo.magnet_rate = 0.5;
        c.ppo.learning_rate = 1e-2;
        (c.eval.every, c.eval.average) = (0, false);
        c
    };
    let straight = temp("mmd-straight");
    let full = run(&mmd(2), &straight, false, |_| {}).unwrap();
    assert_eq!(full.len(), 3);
    for m in &full[1..] {
        assert!(
            m.number("learner/kl_ref").is_some_and(|k| k >= 0.0),
            "{m:?}"
        );
    }
    assert!(!checkpoint_dir(&straight, 0).join(MAGNET_FILE).exists());
    let magnet = |out: &Path, step: usize| {
        let path = checkpoint_dir(out, step).join(MAGNET_FILE);
        candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap()
    };
    let model0 = checkpoint_tensors(&checkpoint_dir(&straight, 0)).unwrap();
    let (m1, m2) = (magnet(&straight, 1), magnet(&straight, 2));
    let model2 = checkpoint_tensors(&checkpoint_dir(&straight, 2)).unwrap();
    let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let name = "model.embed_tokens.weight";
    assert_ne!(flat(&m1[name]), flat(&model0[name]), "the magnet moved");
    assert_ne!(flat(&m2[name]), flat(&m1[name]), "and again at step 2");
    // Rate 1/2: the magnet sits between where it was and the policy it trails.
    for ((z2, z1), th) in flat(&m2[name])
        .iter()
        .zip(flat(&m1[name]))
        .zip(flat(&model2[name]))
    {
        assert!((z2 - 0.5 * (z1 + th)).abs() < 1e-6, "{z2} {z1} {th}");
    }
    let split = temp("mmd-split");
    run(&mmd(1), &split, false, |_| {}).unwrap();
    let resumed = run(&mmd(2), &split, true, |_| {}).unwrap();
    assert_eq!(without_time(&resumed), without_time(&full));
    assert_same_weights(&straight, &split, 2);
    let back = magnet(&split, 2);
    for (n, t) in &m2 {
        assert_eq!(flat(t), flat(&back[n]), "magnet {n} differs after resume");
    }
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}
