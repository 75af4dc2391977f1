//! NFT (negative-aware fine-tuning): hand-computed values, the straight-through clamp,
//! finite-difference gradients and its on-policy equality with Dr. GRPO / GRPO.

use super::*;

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
