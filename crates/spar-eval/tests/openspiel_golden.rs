//! spar-eval against OpenSpiel: CFR traces on Kuhn Poker computed with OpenSpiel 2.0.2
//! (PyPI `open_spiel`) by `tests/golden/openspiel_golden.py`. The algorithms are the same
//! arithmetic in the same order, so the traces agree to rounding error.
//!
//! Note on OpenSpiel issue #1287: its "tabular CFR" trace (0.667 / 0.583 / 0.481 / 0.280 /
//! 0.205 after steps 0/1/2/4/8) does not come from `cfr.CFRSolver` as released; running
//! `CFRSolver` itself gives the values below (0.9167 after one iteration: the average of
//! one uniform policy is uniform, whose NashConv is 11/12).

use spar_eval::{CfrSolver, CfrVariant};
use spar_games::kuhn::KuhnPoker;

fn nash_conv_trace(variant: CfrVariant, checkpoints: &[usize]) -> Vec<(usize, f64)> {
    let mut solver = CfrSolver::new(&KuhnPoker::new(), variant).unwrap();
    let mut trace = Vec::new();
    for &checkpoint in checkpoints {
        solver.run(checkpoint - solver.iterations());
        trace.push((checkpoint, solver.nash_conv().unwrap().nash_conv));
    }
    trace
}

fn assert_trace(variant: CfrVariant, golden: &[(usize, f64)]) {
    let checkpoints: Vec<usize> = golden.iter().map(|&(i, _)| i).collect();
    for ((iteration, ours), &(_, theirs)) in nash_conv_trace(variant, &checkpoints)
        .into_iter()
        .zip(golden)
    {
        assert!(
            (ours - theirs).abs() < 1e-9,
            "{variant:?} after {iteration} iterations: NashConv {ours}, OpenSpiel {theirs}"
        );
    }
}

#[test]
fn cfr_matches_openspiel_cfr_solver_on_kuhn() {
    // open_spiel.python.algorithms.cfr.CFRSolver (alternating updates, uniform averaging).
    assert_trace(
        CfrVariant::Cfr,
        &[
            (1, 0.9166666666666666),
            (2, 0.5416666666666667),
            (3, 0.3888888888888888),
            (5, 0.24277777777777781),
            (10, 0.1373975876343151),
            (100, 0.016451954631830412),
        ],
    );
}

#[test]
fn cfr_plus_matches_openspiel_cfr_plus_solver_on_kuhn() {
    // open_spiel.python.algorithms.cfr.CFRPlusSolver (RM+, alternating, linear averaging).
    assert_trace(
        CfrVariant::CfrPlus,
        &[
            (1, 0.9166666666666666),
            (2, 0.5277777777777777),
            (3, 0.28263403263403275),
            (5, 0.14668905899189577),
            (10, 0.06537418133668965),
            (100, 0.002388808202223369),
        ],
    );
}

#[test]
fn simultaneous_cfr_matches_openspiel_on_kuhn() {
    // cfr._CFRSolver(game, regret_matching_plus=False, alternating_updates=False,
    // linear_averaging=False).
    assert_trace(
        CfrVariant::Simultaneous,
        &[
            (1, 0.9166666666666666),
            (2, 0.625),
            (3, 0.5416666666666666),
            (5, 0.3771464646464646),
            (10, 0.19241700040281007),
            (100, 0.0513494716938957),
        ],
    );
}
