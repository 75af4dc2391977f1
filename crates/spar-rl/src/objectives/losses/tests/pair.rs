//! Sequence log-probabilities and the preference losses (DPO, IPO): hand-computed values and
//! finite-difference gradients.

use super::*;

#[test]
fn sequence_logp_sums_real_tokens() {
    let logp = t2(&[[-1.0, -2.0, -0.5], [-0.3, -1.5, f64::NAN]]);
    let s: Vec<f64> = sequence_logp(&logp, &mask23()).unwrap().to_vec1().unwrap();
    assert_close(s[0], -3.5, TOL, "row 0");
    assert_close(s[1], -1.8, TOL, "row 1");
    assert!(sequence_logp(&t1(&[1.0]), &t1(&[1.0])).is_err());
}

/// Two pairs: h = (chosen - ref_chosen) - (rejected - ref_rejected) = (0.7, -0.6).
fn pairs() -> [Tensor; 4] {
    [
        t1(&[-3.0, -5.0]),
        t1(&[-4.0, -4.0]),
        t1(&[-3.5, -4.5]),
        t1(&[-3.8, -4.1]),
    ]
}

/// Gradients of `loss` with respect to chosen and rejected, each checked against finite
/// differences.
fn pair_gradients(loss: &dyn PairLoss, p: &[Tensor; 4]) -> (Vec<f64>, Vec<f64>) {
    let gc = checked_gradient(&p[0], |c| loss.loss(c, &p[1], &p[2], &p[3]).unwrap().0);
    let gr = checked_gradient(&p[1], |r| loss.loss(&p[0], r, &p[2], &p[3]).unwrap().0);
    (gc, gr)
}

#[test]
fn dpo_matches_hand_computation_and_finite_differences() {
    let p = pairs();
    let dpo = Dpo { beta: 0.1 };
    let (loss, stats) = dpo.loss(&p[0], &p[1], &p[2], &p[3]).unwrap();
    // -log sigmoid(x) = ln(1 + e^{-x}) at x = beta h = (0.07, -0.06).
    let nls = |x: f64| (1.0 + (-x).exp()).ln();
    let want = (nls(0.07) + nls(-0.06)) / 2.0;
    assert_close(scalar(&loss), want, 1e-12, "dpo loss");
    assert_close(stats.loss, want, 1e-12, "dpo stats loss");
    assert_close(stats.margin, 0.1 * (0.7 - 0.6) / 2.0, 1e-12, "margin");
    assert_close(stats.accuracy, 0.5, TOL, "accuracy");
    assert_eq!(stats.pairs, 2);
    // d/d chosen = -beta sigmoid(-beta h) / P, d/d rejected = +beta sigmoid(-beta h) / P.
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let (gc, gr) = pair_gradients(&dpo, &p);
    for (i, h) in [0.7, -0.6].into_iter().enumerate() {
        let w = 0.1 * sig(-0.1 * h) / 2.0;
        assert_close(gc[i], -w, 1e-12, "dpo chosen gradient");
        assert_close(gr[i], w, 1e-12, "dpo rejected gradient");
    }
    // At h = 0 (policy = reference): loss ln 2, gradient -beta / 2 / P exactly.
    let same = [p[0].clone(), p[1].clone(), p[0].clone(), p[1].clone()];
    let (loss, stats) = dpo.loss(&same[0], &same[1], &same[2], &same[3]).unwrap();
    assert_close(scalar(&loss), 2f64.ln(), 1e-15, "dpo at h = 0");
    assert_eq!(stats.accuracy, 0.0);
    let (gc, gr) = pair_gradients(&dpo, &same);
    assert_close(gc[0], -0.1 / 4.0, 1e-15, "dpo gradient at h = 0");
    assert_close(gr[1], 0.1 / 4.0, 1e-15, "dpo gradient at h = 0");
    // Stable at large margins: beta h = +-1000 gives 0 and 1000, finite gradients.
    let far = [
        t1(&[1000.0, -1000.0]),
        t1(&[0.0, 0.0]),
        t1(&[0.0, 0.0]),
        t1(&[0.0, 0.0]),
    ];
    let big = Dpo { beta: 1.0 };
    let (loss, stats) = big.loss(&far[0], &far[1], &far[2], &far[3]).unwrap();
    assert_close(scalar(&loss), 500.0, 1e-9, "dpo at large margins");
    assert_eq!(stats.accuracy, 0.5);
    let (gc, _) = pair_gradients(&big, &far);
    assert_close(gc[0], 0.0, 1e-12, "saturated pair");
    assert_close(gc[1], -0.5, 1e-12, "saturated pair");
    assert!(dpo.loss(&p[0], &t1(&[1.0]), &p[2], &p[3]).is_err());
}

#[test]
fn ipo_matches_hand_computation_and_finite_differences() {
    let p = pairs();
    // tau = 0.5: target 1/(2 tau) = 1; ((0.7 - 1)^2 + (-0.6 - 1)^2) / 2 = 1.325.
    let ipo = Ipo { tau: 0.5 };
    let (loss, stats) = ipo.loss(&p[0], &p[1], &p[2], &p[3]).unwrap();
    assert_close(scalar(&loss), 1.325, 1e-12, "ipo loss");
    assert_close(stats.margin, 0.05, 1e-12, "margin");
    assert_close(stats.accuracy, 0.5, TOL, "accuracy");
    // d/d chosen = 2 (h - 1) / P, d/d rejected = -2 (h - 1) / P.
    let (gc, gr) = pair_gradients(&ipo, &p);
    for (i, h) in [0.7, -0.6].into_iter().enumerate() {
        assert_close(gc[i], h - 1.0, 1e-12, "ipo chosen gradient");
        assert_close(gr[i], 1.0 - h, 1e-12, "ipo rejected gradient");
    }
    assert!(Ipo { tau: 0.0 }.loss(&p[0], &p[1], &p[2], &p[3]).is_err());
}
