//! `spar train` on an Agent-R config (one with an `[agent_r]` table,
//! `spar_rl::loops::agent_r`): progress, one line per step, the held-out curve, the report.

use anyhow::Context as _;
use spar_rl::config::agent_r::AgentRConfig;
use spar_rl::loops::agent_r::AgentRLoop;
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
    let config = AgentRConfig::parse(text, sets)
        .map_err(|e| UsageError(format!("{}: {e}", config_path.display())))?;
    let mut lp = AgentRLoop::new(&config).map_err(|e| loop_error(config_path, e))?;
    let env = spar_games::tasks::COUNTDOWN_STEPS;
    let bar = step_bar(config.run.steps, out);
    let on_line = &mut |m: &Line| {
        let mut line = format!(
            "step {:>4}  solved {:.3} paths {:.3} revisions {:>3} good {:>3} splice@{:.2}  \
             loss {:+.4}",
            m.step,
            number(m, "agent_r/solved_rate"),
            number(m, "agent_r/success_rate"),
            number(m, "agent_r/revision_pairs"),
            number(m, "agent_r/good_trajectories"),
            number(m, "agent_r/splice_position"),
            number(m, "learner/loss")
        );
        if m.get(&format!("eval/{env}/success_rate")).is_some() {
            line.push_str(&format!(
                "  | eval success {:.3} recovery {:.3} loops {:.3}",
                number(m, &format!("eval/{env}/success_rate")),
                number(m, &format!("eval/{env}/recovery/success_rate")),
                number(m, &format!("eval/{env}/loop_rate")),
            ));
        }
        show_step(&bar, m.step, line);
    };
    let history = spar_rl::trainer::run(&mut lp, out, resume, on_line)
        .with_context(|| format!("training in {}", out.display()))?;
    bar.finish_and_clear();
    println!("step  success  [95% CI]          recovery  [95% CI]          loop rate");
    for m in history
        .iter()
        .filter(|m| m.get(&format!("eval/{env}/success_rate")).is_some())
    {
        let v = |k: &str| number(m, &format!("eval/{env}/{k}"));
        println!(
            "{:>4}  {:.4}   [{:.3}, {:.3}]    {:.4}    [{:.3}, {:.3}]    {:.4}",
            m.step,
            v("success_rate"),
            v("success_ci95_low"),
            v("success_ci95_high"),
            v("recovery/success_rate"),
            v("recovery/success_ci95_low"),
            v("recovery/success_ci95_high"),
            v("loop_rate"),
        );
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
