//! Hand-computed values and finite-difference gradient checks of every loss.

use super::*;
use candle_core::{Device, Var};

mod divergence;
mod nft;
mod pair;

const TOL: f64 = 1e-9;

fn t1(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

fn t2<const W: usize>(v: &[[f64; W]]) -> Tensor {
    Tensor::from_vec(v.concat(), (v.len(), W), &Device::Cpu).unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_dtype(DType::F64).unwrap().to_vec2().unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    value(t).unwrap()
}

fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} (diff {})",
        (got - want).abs()
    );
}

/// Asserts that the real entries of `got` match `want` (`None` marks padding, skipped).
fn assert_grid(got: &Tensor, want: &[&[Option<f64>]], tol: f64, what: &str) {
    let got = rows(got);
    for (i, row) in want.iter().enumerate() {
        for (j, w) in row.iter().enumerate() {
            if let Some(w) = w {
                assert_close(got[i][j], *w, tol, &format!("{what}[{i}][{j}]"));
            }
        }
    }
}

/// The backward gradient of `f` at `x` (f64, any shape), checked against central finite
/// differences on every element; returns it (row-major).
fn checked_gradient(x: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> Vec<f64> {
    let var = Var::from_tensor(x).unwrap();
    let grads = f(var.as_tensor()).backward().unwrap();
    let n = x.elem_count();
    let analytic: Vec<f64> = match grads.get(var.as_tensor()) {
        Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
        None => vec![0.0; n],
    };
    let base: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
    let h = 1e-6;
    for i in 0..n {
        let at = |delta: f64| {
            let mut v = base.clone();
            v[i] += delta;
            scalar(&f(&Tensor::from_vec(v, x.shape(), &Device::Cpu).unwrap()))
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            numeric.is_finite() && analytic[i].is_finite(),
            "element {i}: numeric {numeric}, analytic {}",
            analytic[i]
        );
        assert!(
            (numeric - analytic[i]).abs() <= 1e-6 + 1e-6 * numeric.abs(),
            "element {i}: finite differences {numeric} vs backward {}",
            analytic[i]
        );
    }
    analytic
}

/// The `(B, W)` mask with the last position of the second sample padded.
fn mask23() -> Tensor {
    t2(&[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
}

/// The loss of `loss` under `agg` as a function of `logp` (for gradient checks).
fn loss_of<'a>(
    loss: &'a dyn TokenLoss,
    inputs: TokenInputs<'a>,
    agg: Aggregation,
) -> impl Fn(&Tensor) -> Tensor + 'a {
    move |logp: &Tensor| {
        let inputs = TokenInputs { logp, ..inputs };
        let (per_token, _) = loss.per_token(&inputs).unwrap();
        aggregate(&per_token, inputs.mask, agg).unwrap()
    }
}

/// logp and ref on the 2 x 3 grid with log r = ref - logp =
/// [[-0.5, 0.3, 1.0], [-1.2, 0.0, pad]].
fn kl_grid() -> (Tensor, Tensor) {
    let logp = [[-1.0, -2.0, -0.5], [-0.3, -1.5, -4.0]];
    let log_r = [[-0.5, 0.3, 1.0], [-1.2, 0.0, 0.0]];
    let mut reference = [[0.0; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            reference[i][j] = logp[i][j] + log_r[i][j];
        }
    }
    reference[1][2] = f64::NAN;
    (t2(&logp), t2(&reference))
}

#[test]
fn aggregations_match_hand_computation() {
    // Per-token losses [[1, 2, 3], [4, 5, pad]] (the pad holds NaN: it must not leak).
    let per_token = t2(&[[1.0, 2.0, 3.0], [4.0, 5.0, f64::NAN]]);
    let mask = mask23();
    let agg = |a| scalar(&aggregate(&per_token, &mask, a).unwrap());
    // Token sum / 4: rows 6/4 and 9/4, mean 15/8.
    assert_close(
        agg(Aggregation::TokenSum(4.0)),
        15.0 / 8.0,
        TOL,
        "token sum",
    );
    // Token mean: rows 6/3 = 2 and 9/2 = 4.5, mean 3.25.
    assert_close(agg(Aggregation::TokenMean), 3.25, TOL, "token mean");
    // Batch token mean: 15 / 5 tokens = 3.
    assert_close(
        agg(Aggregation::BatchTokenMean),
        3.0,
        TOL,
        "batch token mean",
    );
    // A sample without tokens counts as 0 in the per-sample means and not at all in the
    // batch token mean: rows [1, 2, 3] and [pad, pad, pad].
    let empty = t2(&[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]);
    let agg = |a| scalar(&aggregate(&per_token, &empty, a).unwrap());
    assert_close(
        agg(Aggregation::TokenSum(2.0)),
        1.5,
        TOL,
        "token sum, empty row",
    );
    assert_close(
        agg(Aggregation::TokenMean),
        1.0,
        TOL,
        "token mean, empty row",
    );
    assert_close(
        agg(Aggregation::BatchTokenMean),
        2.0,
        TOL,
        "batch mean, empty row",
    );
    // No token at all: 0, not NaN.
    let none = t2(&[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]);
    let zero = aggregate(&per_token, &none, Aggregation::BatchTokenMean).unwrap();
    assert_eq!(scalar(&zero), 0.0);
    // Gradients: d/dl_bt of the token mean is 1 / (B |o_b|); 0 on padding.
    let g = checked_gradient(&t2(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), |x| {
        aggregate(x, &mask, Aggregation::TokenMean).unwrap()
    });
    let (a, b) = (1.0 / 6.0, 1.0 / 4.0);
    for (got, want) in g.iter().zip([a, a, a, b, b, 0.0]) {
        assert_close(*got, want, TOL, "token-mean gradient");
    }
    assert!(aggregate(&per_token, &mask, Aggregation::TokenSum(0.0)).is_err());
    assert!(aggregate(&per_token, &t2(&[[1.0, 1.0]]), Aggregation::TokenMean).is_err());
}

#[test]
fn policy_gradient_matches_hand_computation_and_finite_differences() {
    // logp = [[-1, -2, -0.5], [-0.3, -1.5, pad]] (the pad holds NaN), A = (2, -1).
    // -A logp = [[2, 4, 1], [-0.3, -1.5, pad]].
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, f64::NAN]]);
    let mask = mask23();
    let adv = t1(&[2.0, -1.0]);
    let inputs = TokenInputs {
        advantages: Some(&adv),
        ..TokenInputs::new(&logp, &mask)
    };
    let (per_token, stats) = PolicyGradient.per_token(&inputs).unwrap();
    let some = |v: &[f64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
    assert_grid(
        &per_token,
        &[&some(&[2.0, 4.0, 1.0]), &some(&[-0.3, -1.5])],
        TOL,
        "pg",
    );
    assert!(rows(&per_token)[1][2].is_finite());
    assert_close(stats.loss, 5.2 / 5.0, TOL, "mean per-token loss");
    assert_eq!(
        (stats.tokens, stats.approx_kl, stats.name),
        (5.0, 0.0, "pg")
    );
    // Token mean: rows 7/3 and -1.8/2 = -0.9; mean (7/3 - 0.9)/2.
    let agg = |a| scalar(&aggregate(&per_token, &mask, a).unwrap());
    assert_close(
        agg(Aggregation::TokenMean),
        (7.0 / 3.0 - 0.9) / 2.0,
        TOL,
        "mean",
    );
    // Token sum / 4: (7/4 - 1.8/4)/2 = 0.65; batch token mean: 5.2/5 = 1.04.
    assert_close(agg(Aggregation::TokenSum(4.0)), 0.65, TOL, "sum");
    assert_close(agg(Aggregation::BatchTokenMean), 1.04, TOL, "batch mean");
    // Gradient of the token mean: -A / (B |o_b|) = -2/6 on row 0, 1/4 on row 1, 0 on pad.
    let f = loss_of(&PolicyGradient, inputs, Aggregation::TokenMean);
    let g = checked_gradient(&t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -7.0]]), f);
    let (a, b) = (-1.0 / 3.0, 0.25);
    for (got, want) in g.iter().zip([a, a, a, b, b, 0.0]) {
        assert_close(*got, want, TOL, "pg gradient");
    }
    // The policy-gradient gradient with NaN at the pad: still exactly 0 there.
    let var = Var::from_tensor(&logp).unwrap();
    let grads = loss_of(&PolicyGradient, inputs, Aggregation::TokenMean)(var.as_tensor())
        .backward()
        .unwrap();
    let g = rows(grads.get(var.as_tensor()).unwrap());
    assert_eq!(g[1][2], 0.0);
    assert_close(g[0][0], a, TOL, "pg gradient");
    // Missing or misshapen advantages are errors.
    assert!(PolicyGradient
        .per_token(&TokenInputs::new(&logp, &mask))
        .is_err());
    let bad = t1(&[1.0, 2.0, 3.0]);
    let inputs = TokenInputs {
        advantages: Some(&bad),
        ..TokenInputs::new(&logp, &mask)
    };
    assert!(PolicyGradient.per_token(&inputs).is_err());
}

