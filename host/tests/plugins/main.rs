//! Plug-in runtime tests against real guest components (built from `plugins/` on first use), in
//! one test binary: each module was its own binary, compiling and linking the host again. The
//! Python and JavaScript plug-in tests (`plugins_python.rs`, `plugins_js.rs`) keep their own
//! binaries: compiling the CPython or SpiderMonkey component takes both cores for a while, which
//! nothing timed should run beside.

mod common;

mod admin;
mod faults;
mod hostile;
mod hot_swap;
mod reference;
mod rollout;
