//! The KL penalty and its estimators, forward KL and Jensen-Shannon: hand-computed values and
//! finite-difference gradients.

use super::*;

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
