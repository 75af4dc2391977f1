//! Hand-computed values and finite-difference gradient checks of every loss.

use super::*;
use candle_core::{Device, Var};

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
fn kl_penalty_matches_hand_computation_and_finite_differences() {
    let (logp, reference) = kl_grid();
    let mask = mask23();
    let inputs = TokenInputs {
        ref_logp: Some(&reference),
        ..TokenInputs::new(&logp, &mask)
    };
    let log_r = [-0.5f64, 0.3, 1.0, -1.2, 0.0];
    // k1 = -log r, gradient (in logp) 1; k2 = (log r)^2 / 2, gradient -log r;
    // k3 = e^{log r} - 1 - log r, gradient 1 - e^{log r}.
    type Pair = (fn(f64) -> f64, fn(f64) -> f64);
    let cases: [(KlEstimator, Pair); 3] = [
        (KlEstimator::K1, (|l| -l, |_| 1.0)),
        (KlEstimator::K2, (|l| l * l / 2.0, |l| -l)),
        (KlEstimator::K3, (|l| l.exp() - 1.0 - l, |l| 1.0 - l.exp())),
    ];
    for (estimator, (value_of, grad_of)) in cases {
        let term = KlPenalty { estimator };
        let (per_token, stats) = term.per_token(&inputs).unwrap();
        let got = rows(&per_token);
        let flat = [got[0][0], got[0][1], got[0][2], got[1][0], got[1][1]];
        for (g, l) in flat.iter().zip(log_r) {
            assert_close(*g, value_of(l), 1e-12, &format!("{estimator:?}"));
        }
        let mean = log_r.iter().map(|&l| value_of(l)).sum::<f64>() / 5.0;
        assert_close(stats.kl, mean, 1e-12, "kl statistic");
        assert_close(stats.loss, mean, 1e-12, "loss statistic");
        // Token sum / 1 on a clean pad: gradient per token, 0 on padding.
        let f = loss_of(&term, inputs, Aggregation::TokenSum(1.0));
        let g = checked_gradient(&logp, f);
        let want: Vec<f64> = log_r.iter().map(|&l| grad_of(l) / 2.0).collect();
        for (i, w) in [0, 1, 2, 3, 4].iter().zip(want) {
            assert_close(g[*i], w, 1e-9, &format!("{estimator:?} gradient"));
        }
        assert_eq!(g[5], 0.0);
    }
    assert!(KlPenalty {
        estimator: KlEstimator::K3
    }
    .per_token(&TokenInputs::new(&logp, &mask))
    .is_err());
}

#[test]
fn forward_kl_matches_hand_computation_and_clamps_like_dph_rl() {
    // log u = logp - ref = [[0.5, -1, 2], [3, 25, pad]].
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -4.0]]);
    let log_u = [[0.5, -1.0, 2.0], [3.0, 25.0, 0.0]];
    let mut reference = [[0.0; 3]; 2];
    let l = rows(&logp);
    for i in 0..2 {
        for j in 0..3 {
            reference[i][j] = l[i][j] - log_u[i][j];
        }
    }
    let reference = t2(&reference);
    let mask = mask23();
    let inputs = TokenInputs {
        ref_logp: Some(&reference),
        ..TokenInputs::new(&logp, &mask)
    };
    let (per_token, stats) = ForwardKl.per_token(&inputs).unwrap();
    // u - log u - 1: e^0.5 - 1.5 = 0.148721, e^-1 = 0.367879, e^2 - 3 = 4.389056;
    // e^3 - 4 = 16.09 clamped to 10; log u = 25 clamped to 20, e^20 - 21 clamped to 10.
    let v = |x: f64| x.exp() - x - 1.0;
    let s = |x: f64| Some(x);
    assert_grid(
        &per_token,
        &[
            &[s(v(0.5)), s(v(-1.0)), s(v(2.0))],
            &[s(10.0), s(10.0), None],
        ],
        1e-12,
        "forward kl",
    );
    assert_close(
        stats.kl,
        (v(0.5) + v(-1.0) + v(2.0) + 20.0) / 5.0,
        1e-12,
        "kl statistic",
    );
    let mean_u = (0.5f64.exp() + (-1.0f64).exp() + 2f64.exp() + 3f64.exp() + 20f64.exp()) / 5.0;
    assert_close(stats.mean_ratio, mean_u, 1e-6, "mean ratio");
    // Gradient u - 1 inside both clamps (the clamps leave it whole), 0 where the value
    // (or the log-ratio) is clamped, 0 on padding.
    let g = checked_gradient(
        &logp,
        loss_of(&ForwardKl, inputs, Aggregation::TokenSum(1.0)),
    );
    let want = [
        (0.5f64.exp() - 1.0) / 2.0,
        ((-1.0f64).exp() - 1.0) / 2.0,
        (2f64.exp() - 1.0) / 2.0,
        0.0,
        0.0,
        0.0,
    ];
    for (got, want) in g.iter().zip(want) {
        assert_close(*got, want, 1e-9, "forward kl gradient");
    }
    // Averaged over samples of pi_0 = (0.5, 0.5) with pi = (0.8, 0.2), the estimator is
    // KL(pi_0 || pi) = 0.5 ln(0.5/0.8) + 0.5 ln(0.5/0.2).
    let logp = t2(&[[0.8f64.ln(), 0.2f64.ln()]]);
    let reference = t2(&[[0.5f64.ln(), 0.5f64.ln()]]);
    let ones = t2(&[[1.0, 1.0]]);
    let inputs = TokenInputs {
        ref_logp: Some(&reference),
        ..TokenInputs::new(&logp, &ones)
    };
    let (per_token, _) = ForwardKl.per_token(&inputs).unwrap();
    let kl = 0.5 * (0.5f64 / 0.8).ln() + 0.5 * (0.5f64 / 0.2).ln();
    let mean = scalar(&per_token.mean_all().unwrap());
    assert_close(mean, kl, 1e-12, "forward KL estimate");
}

