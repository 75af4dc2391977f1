//! spar-py: the native half of the `spar` Python package (`spar._spar`).
//!
//! The Python package (`python/spar/`) is the public interface; this module is what it calls.
//! Everything crosses the boundary as plain values: strings, numbers, lists and JSON text
//! that the Python side decodes. Rich Rust types never cross, so the Python API stays
//! stable while the crates change, and every value a Python user sees is one the CLI prints
//! too (the same `serde` shapes as `spar ... --json`).
//!
//! * [`env`]: any game or task as a text environment (`spar.make`), TextArena's shape.
//! * [`exact`]: exact evaluation of tabular policies (NashConv, exploitability, best
//!   responses, CFR and CFR+), the same functions `spar exploitability` and `spar solve` run.
//! * [`model`]: a language model's exact policy on a game (`spar exploitability --policy
//!   model:DIR`).
//! * [`tasks`]: verifiable tasks, their problems and verifiers (the reward functions).
//! * [`train`]: `spar train` and `spar eval --task` over the Rust loops.
//!
//! Errors: every Rust error becomes a Python exception carrying the CLI's message. Bad input
//! (a bad game or task spec, a malformed policy, a config key out of range) raises
//! `ValueError`, as the CLI exits with code 2 for it; a failure while running raises
//! `RuntimeError` (exit code 1). No function here panics on user input.

use pyo3::prelude::*;

mod env;
mod error;
mod exact;
mod model;
mod tasks;
mod train;

/// The `spar._spar` extension module.
#[pymodule]
fn _spar(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<env::TextEnv>()?;
    m.add_function(wrap_pyfunction!(env::make, m)?)?;
    m.add_function(wrap_pyfunction!(env::games, m)?)?;
    m.add_function(wrap_pyfunction!(exact::nash_conv, m)?)?;
    m.add_function(wrap_pyfunction!(exact::best_response, m)?)?;
    m.add_function(wrap_pyfunction!(exact::solve, m)?)?;
    m.add_function(wrap_pyfunction!(exact::info_states, m)?)?;
    m.add_function(wrap_pyfunction!(exact::policy_returns, m)?)?;
    m.add_function(wrap_pyfunction!(model::model_policy, m)?)?;
    m.add_class::<tasks::TaskHandle>()?;
    m.add_function(wrap_pyfunction!(tasks::task, m)?)?;
    m.add_function(wrap_pyfunction!(tasks::task_names, m)?)?;
    m.add_function(wrap_pyfunction!(train::train, m)?)?;
    m.add_function(wrap_pyfunction!(train::eval_task, m)?)?;
    Ok(())
}
