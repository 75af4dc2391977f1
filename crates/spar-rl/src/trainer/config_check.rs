//! The resume check: a resumed run continues the run its directory holds, so the config it is
//! given must be the one that run started with, but for `run.steps` (extending a finished run
//! is a resume) and `run.max_consecutive_skips` (when a run that keeps skipping non-finite
//! updates stops; it changes nothing a step computes). `spar train --resume DIR` reads `DIR/config.toml` and applies `--set` to it,
//! so in practice this refuses a `--set` of any other key; a library caller of
//! [`super::run`] is held to the same rule.

use std::path::Path;

use crate::error::{Error, Result};

/// The keys a resume may change: the run's length, and when a run that keeps skipping
/// non-finite updates stops (neither changes what the steps compute).
const MAY_CHANGE: [&str; 2] = ["run.steps", "run.max_consecutive_skips"];

/// Refuses (`Error::Invalid`, naming every differing key with both values) a resume whose
/// resolved config `given` differs from `out/config.toml` in anything but [`MAY_CHANGE`].
pub(super) fn check_resume_config(out: &Path, given: &str, defaults: &str) -> Result<()> {
    let path = out.join("config.toml");
    let saved = std::fs::read_to_string(&path).map_err(|e| {
        Error::Invalid(format!(
            "--resume: cannot read the run's config {}: {e}",
            path.display()
        ))
    })?;
    let differences = differences(&saved, given, defaults)
        .map_err(|e| Error::Invalid(format!("--resume: {}: {e}", path.display())))?;
    if differences.is_empty() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "--resume: the config differs from the run's {} in {}; a resumed run keeps the config \
         it started with, and only {} may change (to extend it), and {}: drop the other \
         --set overrides, or start a new run with --out",
        path.display(),
        differences.join(", "),
        MAY_CHANGE[0],
        MAY_CHANGE[1]
    )))
}

