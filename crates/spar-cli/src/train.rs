//! `spar train`: SPIRAL self-play from a TOML config (`spar_rl::loops::selfplay`).

use std::path::PathBuf;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use spar_rl::trainer::Line;
use spar_rl::TrainConfig;

use crate::UsageError;

mod agent_r;
mod propose;

/// Arguments of `spar train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The run's TOML config (see configs/ and docs/training.md); every field has a default.
    config: Option<PathBuf>,
    /// Override a config field: `--set ppo.clip=0.1` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The run directory (config.toml, metrics.jsonl, checkpoints/) [default:
    /// runs/<config name>-<UTC date-time>].
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its latest checkpoint, with its config.toml.
    #[arg(long)]
    resume: Option<PathBuf>,
}

/// `spar train --help`'s closing text: examples, then the accepted values of config keys.
pub fn after_help() -> String {
    format!("{}\n\n{}", crate::examples::TRAIN, accepted_values())
}

/// The help paragraph of the config keys whose values come from a fixed list, and those
/// lists (from the config types: `TrainConfig::choices`, `TaskTrainConfig::choices`).
pub fn accepted_values() -> String {
    const WIDTH: usize = 100;
    let section = |title: &str, keys: Vec<(&'static str, String)>| {
        let column = keys.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 4;
        let mut text = format!("{title}\n");
        for (key, values) in keys {
            // The values wrapped at WIDTH, continuation lines under the first value.
            let mut line = format!("  {key:<width$}", width = column - 2);
            for word in values.split(' ') {
                if line.len() + word.len() + 1 > WIDTH && line.len() > column {
                    text.push_str(line.trim_end());
                    text.push('\n');
                    line = " ".repeat(column);
                } else if line.len() > column {
                    line.push(' ');
                }
                line.push_str(word);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    };
    format!(
        "{}\n{}\n{}\n{}\n{}",
        section(
            "Config keys with a fixed set of values (another value is an error that names the key \
             and lists these):",
            TrainConfig::choices(),
        ),
        section(
            "In a task config (one with a [task] table):",
            spar_rl::config::tasks::TaskTrainConfig::choices(),
        ),
        section(
            "In a self-correction config (one with a [selfcorrect] table):",
            spar_rl::config::selfcorrect::SelfCorrectConfig::choices(),
        ),
        section(
            "In an Agent-R config (one with an [agent_r] table):",
            spar_rl::config::agent_r::AgentRConfig::choices(),
        ),
        section(
            "In a proposer/solver config (one with a [propose] table):",
            spar_rl::config::propose::ProposeConfig::choices(),
        )
    )
}

/// Runs `spar train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    crate::lm::set_threads();
    let (config_path, out, resume) = match (&args.resume, &args.config, &args.out) {
        (Some(dir), _, _) => (dir.join("config.toml"), dir.clone(), true),
        (None, Some(config), Some(out)) => (config.clone(), out.clone(), false),
        (None, Some(config), None) => {
            let stem = config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or("run".into());
            // A fresh directory per run: runs/<config>-<UTC date>-<time>.
            let name = format!("{stem}-{}", utc_stamp(std::time::SystemTime::now()));
            (config.clone(), PathBuf::from("runs").join(name), false)
        }
        (None, None, _) => {
            return Err(UsageError(
                "give a config file (spar train CONFIG.toml) or --resume DIR".into(),
            )
            .into())
        }
    };
    let text = std::fs::read_to_string(&config_path)
        .map_err(|e| UsageError(format!("cannot read config {}: {e}", config_path.display())))?;
    if !resume && out.join("checkpoints").exists() {
        return Err(UsageError(format!(
            "{} already holds a run; continue it with --resume {} or choose another --out",
            out.display(),
            out.display()
        ))
        .into());
    }
    if spar_rl::config::agent_r::AgentRConfig::is_agent_r_config(&text) {
        return agent_r::run(&text, &args.set, &config_path, &out, resume);
    }
    if spar_rl::config::propose::ProposeConfig::is_propose_config(&text) {
        return propose::run(&text, &args.set, &config_path, &out, resume);
    }
    if spar_rl::config::selfcorrect::SelfCorrectConfig::is_selfcorrect_config(&text) {
        let config = spar_rl::config::selfcorrect::SelfCorrectConfig::parse(&text, &args.set)
            .map_err(|e| UsageError(format!("{}: {e}", config_path.display())))?;
        if config.selfcorrect.method == spar_rl::config::selfcorrect::Method::Cosc {
            return crate::cosc::train(&config, &config_path, &out, resume);
        }
        // The loop is built (the task and the method checked) before the run directory is made.
        let lp = spar_rl::loops::selfcorrect::SelfCorrectLoop::new(&config)
            .map_err(|e| loop_error(&config_path, e))?;
        return run_selfcorrect(lp, config.run.steps, &out, resume);
    }
    if spar_rl::config::tasks::TaskTrainConfig::is_task_config(&text) {
        let config = spar_rl::config::tasks::TaskTrainConfig::parse(&text, &args.set)
            .map_err(|e| UsageError(format!("{}: {e}", config_path.display())))?;
        // The loop is built (the task and the losses checked) before the run directory is made.
        let lp = spar_rl::loops::tasks::TaskLoop::new(&config)
            .map_err(|e| loop_error(&config_path, e))?;
        return run_task(lp, &config, &out, resume);
    }
    let config = TrainConfig::parse(&text, &args.set)
        .map_err(|e| UsageError(format!("{}: {e}", config_path.display())))?;
    // The loop is built (every game, player and text option checked) before the run directory
    // is made.
    let mut lp = spar_rl::loops::selfplay::SelfPlay::new(&config)
        .map_err(|e| loop_error(&config_path, e))?;
    let bar = step_bar(config.run.steps, &out);
    let on_line = &mut |m: &Line| show_step(&bar, m.step, selfplay_progress(m));
    let history = spar_rl::trainer::run(&mut lp, &out, resume, on_line)
        .with_context(|| format!("training in {}", out.display()))?;
    bar.finish_and_clear();
    print_selfplay_curves(&history);
    if let Some(avg) = history
        .last()
        .and_then(|m| m.between("eval/", "avg_exploitability").next())
        .and_then(|(_, v)| v.as_f64())
    {
        println!(
            "average of the checkpointed policies: exploitability {avg:.4} ({})",
            out.join("average_policy.json").display()
        );
    }
    match spar_report::report::write_report(&out) {
        Ok(files) => eprintln!("report: {}", files.summary.display()),
        Err(e) => eprintln!("report not written: {e}"),
    }
    if let Some(last) = history.last() {
        println!("{}", serde_json::to_string(last)?);
    }
    Ok(())
}

/// `spar train` on a verifiable task: progress, one line per step, the held-out curve, the
/// report.
fn run_task(
    mut lp: spar_rl::loops::tasks::TaskLoop,
    config: &spar_rl::config::tasks::TaskTrainConfig,
    out: &std::path::Path,
    resume: bool,
) -> anyhow::Result<()> {
    let bar = step_bar(config.run.steps, out);
    let on_line = &mut |m: &Line| {
        let mut line = format!(
            "step {:>4}  train acc {:.3}  degenerate {:.2}  len {:.1}  loss {:+.4}",
            m.step,
            number(m, "tasks/train_accuracy"),
            number(m, "tasks/degenerate_groups"),
            number(m, "tasks/response_tokens"),
            number(m, "learner/loss")
        );
        for (task, _) in m.between("eval/", "majority_accuracy") {
            for (k, v) in pass_at(m, task) {
                line.push_str(&format!("  pass@{k} {v:.3}"));
            }
            let majority = number(m, &format!("eval/{task}/majority_accuracy"));
            line.push_str(&format!("  maj {majority:.3}"));
        }
        show_step(&bar, m.step, line);
    };
    let history = spar_rl::trainer::run(&mut lp, out, resume, on_line)
        .with_context(|| format!("training in {}", out.display()))?;
    bar.finish_and_clear();
    let tasks: std::collections::BTreeSet<&str> = history
        .iter()
        .flat_map(|m| m.between("eval/", "majority_accuracy").map(|(t, _)| t))
        .collect();
    for task in tasks {
        let curve: Vec<&Line> = history
            .iter()
            .filter(|m| m.get(&format!("eval/{task}/majority_accuracy")).is_some())
            .collect();
        let ks: Vec<usize> = pass_at(curve[0], task).iter().map(|(k, _)| *k).collect();
        let header: Vec<String> = ks
            .iter()
            .map(|k| format!("{:>8}", format!("pass@{k}")))
            .collect();
        println!("step {}  majority  unparsable", header.join(""));
        for m in curve {
            let values: Vec<String> = ks
                .iter()
                .map(|k| format!("{:>8.4}", number(m, &format!("eval/{task}/pass_at/{k}"))))
                .collect();
            println!(
                "{:>4} {}  {:>8.4}  {:>10.4}",
                m.step,
                values.join(""),
                number(m, &format!("eval/{task}/majority_accuracy")),
                number(m, &format!("eval/{task}/unparsable_rate"))
            );
        }
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

/// `spar train` on a self-correction config: progress, one line per step with the training
/// episodes' SCoRe metrics and the held-out ones, the report.
fn run_selfcorrect(
    mut lp: spar_rl::loops::selfcorrect::SelfCorrectLoop,
    steps: usize,
    out: &std::path::Path,
    resume: bool,
) -> anyhow::Result<()> {
    let bar = step_bar(steps, out);
    let on_line = &mut |m: &Line| {
        let mut line = format!(
            "step {:>4}  stage {}  train t1 {:.3} t2 {:.3} i->c {:.3} c->i {:.3} same {:.2}  \
             loss {:+.4}",
            m.step,
            number(m, "selfcorrect/stage"),
            number(m, "selfcorrect/accuracy_t1"),
            number(m, "selfcorrect/accuracy_t2"),
            number(m, "selfcorrect/delta_i_to_c"),
            number(m, "selfcorrect/delta_c_to_i"),
            number(m, "selfcorrect/identical_rate"),
            number(m, "learner/loss")
        );
        if m.get("selfcorrect/verify/accuracy").is_some() {
            line.push_str(&format!(
                "  verify {:.3} attempts {:.2}",
                number(m, "selfcorrect/verify/accuracy"),
                number(m, "selfcorrect/verify/mean_attempts")
            ));
        }
        for (task, _) in m.between("eval/", "accuracy_t1") {
            line.push_str(&format!(
                "  | eval t1 {:.3} t2 {:.3} delta {:+.3} same {:.2}",
                number(m, &format!("eval/{task}/accuracy_t1")),
                number(m, &format!("eval/{task}/accuracy_t2")),
                number(m, &format!("eval/{task}/delta")),
                number(m, &format!("eval/{task}/identical_rate"))
            ));
            let verify = format!("eval/{task}/verify/accuracy");
            if m.get(&verify).is_some() {
                line.push_str(&format!(" verify {:.3}", number(m, &verify)));
            }
        }
        show_step(&bar, m.step, line);
    };
    let history = spar_rl::trainer::run(&mut lp, out, resume, on_line)
        .with_context(|| format!("training in {}", out.display()))?;
    bar.finish_and_clear();
    report_and_last_line(&history, out)
}

/// The end of a run's `spar train`: the report written into the run directory (or why not,
/// on stderr) and the last metrics line as JSON on stdout.
pub(crate) fn report_and_last_line(history: &[Line], out: &std::path::Path) -> anyhow::Result<()> {
    match spar_report::report::write_report(out) {
        Ok(files) => eprintln!("report: {}", files.summary.display()),
        Err(e) => eprintln!("report not written: {e}"),
    }
    if let Some(last) = history.last() {
        println!("{}", serde_json::to_string(last)?);
    }
    Ok(())
}

/// The number named `key` in `m` (NaN when it is absent).
pub(crate) fn number(m: &Line, key: &str) -> f64 {
    m.number(key).unwrap_or(f64::NAN)
}

/// The per-seat values `eval/<game>/<seat>/<metric>` of `m`, in seat order.
fn per_seat(m: &Line, game: &str, metric: &str) -> Vec<f64> {
    m.between(&format!("eval/{game}/"), metric)
        .filter(|(seat, _)| !seat.contains('/'))
        .filter_map(|(_, v)| v.as_f64())
        .collect()
}

/// `eval/<task>/pass_at/<k>` of `m`, by increasing k.
fn pass_at(m: &Line, task: &str) -> Vec<(usize, f64)> {
    let prefix = format!("eval/{task}/pass_at/");
    let mut ks: Vec<(usize, f64)> = m
        .values()
        .iter()
        .filter_map(|(key, v)| Some((key.strip_prefix(&prefix)?.parse().ok()?, v.as_f64()?)))
        .collect();
    ks.sort_by_key(|(k, _)| *k);
    ks
}

/// The games `m` has an evaluation or rollouts of: `eval/<game>/...`, `selfplay/<game>/...`.
fn games_of(m: &Line) -> std::collections::BTreeSet<String> {
    m.values()
        .keys()
        .filter_map(|k| {
            let rest = k
                .strip_prefix("eval/")
                .or_else(|| k.strip_prefix("selfplay/"))?;
            let (game, metric) = rest.split_once('/')?;
            (!metric.contains('/')).then(|| game.to_string())
        })
        .collect()
}

/// A self-play step's progress line: rollouts, loss, returns per role, then each game's
/// evaluation (and, in a multi-game run, its own invalid rate).
fn selfplay_progress(m: &Line) -> String {
    let returns: Vec<String> = m
        .between("selfplay/", "mean_return")
        .filter_map(|(role, v)| {
            let v = v.as_f64()?;
            Some(format!(
                "{}={v:+.2}",
                role.rsplit('/').next().unwrap_or(role)
            ))
        })
        .collect();
    let mut line = format!(
        "step {:>4}  invalid {:.3}  len {:.1}  loss {:+.4}  {}",
        m.step,
        number(m, "selfplay/invalid_rate"),
        number(m, "selfplay/response_tokens"),
        number(m, "learner/loss"),
        returns.join(" ")
    );
    for game in games_of(m) {
        let mut part = String::new();
        if let Some(rate) = m.number(&format!("selfplay/{game}/invalid_rate")) {
            part.push_str(&format!(" invalid {rate:.3}"));
        }
        if let Some(e) = m.number(&format!("eval/{game}/exploitability")) {
            part.push_str(&format!(" exploitability {e:.4}"));
        }
        let join = |v: Vec<f64>, digits: usize| -> String {
            let s: Vec<String> = v.iter().map(|x| format!("{x:+.digits$}")).collect();
            s.join("/")
        };
        let vs_random = per_seat(m, &game, "vs_random");
        if !vs_random.is_empty() {
            part.push_str(&format!(" vs random {}", join(vs_random, 2)));
        }
        let vs_cfr = per_seat(m, &game, "exact_vs_cfr");
        if !vs_cfr.is_empty() {
            part.push_str(&format!(" vs cfr+ (exact) {}", join(vs_cfr, 4)));
        }
        if !part.is_empty() {
            line.push_str(&format!("  | {game}:{part}"));
        }
    }
    line
}

/// After a self-play run, each game's evaluation curve: exploitability, exact returns
/// against CFR+ (or sampled ones against the random player), outside mass, invalid answers.
fn print_selfplay_curves(history: &[Line]) {
    let games: std::collections::BTreeSet<String> = history.iter().flat_map(games_of).collect();
    let multi = history
        .iter()
        .any(|m| m.values().keys().any(|k| k.ends_with("/episodes")));
    for game in games {
        let evaluated = |m: &&Line| {
            m.get(&format!("eval/{game}/exploitability")).is_some()
                || !per_seat(m, &game, "vs_random").is_empty()
        };
        let curve: Vec<&Line> = history.iter().filter(evaluated).collect();
        if curve.is_empty() {
            continue;
        }
        if multi {
            println!("{game}");
        }
        println!(
            "step  exploitability  vs-cfr+ exact / vs-random (per seat)  outside-mass  invalid"
        );
        for m in curve {
            let (vs, digits) = match per_seat(m, &game, "exact_vs_cfr") {
                v if !v.is_empty() => (v, 4),
                _ => (per_seat(m, &game, "vs_random"), 3),
            };
            let vs: Vec<String> = vs.iter().map(|x| format!("{x:+.digits$}")).collect();
            let invalid = m
                .number(&format!("selfplay/{game}/invalid_rate"))
                .unwrap_or_else(|| number(m, "selfplay/invalid_rate"));
            println!(
                "{:>4}  {:>14.4}  {:>36}  {:>12.4}  {:>7.3}",
                m.step,
                number(m, &format!("eval/{game}/exploitability")),
                vs.join("/"),
                number(m, &format!("eval/{game}/outside_mass")),
                invalid
            );
        }
    }
}

/// An error building a training loop: a bad setting reads as a config error does (`PATH:
/// config: KEY: ...`, exit code 2); any other keeps its kind (a server that cannot be reached
/// while building a `remote:` opponent).
pub(crate) fn loop_error(config_path: &std::path::Path, error: spar_rl::Error) -> anyhow::Error {
    match error {
        spar_rl::Error::Invalid(message) => {
            UsageError(format!("{}: {message}", config_path.display())).into()
        }
        error => anyhow::Error::new(error).context(config_path.display().to_string()),
    }
}

/// The progress bar of a training run (and the run directory, on stderr).
pub(crate) fn step_bar(steps: usize, out: &std::path::Path) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps [{elapsed}<{eta}] {msg}")
            .expect("valid template"),
    );
    eprintln!("run directory: {}", out.display());
    bar
}

/// Moves the bar to `step` and prints the step's line above it.
pub(crate) fn show_step(bar: &ProgressBar, step: usize, line: String) {
    bar.set_position(step as u64);
    bar.set_message(line.clone());
    // indicatif draws nothing (println included) when stderr is not a terminal.
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// `YYYYMMDD-HHMMSS` in UTC (civil-from-days, H. Hinnant's algorithm).
fn utc_stamp(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamps() {
        let at =
            |s: u64| super::utc_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "19700101-000000");
        // 2000-02-29 12:34:56 UTC = 951827696 (a leap day).
        assert_eq!(at(951_827_696), "20000229-123456");
        // 2026-11-25 06:30:00 UTC = 1795588200.
        assert_eq!(at(1_795_588_200), "20261125-063000");
    }
}

/// Arguments of `spar report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A run directory written by `spar train` (it holds metrics.jsonl).
    run: PathBuf,
}

