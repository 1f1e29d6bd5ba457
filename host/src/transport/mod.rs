//! Client protocols: native v1 (JSON control + binary audio over `/agent`) and Twilio Media
//! Streams. A transport serves one admitted connection with what the server handed it.

pub mod client_frames;
pub mod env;
pub mod input_limits;
pub mod protocol;
mod resume_start;
mod supervise;
pub mod twilio;
pub mod v1;
pub mod writer;

pub use env::SessionEnv;
