//! The crate's error type.

use std::path::{Path, PathBuf};

/// What can go wrong in `spar-report`. Every variant names the file, arm, metric or value
/// at fault; all but [`Error::Io`], [`Error::Write`] and [`Error::Render`] are about the input (a run directory, an arm, a metric
/// name, an event file), so a command-line tool can report them as usage errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed (other than a whole file written atomically:
    /// [`Error::Write`]).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Writing a file whole failed (`spar_core::atomic::write_atomic`; the error names the
    /// file).
    #[error(transparent)]
    Write(#[from] spar_core::Error),
    /// A plot could not be rendered to PNG (a fault of spar's own SVG, not of the input).
    #[error("rendering the PNG of {what}: {reason}")]
    Render {
        /// The plot.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// A run directory has no `metrics.jsonl`.
    #[error("{} does not exist: is this a `spar train` run directory?", path.display())]
    MissingMetrics {
        /// The `metrics.jsonl` looked for.
        path: PathBuf,
    },
    /// A `metrics.jsonl` holds no record (it is empty or blank).
    #[error("{} is empty: is this a `spar train` run directory?", path.display())]
    EmptyMetrics {
        /// The `metrics.jsonl`.
        path: PathBuf,
    },
    /// A line of `metrics.jsonl` is not a JSON object.
    #[error("{} line {line}: {reason}", path.display())]
    BadMetricsLine {
        /// The `metrics.jsonl`.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A comparison was asked for without arms.
    #[error("a comparison needs at least one arm")]
    NoArms,
    /// A comparison was asked for without metrics.
    #[error("a comparison needs at least one metric (e.g. exploitability)")]
    NoMetricsToCompare,
    /// An arm's name is empty.
    #[error("an arm has an empty name")]
    EmptyArmName,
    /// Two arms have the same name.
    #[error("two arms are named {arm:?}")]
    DuplicateArm {
        /// The name.
        arm: String,
    },
    /// An arm has no run directories.
    #[error("arm {arm:?} has no runs")]
    ArmWithoutRuns {
        /// The arm.
        arm: String,
    },
    /// A run directory of an arm does not exist.
    #[error("arm {arm:?}: run directory {} does not exist", run.display())]
    MissingRun {
        /// The arm.
        arm: String,
        /// The run directory.
        run: PathBuf,
    },
    /// A run of an arm could not be read (its `metrics.jsonl` is missing, empty or bad).
    #[error("arm {arm:?}: {error}")]
    InArm {
        /// The arm.
        arm: String,
        /// What went wrong reading the run.
        error: Box<Error>,
    },
    /// Two metrics would be plotted to one file.
    #[error("metrics {first:?} and {second:?} would both be plotted to {file}")]
    PlotClash {
        /// The metric met first.
        first: String,
        /// The metric met second.
        second: String,
        /// The file name both map to.
        file: String,
    },
    /// A metric to compare occurs in no run.
    #[error("metric {metric:?} occurs in no run; {hint}")]
    UnknownMetric {
        /// The metric.
        metric: String,
        /// Field names that do occur (those under the metric's name if any).
        hint: String,
    },
    /// A TensorBoard scalar has an empty tag.
    #[error("TensorBoard scalar with an empty tag: every scalar needs a name")]
    EmptyTag,
    /// Metrics for TensorBoard are not a JSON object.
    #[error("metrics for TensorBoard must be a JSON object of named values, got `{value}`")]
    MetricsNotAnObject {
        /// The value, shortened to 80 characters.
        value: String,
    },
    /// A TensorBoard event file is truncated or corrupt.
    #[error("{}: corrupt TensorBoard event file at byte offset {offset}: {reason}", path.display())]
    CorruptEventFile {
        /// The event file.
        path: PathBuf,
        /// The byte offset of the bad record (or of its data).
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