/// Runs `spar report`: SVG plots and a Markdown summary in `RUN/report/`.
pub fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let files = spar_report::report::write_report(&args.run)?;
    for plot in &files.plots {
        println!("{}", plot.display());
    }
    println!("{}", files.summary.display());
    Ok(())
}

/// Arguments of `spar compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// An arm and its runs (one per seed): `NAME=DIR[,DIR...]`, repeatable. A single DIR
    /// without metrics.jsonl whose subdirectories are runs stands for those runs.
    #[arg(long = "arm", value_name = "NAME=DIR[,DIR...]", required = true)]
    arms: Vec<String>,
    /// A metrics.jsonl name to compare (`eval/kuhn/exploitability`,
    /// `eval/kuhn/player0/vs_random`, `selfplay/response_tokens`; docs/metrics.md), repeatable.
    #[arg(long = "metric", value_name = "FIELD", required = true)]
    metrics: Vec<String>,
    /// The directory to write the plots, summary.md and summary.json into.
    #[arg(long)]
    out: PathBuf,
    /// A title for the summary and the plots.
    #[arg(long)]
    title: Option<String>,
}

/// `NAME=DIR[,DIR...]` of `--arm`, as the arm's name and its run directories.
fn parse_arm(spec: &str) -> Result<(String, Vec<PathBuf>), UsageError> {
    let bad = |why: &str| {
        UsageError(format!(
            "--arm {spec:?}: {why}; expected NAME=DIR[,DIR...] (e.g. --arm rae=runs/rae-s0,runs/rae-s1)"
        ))
    };
    let (name, dirs) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(bad("empty arm name"));
    }
    let dirs: Vec<PathBuf> = dirs.split(',').map(|d| PathBuf::from(d.trim())).collect();
    if dirs.iter().any(|d| d.as_os_str().is_empty()) {
        return Err(bad("empty run directory"));
    }
    Ok((
        name.to_string(),
        spar_report::compare::expand_arm_dirs(&dirs),
    ))
}

/// Runs `spar compare`: per metric, each arm's mean over its runs with a min-to-max band
/// (SVG), and summary.md / summary.json with final values (mean ± std) in `--out`.
pub fn compare(args: &CompareArgs) -> anyhow::Result<()> {
    let arms = args
        .arms
        .iter()
        .map(|spec| parse_arm(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let files = spar_report::compare::write_comparison(
        &arms,
        &args.metrics,
        &args.out,
        args.title.as_deref(),
    )?;
    for metric in &files.metrics {
        println!("{}\n", metric.metric);
        println!("{}", spar_report::compare::markdown_table(metric));
    }
    for plot in &files.plots {
        println!("{}", plot.display());
    }
    println!("{}", files.summary.display());
    println!("{}", files.summary_json.display());
    Ok(())
}