/// PPO on a 2 x 4 grid: sample 0 has A = +1 and ratios (1.25, 1.5, 0.5, 0.9), sample 1
/// has A = -1 and ratios (0.7, 1.5, 1.25, pad). Returns (logp, old, mask, advantages).
fn ppo_grid() -> (Tensor, Tensor, Tensor, Tensor) {
    let logp = [[-1.0, -0.7, -2.0, -0.2], [-0.4, -1.1, -0.3, 0.0]];
    let ratio: [[f64; 4]; 2] = [[1.25, 1.5, 0.5, 0.9], [0.7, 1.5, 1.25, 1.0]];
    let mut old = [[0.0; 4]; 2];
    for i in 0..2 {
        for j in 0..4 {
            old[i][j] = logp[i][j] - ratio[i][j].ln();
        }
    }
    old[1][3] = f64::NEG_INFINITY; // padding: must not leak
    (
        t2(&logp),
        t2(&old),
        t2(&[[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]]),
        t1(&[1.0, -1.0]),
    )
}

#[test]
fn ppo_clip_asymmetric_matches_hand_computation_and_finite_differences() {
    let (logp, old, mask, adv) = ppo_grid();
    let inputs = TokenInputs {
        old_logp: Some(&old),
        advantages: Some(&adv),
        ..TokenInputs::new(&logp, &mask)
    };
    // DAPO's clip-higher: r in [0.8, 1.28].
    // A = +1: r = 1.25 is inside (unclipped: -1.25), 1.5 is clipped to 1.28, r = 0.5 < 0.8
    //   is not clipped for A > 0 (min picks 0.5), 0.9 is inside: (-1.25, -1.28, -0.5, -0.9).
    // A = -1: r = 0.7 is clipped to 0.8 (min(-0.7, -0.8) = -0.8: loss 0.8), r = 1.5 is
    //   not clipped for A < 0 (min(-1.5, -1.28) = -1.5: loss 1.5), 1.25: loss 1.25.
    let dapo = PpoClip {
        clip_low: 0.2,
        clip_high: 0.28,
    };
    let (per_token, stats) = dapo.per_token(&inputs).unwrap();
    let s = |v: f64| Some(v);
    assert_grid(
        &per_token,
        &[
            &[s(-1.25), s(-1.28), s(-0.5), s(-0.9)],
            &[s(0.8), s(1.5), s(1.25), None],
        ],
        1e-12,
        "dapo",
    );
    // The clipped term binds on 2 of 7 tokens (r = 1.5 with A > 0, r = 0.7 with A < 0).
    assert_close(stats.clip_fraction, 2.0 / 7.0, TOL, "clip fraction");
    // Mean ratio (1.25 + 1.5 + 0.5 + 0.9 + 0.7 + 1.5 + 1.25) / 7 = 7.6 / 7.
    assert_close(stats.mean_ratio, 7.6 / 7.0, TOL, "mean ratio");
    let product: f64 = 1.25 * 1.5 * 0.5 * 0.9 * 0.7 * 1.5 * 1.25;
    assert_close(stats.approx_kl, -product.ln() / 7.0, TOL, "approx kl");
    // Sum -0.38 over 7 tokens; token mean (-3.93 / 4 + 3.55 / 3) / 2.
    let agg = |a| scalar(&aggregate(&per_token, &mask, a).unwrap());
    assert_close(
        agg(Aggregation::BatchTokenMean),
        -0.38 / 7.0,
        1e-12,
        "batch",
    );
    assert_close(
        agg(Aggregation::TokenMean),
        (-3.93 / 4.0 + 3.55 / 3.0) / 2.0,
        1e-12,
        "token mean",
    );
    // Gradient: -r A where unclipped, 0 where the clip binds, 0 on padding; / 7 tokens.
    let f = loss_of(&dapo, inputs, Aggregation::BatchTokenMean);
    let g = checked_gradient(&logp, f);
    let want = [-1.25, 0.0, -0.5, -0.9, 0.0, 1.5, 1.25, 0.0].map(|v| v / 7.0);
    for (got, want) in g.iter().zip(want) {
        assert_close(*got, want, 1e-9, "dapo gradient");
    }
    // Symmetric PPO (0.2): r = 1.25 with A > 0 is now clipped at 1.2 (no gradient).
    let ppo = PpoClip {
        clip_low: 0.2,
        clip_high: 0.2,
    };
    let (per_token, stats) = ppo.per_token(&inputs).unwrap();
    assert_grid(
        &per_token,
        &[
            &[s(-1.2), s(-1.2), s(-0.5), s(-0.9)],
            &[s(0.8), s(1.5), s(1.25), None],
        ],
        1e-12,
        "ppo",
    );
    assert_close(stats.clip_fraction, 3.0 / 7.0, TOL, "clip fraction");
    let g = checked_gradient(&logp, loss_of(&ppo, inputs, Aggregation::BatchTokenMean));
    let want = [0.0, 0.0, -0.5, -0.9, 0.0, 1.5, 1.25, 0.0].map(|v| v / 7.0);
    for (got, want) in g.iter().zip(want) {
        assert_close(*got, want, 1e-9, "ppo gradient");
    }
    // Missing old log-probabilities, or a bad range, are errors.
    let no_old = TokenInputs {
        old_logp: None,
        ..inputs
    };
    assert!(dapo.per_token(&no_old).is_err());
    let bad = PpoClip {
        clip_low: 1.0,
        clip_high: 0.2,
    };
    assert!(bad.per_token(&inputs).is_err());
}