/// Every key (dotted, `ppo.clip`) whose value differs between the TOML texts `saved` and
/// `given`, as `key (V in the run, W now)`; a key only one side has shows
/// the other as `absent` ([`MAY_CHANGE`] aside). A key `saved` lacks whose given value is
/// its value in `defaults` is no difference: the run started before spar had that key, and
/// the default is what the run did. An error if a text is not TOML.
fn differences(
    saved: &str,
    given: &str,
    defaults: &str,
) -> std::result::Result<Vec<String>, String> {
    let parse = |text: &str, what: &str| {
        text.parse::<toml::Table>()
            .map_err(|e| format!("{what} is not TOML: {e}"))
    };
    let (saved, given, defaults) = (
        crate::config::leaves(&parse(saved, "the run's config")?),
        crate::config::leaves(&parse(given, "the given config")?),
        crate::config::leaves(&parse(defaults, "the defaults")?),
    );
    let new_default =
        |key: &String| !saved.contains_key(key) && given.get(key) == defaults.get(key);
    let shown = |v: Option<&toml::Value>| v.map_or_else(|| "absent".to_string(), |v| v.to_string());
    let mut keys: Vec<&String> = saved.keys().chain(given.keys()).collect();
    keys.sort();
    keys.dedup();
    Ok(keys
        .into_iter()
        .filter(|key| {
            !MAY_CHANGE.contains(&key.as_str())
                && saved.get(*key) != given.get(*key)
                && !new_default(key)
        })
        .map(|key| {
            format!(
                "{key} ({} in the run, {} now)",
                shown(saved.get(key)),
                shown(given.get(key))
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "[run]\nseed = 1\nsteps = 2\n\n[ppo]\nclip = 0.2\nlr_schedule = \"cosine\"\n\n[game]\nnames = [\"kuhn\"]\n";

    #[test]
    fn only_run_steps_may_differ() {
        assert_eq!(differences(RUN, RUN, "").unwrap(), Vec::<String>::new());
        let longer = RUN.replace("steps = 2", "steps = 10");
        assert_eq!(differences(RUN, &longer, "").unwrap(), Vec::<String>::new());
        // Formatting and key order are not differences.
        let reordered = "[game]\nnames = [ \"kuhn\" ]\n[ppo]\nlr_schedule = 'cosine'\nclip = 0.2\n[run]\nsteps = 3\nseed = 1\n";
        assert_eq!(
            differences(RUN, reordered, "").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_other_difference_is_named_with_both_values() {
        let other = RUN
            .replace("clip = 0.2", "clip = 0.1")
            .replace("seed = 1", "seed = 2")
            .replace("[\"kuhn\"]", "[\"kuhn\", \"leduc\"]")
            + "\n[model.lora]\nr = 4\n";
        assert_eq!(
            differences(RUN, &other, "").unwrap(),
            [
                "game.names ([\"kuhn\"] in the run, [\"kuhn\", \"leduc\"] now)",
                "model.lora.r (absent in the run, 4 now)",
                "ppo.clip (0.2 in the run, 0.1 now)",
                "run.seed (1 in the run, 2 now)",
            ]
        );
        // A key the run had and the given config lacks.
        let fewer = RUN.replace("lr_schedule = \"cosine\"\n", "");
        assert_eq!(
            differences(RUN, &fewer, "").unwrap(),
            ["ppo.lr_schedule (\"cosine\" in the run, absent now)"]
        );
        assert!(differences("not = [toml", RUN, "")
            .unwrap_err()
            .contains("the run's config is not TOML"));
    }

    #[test]
    fn a_key_added_after_the_run_started_is_accepted_at_its_default() {
        // The run's config predates `ppo.kl` (default 0.1 today) and `ppo.entropy` (0.0).
        let defaults = "[ppo]\nclip = 0.3\nkl = 0.1\nentropy = 0.0\n";
        // ...but not a new key set to another value, nor a changed old key.
        let changed = RUN.replace(
            "lr_schedule = \"cosine\"\n",
            "lr_schedule = \"cosine\"\nkl = 0.5\nentropy = 0.0\n",
        );
        assert_eq!(
            differences(RUN, &changed, defaults).unwrap(),
            ["ppo.kl (absent in the run, 0.5 now)"]
        );
        let same = RUN.replace(
            "lr_schedule = \"cosine\"\n",
            "lr_schedule = \"cosine\"\nkl = 0.1\nentropy = 0.0\n",
        );
        assert_eq!(
            differences(RUN, &same, defaults).unwrap(),
            Vec::<String>::new()
        );
        // Without the defaults the same keys are differences.
        assert_eq!(differences(RUN, &same, "").unwrap().len(), 2);
    }

    #[test]
    fn the_refusal_names_the_file_and_the_keys() {
        let dir =
            std::env::temp_dir().join(format!("spar-rl-resume-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.toml"), RUN).unwrap();
        check_resume_config(&dir, &RUN.replace("steps = 2", "steps = 5"), "").unwrap();
        let e =
            check_resume_config(&dir, &RUN.replace("clip = 0.2", "clip = 0.3"), "").unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains("config.toml in ppo.clip (0.2 in the run, 0.3 now)")
                && e.contains("only run.steps may change"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let e = check_resume_config(&dir, RUN, "").unwrap_err().to_string();
        assert!(e.contains("cannot read the run's config"), "{e}");
    }

    /// `spar train --resume DIR` parses `DIR/config.toml` (the resolved config `to_toml`
    /// wrote) and writes it again: for every shipped config that must give the same text, or
    /// every resume would be refused.
    #[test]
    fn every_shipped_config_resolves_to_itself() {
        use crate::config::tasks::TaskTrainConfig;
        use crate::config::TrainConfig;
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../configs");
        let mut checked = 0;
        for dir in [root.to_string(), format!("{root}/tasks")] {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "toml") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let resolve = |text: &str| -> String {
                    if TaskTrainConfig::is_task_config(text) {
                        TaskTrainConfig::parse(text, &[]).unwrap().to_toml()
                    } else {
                        TrainConfig::parse(text, &[]).unwrap().to_toml()
                    }
                };
                let written = resolve(&text);
                let again = resolve(&written);
                assert_eq!(
                    differences(&written, &again, "").unwrap(),
                    Vec::<String>::new(),
                    "{}",
                    path.display()
                );
                assert_eq!(written, again, "{}", path.display());
                checked += 1;
            }
        }
        assert!(checked >= 10, "only {checked} configs");
    }
}
