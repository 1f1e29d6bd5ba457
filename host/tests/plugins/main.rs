//! Plug-in runtime tests against real guest components (built from `plugins/` on first use), in
//! one test binary: each module was its own binary, compiling and linking the host again. The
//! Python plug-in tests (`plugins_python.rs`) keep their own binary: compiling the CPython
//! component takes both cores for a while, which nothing timed should run beside.

mod common;

mod admin;
mod faults;
mod hostile;
mod hot_swap;
mod reference;
mod rollout;
