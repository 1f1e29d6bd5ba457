//! Command-line clients of a running host, and development helpers.

pub mod registry;
pub mod replay;
pub mod scaffold;
pub mod talk;
pub mod token;
