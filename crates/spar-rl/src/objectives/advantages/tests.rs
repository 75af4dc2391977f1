//! Hand-computed numbers through the trait: each estimator on self-play's groups (roles) and
//! on the task loop's (caller's keys), and RAE's state through serde.

use spar_core::Role;

use super::*;

fn player(seat: usize) -> Role {
    Role::new("kuhn", seat, format!("player{seat}"))
}

/// A self-play sample of `seat` at `turn` of `episode`, with the episode's return for reward.
fn turn(seat: usize, episode: usize, turn: usize, returns: &[BTreeMap<String, f64>]) -> Sample {
    let role = player(seat);
    let mut s = Sample::new(role.clone(), vec![1], vec![2]);
    (s.episode, s.turn, s.group) = (episode, turn, episode as u64);
    s.reward = returns[episode][&role.key()];
    s
}

fn game(r0: f64, r1: f64) -> BTreeMap<String, f64> {
    BTreeMap::from([("kuhn/player0".into(), r0), ("kuhn/player1".into(), r1)])
}

fn advantages(samples: &[Sample]) -> Vec<f64> {
    samples.iter().map(|s| s.advantage).collect()
}

fn close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

fn settings(kind: EstimatorKind) -> EstimatorSettings {
    EstimatorSettings {
        kind,
        eps: 0.0,
        batch_norm: false,
        rae_decay: 0.95,
        rae_update: RaeUpdate::PerGame,
    }
}

#[test]
fn rae_through_the_trait_is_the_per_game_rule_and_moves_baselines_without_samples() {
    // The numbers of rae.rs's per-game test: games (1, -1) then (2, -2), decay 0.95.
    let returns = vec![game(1.0, -1.0), game(2.0, -2.0)];
    // Game 0: player0 moves at turns 0 and 2, player1 at turn 1. Game 1: player0's first move
    // ended the game, so player1 has a return and no sample.
    let mut samples = vec![
        turn(0, 0, 0, &returns),
        turn(1, 0, 1, &returns),
        turn(0, 0, 2, &returns),
        turn(0, 1, 0, &returns),
    ];
    let groups = Groups::by_role(&samples, &returns);
    let mut state = EstimatorState::default();
    let rae = estimator(&settings(EstimatorKind::Rae));
    rae.estimate(&mut samples, &groups, &mut state).unwrap();
    // Game 0: baselines 0, A = R; then b0 = 0.05, b1 = -0.05. Game 1: A = 2 - 0.05.
    close(&advantages(&samples), &[1.0, -1.0, 1.0, 1.95]);
    // Player1's baseline moved with game 1 too: -0.05 * 0.95 - 2 * 0.05.
    let mut direct = RoleBaselines::default();
    direct.advantages(&returns, 0.95, RaeUpdate::PerGame);
    assert_eq!(state, direct);
    assert!((state.get("kuhn/player1") + 0.1475).abs() < 1e-12);
    assert_eq!(rae.name(), "rae");
}

#[test]
fn rae_batch_mean_through_the_trait() {
    let returns = vec![game(1.0, -1.0), game(-1.0, 1.0), game(1.0, -1.0)];
    let mut samples: Vec<Sample> = (0..3).map(|e| turn(0, e, 0, &returns)).collect();
    samples.push(turn(1, 1, 1, &returns));
    let groups = Groups::by_role(&samples, &returns);
    let mut state = EstimatorState::default();
    state.values.insert("kuhn/player0".into(), 0.5);
    let rae = estimator(&EstimatorSettings {
        rae_decay: 0.9,
        rae_update: RaeUpdate::BatchMean,
        ..settings(EstimatorKind::Rae)
    });
    rae.estimate(&mut samples, &groups, &mut state).unwrap();
    // One baseline for the batch: 1 - 0.5, -1 - 0.5, 1 - 0.5; player1 1 - 0.
    assert_eq!(advantages(&samples), vec![0.5, -1.5, 0.5, 1.0]);
    // Mean returns 1/3 and -1/3: b0 = 0.9 * 0.5 + 0.1/3, b1 = -0.1/3.
    assert!((state.get("kuhn/player0") - (0.45 + 0.1 / 3.0)).abs() < 1e-12);
    assert!((state.get("kuhn/player1") + 0.1 / 3.0).abs() < 1e-12);
}

