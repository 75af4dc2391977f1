//! Output helpers: JSON on stdout, progress bars on stderr.

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Prints `value` as pretty JSON on stdout (a closed pipe, as in `spar ... | head`, is not
/// an error).
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    use std::io::Write as _;
    let text = serde_json::to_string_pretty(value)?;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// A progress bar on stderr for `total` steps; hidden with `--json` (and by indicatif when
/// stderr is not a terminal).
pub fn progress(total: u64, json: bool, what: &str) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} [{{elapsed_precise}} < {{eta}}] {{msg}}"
        ))
        .expect("the template is valid"),
    );
    bar
}
