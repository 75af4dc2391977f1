//! Reports on spar runs, without tensors: what a training run's `metrics.jsonl` says, as
//! plots and tables, and the same numbers as TensorBoard events.
//!
//! * [`report`]: a run's report, `<run>/report/` with an SVG plot per panel (and its PNG) and
//!   `summary.md` ([`report::write_report`], behind `spar report` and the end of
//!   `spar train`);
//! * [`compare`]: experiment arms across seeds, an SVG (and PNG) per metric with each arm's mean and
//!   min-to-max band, `summary.md` and `summary.json` with final values (mean ± std)
//!   ([`compare::write_comparison`], behind `spar compare`);
//! * [`tensorboard`]: TensorBoard event files written and read back by hand
//!   ([`tensorboard::EventWriter`], used by the training loops next to `metrics.jsonl`);
//! * [`flatten_metrics`]: the names every part gives a record's numbers (`field/key`,
//!   `field/seat<i>`); [`fmt_number`]: how every table writes a number.
//!
//! Inside, `read` parses `metrics.jsonl`, `svg` draws the plots, `png` renders them to PNG with bundled fonts, `summary` writes the
//! Markdown of both reports, `format` holds the number format; every file is written
//! atomically (`spar_core::atomic::write_atomic`). Errors are one [`Error`] enum naming the file, arm or metric at fault.
#![warn(missing_docs)]

pub mod compare;
pub mod error;
mod format;
mod png;
mod read;
pub mod report;
mod summary;
mod svg;
pub mod tensorboard;

pub use error::{Error, Result};
pub use format::fmt_number;
pub use read::flatten_metrics;