#[test]
fn group_estimators_on_self_play_compare_a_roles_games() {
    // Player0's returns over three games [1, -1, 1], player1's the opposite; player0 moves
    // twice in game 0 (both turns get the game's one advantage).
    let returns = vec![game(1.0, -1.0), game(-1.0, 1.0), game(1.0, -1.0)];
    let make = || {
        vec![
            turn(0, 0, 0, &returns),
            turn(1, 0, 1, &returns),
            turn(0, 0, 2, &returns),
            turn(0, 1, 0, &returns),
            turn(1, 1, 1, &returns),
            turn(0, 2, 0, &returns),
        ]
    };
    let mut none = EstimatorState::default();
    let run = |kind: Estimator, none: &mut EstimatorState| {
        let mut samples = make();
        let groups = Groups::by_role(&samples, &returns);
        estimator(&settings(EstimatorKind::Group(kind)))
            .estimate(&mut samples, &groups, none)
            .unwrap();
        advantages(&samples)
    };
    // GRPO: mean 1/3, unbiased std sqrt((4/9 + 16/9 + 4/9) / 2) = 2/sqrt(3);
    // A = (2/3) / (2/sqrt(3)) = 1/sqrt(3) and (-4/3) / (2/sqrt(3)) = -2/sqrt(3).
    // Player1 (two games with samples, three with returns): [-1, 1, -1], the mirror.
    let (p, q) = (1.0 / 3f64.sqrt(), 2.0 / 3f64.sqrt());
    close(&run(Estimator::Grpo, &mut none), &[p, -p, p, -q, q, p]);
    // Dr. GRPO: 1 - 1/3 = 2/3, -1 - 1/3 = -4/3; player1 mirrored.
    let (a, b) = (2.0 / 3.0, 4.0 / 3.0);
    close(&run(Estimator::DrGrpo, &mut none), &[a, -a, a, -b, b, a]);
    // RLOO: 1 - (-1 + 1)/2 = 1, -1 - (1 + 1)/2 = -2.
    close(
        &run(Estimator::Rloo, &mut none),
        &[1.0, -1.0, 1.0, -2.0, 2.0, 1.0],
    );
    // REINFORCE: the returns.
    close(
        &run(Estimator::Reinforce, &mut none),
        &[1.0, -1.0, 1.0, -1.0, 1.0, 1.0],
    );
    assert!(none.values.is_empty(), "only RAE has state");
}

#[test]
fn trloo_compares_a_roles_turns_across_games() {
    // Player0: game 0 turns 0 and 2 (return 1), game 1 turn 0 only (return -1), game 2 turns
    // 0 and 2 (return 0).
    let returns = vec![game(1.0, -1.0), game(-1.0, 1.0), game(0.0, 0.0)];
    let mut samples = vec![
        turn(0, 0, 0, &returns),
        turn(0, 0, 2, &returns),
        turn(0, 1, 0, &returns),
        turn(0, 2, 0, &returns),
        turn(0, 2, 2, &returns),
    ];
    let groups = Groups::by_role(&samples, &returns);
    estimator(&settings(EstimatorKind::Group(Estimator::Trloo)))
        .estimate(&mut samples, &groups, &mut EstimatorState::default())
        .unwrap();
    // Turn 0: [1, -1, 0]: 1 - (-1 + 0)/2 = 1.5, -1 - 1/2 = -1.5, 0 - 0 = 0.
    // Turn 2: [1, 0]: 1 - 0 = 1, 0 - 1 = -1.
    assert_eq!(advantages(&samples), vec![1.5, 1.0, -1.5, 0.0, -1.0]);
}

