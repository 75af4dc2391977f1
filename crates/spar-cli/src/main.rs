//! The `spar` command-line tool.
fn main() {}