#[test]
fn ppo_clip_runs_in_f32_and_mixed_dtypes() {
    // The same grid in F32 (with an F32 mask): values within f32 precision of f64.
    let (logp, old, mask, adv) = ppo_grid();
    let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let (logp32, old32, mask32, adv32) = (f32s(&logp), f32s(&old), f32s(&mask), f32s(&adv));
    let dapo = PpoClip {
        clip_low: 0.2,
        clip_high: 0.28,
    };
    let run = |logp: &Tensor, old: &Tensor, mask: &Tensor, adv: &Tensor| {
        let inputs = TokenInputs {
            old_logp: Some(old),
            advantages: Some(adv),
            ..TokenInputs::new(logp, mask)
        };
        let (pt, stats) = dapo.per_token(&inputs).unwrap();
        (
            scalar(&aggregate(&pt, mask, Aggregation::TokenMean).unwrap()),
            stats,
        )
    };
    let (l64, s64) = run(&logp, &old, &mask, &adv);
    let (l32, s32) = run(&logp32, &old32, &mask32, &adv32);
    assert_close(l32, l64, 1e-5, "f32 vs f64 loss");
    assert_close(s32.clip_fraction, s64.clip_fraction, 1e-9, "clip fraction");
    // An F32 mask with F64 log-probabilities is converted.
    let (mixed, _) = run(&logp, &old, &mask32, &adv32);
    assert_close(mixed, l64, 1e-12, "mixed dtypes");
    // F32 gradients flow.
    let var = Var::from_tensor(&logp32).unwrap();
    let inputs = TokenInputs {
        logp: var.as_tensor(),
        old_logp: Some(&old32),
        advantages: Some(&adv32),
        ..TokenInputs::new(&logp32, &mask32)
    };
    let (pt, _) = dapo.per_token(&inputs).unwrap();
    let grads = aggregate(&pt, &mask32, Aggregation::BatchTokenMean)
        .unwrap()
        .backward()
        .unwrap();
    let g = rows(grads.get(var.as_tensor()).unwrap());
    assert_close(g[0][0], -1.25 / 7.0, 1e-6, "f32 gradient");
    assert_eq!(g[1][3], 0.0);
}