/// One answer per episode, as the task loop's samples.
fn answers(rewards: &[f64], prompts: &[u64]) -> (Vec<Sample>, Groups) {
    let samples: Vec<Sample> = rewards
        .iter()
        .zip(prompts)
        .enumerate()
        .map(|(i, (&r, &p))| {
            let mut s = Sample::new(Role::new("arithmetic", 0, "solver"), vec![], vec![1]);
            (s.episode, s.group, s.reward) = (i, p, r);
            s
        })
        .collect();
    let keys = samples
        .iter()
        .map(|s| format!("prompt-{}", s.group))
        .collect();
    let groups = Groups::per_sample(&samples, keys).unwrap();
    (samples, groups)
}

#[test]
fn grpo_and_rloo_on_answers_grouped_by_prompt() {
    // Prompt 0: [1, 2, 3] (not contiguous), prompt 1: [4] alone.
    let rewards = [1.0, 4.0, 2.0, 3.0];
    let prompts = [0, 1, 0, 0];
    let mut none = EstimatorState::default();
    let (mut samples, groups) = answers(&rewards, &prompts);
    estimator(&settings(EstimatorKind::Group(Estimator::Rloo)))
        .estimate(&mut samples, &groups, &mut none)
        .unwrap();
    // 1 - (2 + 3)/2 = -1.5, 2 - 2 = 0, 3 - 1.5 = 1.5; a lone answer keeps its reward.
    assert_eq!(advantages(&samples), vec![-1.5, 4.0, 0.0, 1.5]);
    let (mut samples, groups) = answers(&rewards, &prompts);
    estimator(&EstimatorSettings {
        eps: 1e-6,
        ..settings(EstimatorKind::Group(Estimator::Grpo))
    })
    .estimate(&mut samples, &groups, &mut none)
    .unwrap();
    // Mean 2, unbiased std 1: -1/(1 + eps), 0, 1/(1 + eps); the lone one 4/(1 + eps).
    let e = 1e-6;
    close(
        &advantages(&samples),
        &[-1.0 / (1.0 + e), 4.0 / (1.0 + e), 0.0, 1.0 / (1.0 + e)],
    );
    // The same numbers as the free function on (rewards, keys).
    let direct = estimators::advantages(
        Estimator::Grpo,
        &rewards,
        &prompts,
        &estimators::EstimatorOptions::default(),
    )
    .unwrap();
    assert_eq!(advantages(&samples), direct);
}

#[test]
fn batch_normalisation_composes_with_any_estimator() {
    let rewards = [1.0, 2.0, 3.0, 6.0];
    let (mut samples, groups) = answers(&rewards, &[0, 1, 2, 3]);
    let reinforce_pp = estimator(&EstimatorSettings {
        batch_norm: true,
        ..settings(EstimatorKind::Group(Estimator::Reinforce))
    });
    assert_eq!(reinforce_pp.name(), "reinforce+batch_norm");
    reinforce_pp
        .estimate(&mut samples, &groups, &mut EstimatorState::default())
        .unwrap();
    // Mean 3, population variance (4 + 1 + 0 + 9)/4 = 3.5.
    let s = 3.5f64.sqrt();
    close(&advantages(&samples), &[-2.0 / s, -1.0 / s, 0.0, 3.0 / s]);
    // REINFORCE++-baseline: Dr. GRPO by prompt [0.5, -0.5, -0.5, 0.5], then std 0.5 -> ±1.
    let (mut samples, groups) = answers(&[1.0, 0.0, 0.0, 1.0], &[0, 0, 1, 1]);
    estimator(&EstimatorSettings {
        batch_norm: true,
        ..settings(EstimatorKind::Group(Estimator::DrGrpo))
    })
    .estimate(&mut samples, &groups, &mut EstimatorState::default())
    .unwrap();
    close(&advantages(&samples), &[1.0, -1.0, -1.0, 1.0]);
}

