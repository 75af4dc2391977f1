//! `spar train` on a proposer/solver config (one with a `[propose]` table,
//! `spar_rl::loops::propose`): progress, one line per step, the held-out accuracy per hop
//! count with its interval, the report.

use anyhow::Context as _;
use spar_rl::config::propose::ProposeConfig;
use spar_rl::loops::propose::ProposeLoop;
use spar_rl::trainer::Line;

use super::{loop_error, number, show_step, step_bar};
use crate::UsageError;

/// Parses the config (with `--set` overrides), builds the loop before the run directory is
/// made, and runs it.
pub(super) fn run(
    text: &str,
    sets: &[String],
    config_path: &std::path::Path,
    out: &std::path::Path,
    resume: bool,
) -> anyhow::Result<()> {
    let config = ProposeConfig::parse(text, sets)
        .map_err(|e| UsageError(format!("{}: {e}", config_path.display())))?;
    let mut lp = ProposeLoop::new(&config).map_err(|e| loop_error(config_path, e))?;
    let hops = config.eval_hops();
    let bar = step_bar(config.run.steps, out);
    let on_line = &mut |m: &Line| {
        let mut line = format!("step {:>4}", m.step);
        if m.get("propose/solver/accuracy").is_some() {
            line.push_str(&format!(
                "  solver {:.3}  problems: hops {:.2} trivial {:.2} unsolved {:.2}",
                number(m, "propose/solver/accuracy"),
                number(m, "propose/problems/mean_hops"),
                number(m, "propose/problems/trivial_rate"),
                number(m, "propose/problems/unsolved_rate"),
            ));
        }
        if m.get("propose/proposer/reward").is_some() {
            line.push_str(&format!(
                "  proposer: reward {:.3} invalid {:.2} d {:.2} distinct {:.2}",
                number(m, "propose/proposer/reward"),
                number(m, "propose/proposer/invalid_rate"),
                number(m, "propose/proposals/difficulty"),
                number(m, "propose/proposals/distinct"),
            ));
        }
        if m.get("eval/arithmetic/accuracy").is_some() {
            line.push_str(&format!(
                "  | eval {:.3}",
                number(m, "eval/arithmetic/accuracy")
            ));
        }
        show_step(&bar, m.step, line);
    };
    let history = spar_rl::trainer::run(&mut lp, out, resume, on_line)
        .with_context(|| format!("training in {}", out.display()))?;
    bar.finish_and_clear();
    let header: Vec<String> = hops.iter().map(|h| format!("{h} ops [95% CI]  ")).collect();
    println!("step  {}", header.join("  "));
    for m in history
        .iter()
        .filter(|m| m.get("eval/arithmetic/accuracy").is_some())
    {
        let cells: Vec<String> = hops
            .iter()
            .map(|h| {
                let v = number(m, &format!("eval/arithmetic/hops-{h}/accuracy"));
                let ci = number(m, &format!("eval/arithmetic/hops-{h}/accuracy_ci95"));
                format!("{v:.3} ± {ci:.3}   ")
            })
            .collect();
        println!("{:>4}  {}", m.step, cells.join("  "));
    }
    match spar_report::report::write_report(out) {
        Ok(files) => eprintln!("report: {}", files.summary.display()),
        Err(e) => eprintln!("report not written: {e}"),
    }
    if let Some(last) = history.last() {
        println!("{}", serde_json::to_string(last)?);
    }
    Ok(())
}
