//! Prints NashConv of the CFR average and current policies after each iteration (for
//! comparing with OpenSpiel's published traces):
//! `cargo run -p spar-eval --example cfr_trace`.
use spar_eval::best_response::nash_conv_on_tree;
use spar_eval::{CfrSolver, CfrVariant};
use spar_games::kuhn::KuhnPoker;

fn main() {
    for variant in [
        CfrVariant::Cfr,
        CfrVariant::Simultaneous,
        CfrVariant::CfrPlus,
    ] {
        let mut solver = CfrSolver::new(&KuhnPoker::new(), variant).expect("Kuhn's tree is small");
        let mut average = format!("{variant:?} average:");
        let mut current = format!("{variant:?} current:");
        for _ in 0..10 {
            solver.iterate();
            let nash_conv = solver
                .nash_conv()
                .expect("Kuhn is two-player zero-sum")
                .nash_conv;
            average.push_str(&format!(" {}={nash_conv:.4}", solver.iterations()));
            let table = solver
                .tree()
                .tabulate(&solver.current_policy())
                .expect("valid");
            let nash_conv = nash_conv_on_tree(solver.tree(), &table).nash_conv;
            current.push_str(&format!(" {}={nash_conv:.4}", solver.iterations()));
        }
        println!("{average}\n{current}");
    }
}