#[test]
fn jensen_shannon_matches_hand_computation_and_is_minimal_at_one() {
    // log u = [[0, 1, -2], [0.3, -0.7, pad]].
    let f = |u: f64| u * u.ln() - (u + 1.0) * ((u + 1.0) / 2.0).ln();
    let log_u = [[0.0, 1.0, -2.0], [0.3, -0.7, 0.0]];
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -4.0]]);
    let l = rows(&logp);
    let mut reference = [[0.0; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            reference[i][j] = l[i][j] - log_u[i][j];
        }
    }
    let reference = t2(&reference);
    let mask = mask23();
    let inputs = TokenInputs {
        ref_logp: Some(&reference),
        ..TokenInputs::new(&logp, &mask)
    };
    let (per_token, stats) = JensenShannon.per_token(&inputs).unwrap();
    // f(e^1) = e - (e + 1) ln((e + 1)/2) = 0.2367..., f(e^-2), f(e^0.3), f(e^-0.7).
    let s = |x: f64| Some(f(x.exp()));
    assert_grid(
        &per_token,
        &[&[s(0.0), s(1.0), s(-2.0)], &[s(0.3), s(-0.7), None]],
        1e-12,
        "js",
    );
    let got = rows(&per_token);
    // f(1) = 0 and f > 0 elsewhere: a divergence, minimal at u = 1.
    assert!(got[0][0].abs() < 1e-15, "f(1) = {}", got[0][0]);
    for v in [got[0][1], got[0][2], got[1][0], got[1][1]] {
        assert!(v > 0.0, "{v}");
    }
    let mean = (f(1f64.exp()) + f((-2f64).exp()) + f(0.3f64.exp()) + f((-0.7f64).exp())) / 5.0;
    assert_close(stats.kl, mean, 1e-12, "kl statistic");
    // f'(u) = log u - log((u + 1)/2), so f'(1) = 0; per token d f / d logp = u f'(u).
    let h = 1e-5;
    assert!(((f(1.0 + h) - f(1.0 - h)) / (2.0 * h)).abs() < 1e-9);
    let g = checked_gradient(
        &logp,
        loss_of(&JensenShannon, inputs, Aggregation::TokenSum(1.0)),
    );
    let d = |x: f64| {
        let u = x.exp();
        u * (x - ((u + 1.0) / 2.0).ln()) / 2.0
    };
    let want = [d(0.0), d(1.0), d(-2.0), d(0.3), d(-0.7), 0.0];
    for (got, want) in g.iter().zip(want) {
        assert_close(*got, want, 1e-9, "js gradient");
    }
    // The gradient at u = 1 is exactly 0.
    assert!(g[0].abs() < 1e-15, "f'(1) through backward: {}", g[0]);
}

