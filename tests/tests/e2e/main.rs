//! End-to-end tests of the host against the provider fakes, in one test binary: each module was
//! its own binary, and each binary compiled and linked the host and its dependencies again (about
//! 20 s of CPU apiece). Tests that read process-wide metrics (the host's `/metrics` counters are
//! global to the process) or that load the machine on purpose keep binaries of their own in
//! `tests/tests/`, so that nothing else runs beside them.

mod admission;
mod conversation;
mod deepgram;
mod elevenlabs;
mod elevenlabs_session;
mod end_of_turn;
mod fakes_refuse;
mod guest_plugins;
mod logs;
mod openai;
mod pipeline_cloud;
mod playback;
mod plugins_faults_server;
mod plugins_hot_swap_server;
mod plugins_js_server;
mod plugins_oci_server;
mod plugins_python_server;
mod plugins_record_replay;
mod plugins_rollout_server;
mod provider_not_installed;
mod server;
mod sigterm;
mod talk_cli;
mod telemetry;
mod twilio;
mod vad_events;