#[test]
fn sft_matches_hand_computation_and_finite_differences() {
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, f64::NEG_INFINITY]]);
    let mask = mask23();
    let inputs = TokenInputs::new(&logp, &mask);
    let (per_token, stats) = Sft.per_token(&inputs).unwrap();
    let s = |x: f64| Some(x);
    assert_grid(
        &per_token,
        &[&[s(1.0), s(2.0), s(0.5)], &[s(0.3), s(1.5), None]],
        TOL,
        "sft",
    );
    assert_close(stats.loss, 5.3 / 5.0, TOL, "mean");
    // Token mean: (3.5/3 + 1.8/2) / 2.
    let loss = aggregate(&per_token, &mask, Aggregation::TokenMean).unwrap();
    assert_close(scalar(&loss), (3.5 / 3.0 + 0.9) / 2.0, TOL, "token mean");
    let g = checked_gradient(
        &t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -9.0]]),
        loss_of(&Sft, inputs, Aggregation::TokenMean),
    );
    let (a, b) = (-1.0 / 6.0, -0.25);
    for (got, want) in g.iter().zip([a, a, a, b, b, 0.0]) {
        assert_close(*got, want, TOL, "sft gradient");
    }
}

#[test]
fn total_loss_adds_ppo_and_a_tenth_of_k3() {
    // PPO (0.2): log-ratios ln(1.5, 1, 0.5) with A = 1 -> (-1.2, -1, -0.5); ln(0.7, 1.1)
    // with A = -1 -> (0.8, 1.1). Sum -0.8 over 5 tokens: -0.16.
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -4.0]]);
    let l = rows(&logp);
    let ratio = [[1.5f64, 1.0, 0.5], [0.7, 1.1, 1.0]];
    let mut old = [[0.0; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            old[i][j] = l[i][j] - ratio[i][j].ln();
        }
    }
    let old = t2(&old);
    let (_, reference) = kl_grid();
    let mask = mask23();
    let adv = t1(&[1.0, -1.0]);
    let inputs = TokenInputs {
        old_logp: Some(&old),
        ref_logp: Some(&reference),
        advantages: Some(&adv),
        ..TokenInputs::new(&logp, &mask)
    };
    let ppo = PpoClip {
        clip_low: 0.2,
        clip_high: 0.2,
    };
    let kl = KlPenalty {
        estimator: KlEstimator::K3,
    };
    let terms: [(&dyn TokenLoss, f64); 2] = [(&ppo, 1.0), (&kl, 0.1)];
    let (total, stats) = total_loss(&terms, &inputs, Aggregation::BatchTokenMean).unwrap();
    // k3 at log r = (-0.5, 0.3, 1, -1.2, 0), mean over 5 tokens.
    let k3 = [-0.5f64, 0.3, 1.0, -1.2, 0.0]
        .iter()
        .map(|l| l.exp() - 1.0 - l)
        .sum::<f64>()
        / 5.0;
    assert_close(scalar(&total), -0.16 + 0.1 * k3, 1e-12, "total");
    assert_eq!(stats.len(), 2);
    assert_eq!((stats[0].name, stats[1].name), ("ppo", "kl"));
    assert_close(stats[0].loss, -0.16, 1e-12, "ppo term");
    assert_close(stats[1].loss, k3, 1e-12, "kl term");
    assert_close(stats[1].kl, k3, 1e-12, "kl statistic");
    // The clip binds at r = 1.5 (A = 1) and r = 0.7 (A = -1): 2 of 5 tokens.
    assert_close(stats[0].clip_fraction, 0.4, TOL, "clip fraction");
    // The gradient is the sum of the terms' gradients: PPO -r A / 5 where unclipped,
    // plus 0.1 (1 - e^{log r}) / 5.
    let g = checked_gradient(&logp, |x| {
        let inputs = TokenInputs { logp: x, ..inputs };
        total_loss(&terms, &inputs, Aggregation::BatchTokenMean)
            .unwrap()
            .0
    });
    let pg = [0.0, -1.0, -0.5, 0.0, 1.1, 0.0];
    let lr = [-0.5f64, 0.3, 1.0, -1.2, 0.0, 0.0];
    for i in 0..5 {
        let want = (pg[i] + 0.1 * (1.0 - lr[i].exp())) / 5.0;
        assert_close(g[i], want, 1e-9, "total gradient");
    }
    assert_eq!(g[5], 0.0);
    assert!(total_loss(&[], &inputs, Aggregation::TokenMean).is_err());
}