#[test]
fn nft_matches_hand_computation_with_straight_through_clamp() {
    // r_q = 0.25 for both samples (w = 1 - r_q = 0.75), neg_weight 0.5.
    // Sample 0 is correct with log-ratios (0.3, -0.2, 11); sample 1 is incorrect with
    // log-ratios (-0.5, 0.4, pad).
    let d = [[0.3, -0.2, 11.0], [-0.5, 0.4, 0.0]];
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -4.0]]);
    let l = rows(&logp);
    let mut old = [[0.0; 3]; 2];
    for i in 0..2 {
        for j in 0..3 {
            old[i][j] = l[i][j] - d[i][j];
        }
    }
    let old = t2(&old);
    let mask = mask23();
    let (correct, rate) = (t1(&[1.0, 0.0]), t1(&[0.25, 0.25]));
    let inputs = TokenInputs {
        old_logp: Some(&old),
        correct: Some(&correct),
        group_rate: Some(&rate),
        ..TokenInputs::new(&logp, &mask)
    };
    let nft = Nft {
        neg_weight: 0.5,
        normalize: 1,
    };
    let (per_token, stats) = nft.per_token(&inputs).unwrap();
    // Correct: L+ = -min(d, 10): (-0.3, 0.2, -10) * 0.75 = (-0.225, 0.15, -7.5).
    // Incorrect, d = -0.5: R = e^-0.5 = 0.606531, proxy = (1 - 0.25 R) / 0.75 = 1.131156,
    //   L- = -ln(1.131156) = -0.123240, times neg_weight * w = 0.375.
    // Incorrect, d = 0.4: R = 1.491825, proxy = 0.836058 < 1: value -ln(max(., 1)) = 0.
    let r = 0.25f64;
    let proxy = |d: f64| (1.0 - r * d.exp()) / (1.0 - r);
    let s = |x: f64| Some(x);
    assert_grid(
        &per_token,
        &[
            &[s(-0.225), s(0.15), s(-7.5)],
            &[s(-0.375 * proxy(-0.5).ln()), s(0.0), None],
        ],
        1e-12,
        "nft",
    );
    assert!(proxy(0.4) < 1.0 && proxy(-0.5) > 1.0);
    // Clipped: d = 11 > 10 and the raised proxy: 2 of 5 tokens.
    assert_close(stats.clip_fraction, 0.4, TOL, "clip fraction");
    assert_close(stats.approx_kl, -11.0 / 5.0, 1e-12, "approx kl");
    let mean_r =
        (0.3f64.exp() + (-0.2f64).exp() + 10f64.exp() + (-0.5f64).exp() + 0.4f64.exp()) / 5.0;
    assert_close(stats.mean_ratio, mean_r, 1e-9, "mean ratio");
    assert_eq!(nft.name(), "nft");
    // Gradients (token sum / 1, two samples: / 2). Correct: -w = -0.75 while d <= 10, 0
    // above (the clamp of min(d, 10)). Incorrect: neg_weight w r R / ((1 - r) max(proxy, 1))
    // -- also where the clamp raised the value to 1 (straight-through: the value is
    // flat there but the gradient is not).
    let var = Var::from_tensor(&logp).unwrap();
    let grads = loss_of(&nft, inputs, Aggregation::TokenSum(1.0))(var.as_tensor())
        .backward()
        .unwrap();
    let g = rows(grads.get(var.as_tensor()).unwrap());
    let neg = |d: f64| 0.375 * r * d.exp() / ((1.0 - r) * proxy(d).max(1.0)) / 2.0;
    let want = [[-0.375, -0.375, 0.0], [neg(-0.5), neg(0.4), 0.0]];
    for i in 0..2 {
        for j in 0..3 {
            assert_close(
                g[i][j],
                want[i][j],
                1e-12,
                &format!("nft gradient [{i}][{j}]"),
            );
        }
    }
    assert!(g[1][1] > 0.0, "the raised token still pushes R down");
    // RFT (neg_weight 0): incorrect answers contribute nothing.
    let rft = Nft {
        neg_weight: 0.0,
        normalize: 1,
    };
    let (per_token, stats) = rft.per_token(&inputs).unwrap();
    assert_eq!(rft.name(), "rft");
    assert_grid(&per_token, &[&[], &[s(0.0), s(0.0), None]], 0.0, "rft");
    assert_close(stats.clip_fraction, 0.2, TOL, "rft clip fraction");
    // normalize 2: w = sqrt(0.75 / 0.25) = sqrt(3).
    let grpo = Nft {
        neg_weight: 0.5,
        normalize: 2,
    };
    let (per_token, _) = grpo.per_token(&inputs).unwrap();
    assert_grid(
        &per_token,
        &[&[s(-0.3 * 3f64.sqrt())], &[]],
        1e-12,
        "nft normalize 2",
    );
    // normalize 0: w = 1.
    let plain = Nft {
        neg_weight: 0.5,
        normalize: 0,
    };
    let (per_token, _) = plain.per_token(&inputs).unwrap();
    assert_grid(&per_token, &[&[s(-0.3)], &[]], 1e-12, "nft normalize 0");
    let bad = Nft {
        neg_weight: 1.0,
        normalize: 3,
    };
    assert!(bad.per_token(&inputs).is_err());
    let no_rate = TokenInputs {
        group_rate: None,
        ..inputs
    };
    assert!(nft.per_token(&no_rate).is_err());
}

