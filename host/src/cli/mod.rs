//! Command-line clients of a running host.

pub mod talk;