#[test]
fn losses_by_name() {
    let names = [
        ("pg", "pg"),
        ("ppo", "ppo"),
        ("nft", "nft"),
        ("rft", "rft"),
        ("sft", "sft"),
    ];
    for (name, want) in names {
        let loss = policy_loss_from_name(name, 0.2, 0.28, 1.0, 1).unwrap();
        assert_eq!(loss.name(), want);
    }
    let ppo = policy_loss_from_name("ppo", 0.2, 0.28, 1.0, 1).unwrap();
    assert_eq!(
        format!("{ppo:?}"),
        format!(
            "{:?}",
            PpoClip {
                clip_low: 0.2,
                clip_high: 0.28
            }
        )
    );
    let rft = policy_loss_from_name("rft", 0.2, 0.2, 1.0, 2).unwrap();
    assert_eq!(
        format!("{rft:?}"),
        format!(
            "{:?}",
            Nft {
                neg_weight: 0.0,
                normalize: 2
            }
        )
    );
    for bad in ["grpo", "dpo", ""] {
        let err = policy_loss_from_name(bad, 0.2, 0.2, 1.0, 1).unwrap_err();
        assert!(matches!(err, crate::Error::Invalid(_)));
        assert!(err.to_string().contains("pg, ppo, nft, rft, sft"), "{err}");
    }
    assert!(policy_loss_from_name("ppo", -0.1, 0.2, 1.0, 1).is_err());
    assert!(policy_loss_from_name("nft", 0.2, 0.2, 1.0, 5).is_err());

    assert_eq!(pair_loss_from_name("dpo", 0.1).unwrap().name(), "dpo");
    let ipo = pair_loss_from_name("ipo", 0.1).unwrap();
    assert_eq!(format!("{ipo:?}"), format!("{:?}", Ipo { tau: 0.1 }));
    let err = pair_loss_from_name("kto", 0.1).unwrap_err();
    assert!(err.to_string().contains("dpo, ipo"), "{err}");
    assert!(pair_loss_from_name("dpo", 0.0).is_err());

    assert!(divergence_from_name("none").unwrap().is_none());
    for (name, want) in [
        ("k1", "kl"),
        ("k2", "kl"),
        ("k3", "kl"),
        ("forward", "forward_kl"),
        ("js", "js"),
    ] {
        assert_eq!(divergence_from_name(name).unwrap().unwrap().name(), want);
    }
    let k2 = divergence_from_name("k2").unwrap().unwrap();
    assert_eq!(
        format!("{k2:?}"),
        format!(
            "{:?}",
            KlPenalty {
                estimator: KlEstimator::K2
            }
        )
    );
    let err = divergence_from_name("reverse").unwrap_err();
    assert!(
        err.to_string().contains("none, k1, k2, k3, forward, js"),
        "{err}"
    );
}