#[test]
fn nft_gradient_matches_finite_differences_off_policy() {
    // Off-policy, away from the clamps (every incorrect token has R < 1, proxy > 1);
    // rates 0.25 and 0.6, both normalisations.
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, -4.0]]);
    let old = t2(&[[-1.2, -1.9, -0.9], [-0.1, -1.2, f64::NAN]]);
    let mask = mask23();
    let (correct, rate) = (t1(&[1.0, 0.0]), t1(&[0.25, 0.6]));
    let inputs = TokenInputs {
        old_logp: Some(&old),
        correct: Some(&correct),
        group_rate: Some(&rate),
        ..TokenInputs::new(&logp, &mask)
    };
    for normalize in [1, 2] {
        let nft = Nft {
            neg_weight: 1.0,
            normalize,
        };
        let g = checked_gradient(&logp, loss_of(&nft, inputs, Aggregation::TokenMean));
        assert_eq!(g[5], 0.0);
        assert!(g[0] < 0.0 && g[3] > 0.0, "{g:?}");
    }
}

#[test]
fn nft_on_policy_gradient_equals_dr_grpo_and_grpo_policy_gradient() {
    // Derivation, per token, at logp == old (R = 1, proxy = 1, no clamp active):
    //   d L+ / d logp = -1;  d L- / d logp = r_q / ((1 - r_q) max(1, 1)) = r_q / (1 - r_q).
    //   normalize 1 (w = 1 - r_q), neg_weight 1:
    //     correct:   -(1 - r_q)                 = -(c - r_q) with c = 1,
    //     incorrect: (1 - r_q) r_q / (1 - r_q) = r_q = -(c - r_q) with c = 0,
    //   i.e. exactly the gradient -A of -A logp with the Dr. GRPO advantage A = c - r_q.
    //   normalize 2 (w = sqrt((1 - r_q) / r_q)):
    //     correct:   -sqrt((1 - r_q) / r_q) = -(1 - r_q) / sqrt(r_q (1 - r_q)),
    //     incorrect: sqrt((1 - r_q) / r_q) r_q / (1 - r_q) = r_q / sqrt(r_q (1 - r_q)),
    //   i.e. -A with the GRPO advantage A = (c - r_q) / sqrt(r_q (1 - r_q)) (population
    //   std of a group with correct rate r_q).
    //   RFT (neg_weight 0, normalize 1): A = c (1 - r_q).
    let logp = t2(&[
        [-1.0, -2.0, -0.5],
        [-0.3, -1.5, -4.0],
        [-0.7, -0.2, -3.0],
        [-2.2, -0.9, -1.1],
    ]);
    let mask = t2(&[
        [1.0, 1.0, 1.0],
        [1.0, 1.0, 0.0],
        [1.0, 0.0, 0.0],
        [1.0, 1.0, 1.0],
    ]);
    let c = [1.0, 0.0, 1.0, 0.0];
    let r = [0.25, 0.25, 0.75, 0.75];
    let (correct, rate) = (t1(&c), t1(&r));
    let old = logp.clone();
    let grad_of = |loss: &dyn TokenLoss, adv: Option<&Tensor>, agg| {
        let var = Var::from_tensor(&logp).unwrap();
        let inputs = TokenInputs {
            logp: var.as_tensor(),
            mask: &mask,
            old_logp: Some(&old),
            ref_logp: None,
            advantages: adv,
            correct: Some(&correct),
            group_rate: Some(&rate),
            entropy: None,
        };
        let (pt, _) = loss.per_token(&inputs).unwrap();
        let grads = aggregate(&pt, &mask, agg).unwrap().backward().unwrap();
        rows(grads.get(var.as_tensor()).unwrap())
    };
    let advantages = |f: &dyn Fn(f64, f64) -> f64| {
        t1(&c.iter().zip(r).map(|(&c, r)| f(c, r)).collect::<Vec<_>>())
    };
    let dr_grpo = advantages(&|c, r| c - r);
    let grpo = advantages(&|c, r| (c - r) / (r * (1.0 - r)).sqrt());
    let rft_adv = advantages(&|c, r| c * (1.0 - r));
    let cases = [(1.0, 1, &dr_grpo), (1.0, 2, &grpo), (0.0, 1, &rft_adv)];
    for agg in [Aggregation::TokenSum(1000.0), Aggregation::BatchTokenMean] {
        for (neg_weight, normalize, adv) in cases {
            let nft = Nft {
                neg_weight,
                normalize,
            };
            let g_nft = grad_of(&nft, None, agg);
            let g_pg = grad_of(&PolicyGradient, Some(adv), agg);
            for i in 0..4 {
                for j in 0..3 {
                    assert_close(
                        g_nft[i][j],
                        g_pg[i][j],
                        1e-15,
                        &format!("{nft:?} vs pg [{i}][{j}]"),
                    );
                }
            }
            // Not trivially zero.
            assert!(g_nft[0][0].abs() > 1e-6);
        }
    }
    // The clamp of r_q: rates 1 and 0 act as 0.98 and 0.02 (on-policy gradient -(1 - r_q)
    // for the correct sample and r_q for the incorrect one, token sum / 1, / 2 samples).
    let logp2 = t2(&[[-1.0], [-2.0]]);
    let mask2 = t2(&[[1.0], [1.0]]);
    let (c2, r2) = (t1(&[1.0, 0.0]), t1(&[1.0, 0.0]));
    let var = Var::from_tensor(&logp2).unwrap();
    let inputs = TokenInputs {
        old_logp: Some(&logp2),
        correct: Some(&c2),
        group_rate: Some(&r2),
        ..TokenInputs::new(var.as_tensor(), &mask2)
    };
    let nft = Nft {
        neg_weight: 1.0,
        normalize: 1,
    };
    let (pt, _) = nft.per_token(&inputs).unwrap();
    let grads = aggregate(&pt, &mask2, Aggregation::TokenSum(1.0))
        .unwrap()
        .backward()
        .unwrap();
    let g = rows(grads.get(var.as_tensor()).unwrap());
    assert_close(g[0][0], -0.02 / 2.0, 1e-12, "r_q = 1 clamped to 0.98");
    assert_close(g[1][0], 0.02 / 2.0, 1e-12, "r_q = 0 clamped to 0.02");
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

#[test]
fn kl_estimators_match_hand_computation() {
    // log pi = -1, log pi_ref = -1.5: log r = -0.5.
    let logp = Tensor::new(&[-1f32, -2.0], &Device::Cpu).unwrap();
    let reference = Tensor::new(&[-1.5f32, -2.0], &Device::Cpu).unwrap();
    let values = |e| {
        kl_estimate(e, &logp, &reference)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let k1 = values(KlEstimator::K1);
    let k2 = values(KlEstimator::K2);
    let k3 = values(KlEstimator::K3);
    assert!((k1[0] - 0.5).abs() < 1e-6, "{k1:?}");
    assert!((k2[0] - 0.125).abs() < 1e-6, "{k2:?}");
    let expected = (-0.5f32).exp() - 1.0 + 0.5; // 0.10653066
    assert!((k3[0] - expected).abs() < 1e-6, "{k3:?}");
    // Equal log-probabilities: every estimator is 0.
    assert_eq!((k1[1], k2[1], k3[1]), (0.0, 0.0, 0.0));
    // Averaged over samples of a known distribution, k1 and k3 estimate the exact KL.
    // pi = (0.75, 0.25), pi_ref = (0.5, 0.5): KL(pi || pi_ref) = 0.75 ln 1.5 + 0.25 ln 0.5.
    let kl = 0.75f64 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
    let logp = Tensor::new(&[0.75f32.ln(), 0.25f32.ln()], &Device::Cpu).unwrap();
    let reference = Tensor::new(&[0.5f32.ln(), 0.5f32.ln()], &Device::Cpu).unwrap();
    for e in [KlEstimator::K1, KlEstimator::K3] {
        let v = kl_estimate(e, &logp, &reference)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mean = 0.75 * f64::from(v[0]) + 0.25 * f64::from(v[1]);
        assert!((mean - kl).abs() < 1e-6, "{e:?}: {mean} vs {kl}");
    }
    assert!("k4".parse::<KlEstimator>().is_err());
}