#[test]
fn rae_state_round_trips_through_serde_bit_for_bit() {
    // Awkward values: 0.1-sized steps that no decimal print rounds back exactly by accident.
    let returns: Vec<_> = (0..7)
        .map(|g| game(0.1 * g as f64 - 0.3, 1.0 / (g as f64 + 3.0)))
        .collect();
    let rae = estimator(&settings(EstimatorKind::Rae));
    let mut samples: Vec<Sample> = (0..7).map(|e| turn(0, e, 0, &returns)).collect();
    let groups = Groups::by_role(&samples, &returns);
    let mut state = EstimatorState::default();
    rae.estimate(&mut samples, &groups, &mut state).unwrap();
    let json = serde_json::to_string(&state).unwrap();
    let back: EstimatorState = serde_json::from_str(&json).unwrap();
    assert_eq!(back.values.len(), 2);
    for (k, v) in &state.values {
        assert_eq!(back.values[k].to_bits(), v.to_bits(), "{k}");
    }
    // A resumed run continues exactly: the next batch from both states agrees bit for bit.
    let (mut a, mut b) = (samples.clone(), samples);
    let (mut sa, mut sb) = (state, back);
    rae.estimate(&mut a, &groups, &mut sa).unwrap();
    rae.estimate(&mut b, &groups, &mut sb).unwrap();
    let bits = |s: &[Sample]| s.iter().map(|s| s.advantage.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(
        serde_json::to_string(&sa).unwrap(),
        serde_json::to_string(&sb).unwrap()
    );
}

#[test]
fn bad_batches_are_errors_and_leave_the_state_alone() {
    let returns = vec![game(1.0, -1.0)];
    let mut samples = vec![turn(0, 0, 0, &returns)];
    // A sample whose episode has no outcome for its group.
    let mut groups = Groups::by_role(&samples, &returns);
    groups.outcomes[0].remove("kuhn/player0");
    let mut state = EstimatorState::default();
    for kind in EstimatorKind::ALL {
        let e = estimator(&settings(kind));
        if kind == EstimatorKind::Group(Estimator::Trloo) {
            continue; // TRLOO reads the samples' own rewards.
        }
        let err = e.estimate(&mut samples, &groups, &mut state).unwrap_err();
        assert!(
            err.to_string().contains("has no outcome"),
            "{kind:?}: {err}"
        );
    }
    assert!(state.values.is_empty());
    // A reward that is not a number (TRLOO reads it from the sample).
    let returns = vec![game(f64::NAN, 0.0)];
    samples[0].reward = f64::NAN;
    let groups = Groups::by_role(&samples, &returns);
    for kind in EstimatorKind::ALL {
        let err = estimator(&settings(kind))
            .estimate(&mut samples, &groups, &mut state)
            .unwrap_err();
        assert!(
            err.to_string().contains("not a finite number"),
            "{kind:?}: {err}"
        );
    }
    assert!(state.values.is_empty());
    // One key per sample.
    let groups = Groups {
        keys: vec![],
        outcomes: vec![game(1.0, 0.0)],
    };
    assert!(Reinforce
        .estimate(&mut samples, &groups, &mut state)
        .is_err());
    assert!(Groups::per_sample(&samples, vec![]).is_err());
}

#[test]
fn the_fit_rule_names_the_key_and_the_estimators_that_fit() {
    for kind in EstimatorKind::ALL {
        assert!(check_fits(kind, "advantage.estimator", 2, "x").is_ok());
        let fits = check_fits(kind, "advantage.estimator", 1, "rollout.episodes = 1");
        assert_eq!(fits.is_ok(), !kind.compares_within_groups(), "{kind:?}");
    }
    let err = check_fits(
        EstimatorKind::Group(Estimator::Grpo),
        "advantage.estimator",
        1,
        "rollout.episodes = 1",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("config: advantage.estimator: \"grpo\" compares"),
        "{err}"
    );
    assert!(err.contains("rollout.episodes = 1"), "{err}");
    assert!(err.contains("accepted here: reinforce, rae"), "{err}");
    let names: Vec<&str> = EstimatorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        ["reinforce", "grpo", "dr_grpo", "rloo", "trloo", "rae"]
    );
    for kind in EstimatorKind::ALL {
        assert_eq!(estimator(&settings(kind)).name(), kind.name());
    }
}
