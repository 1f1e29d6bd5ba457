//! Phone calls through Twilio Media Streams: the bidirectional stream a `<Connect><Stream>`
//! opens (caller audio in, agent audio, marks and `clear` out) and the TwiML of the voice
//! webhook. The server routes `GET /twilio` and `POST /twilio/voice` here after admission. Calls
//! run the same session as `/agent`, in mu-law at the stream's rate (8 kHz).

mod call;
mod call_frames;
pub mod inbound;
pub mod marks;
pub mod messages;
pub mod outbound;
mod twiml;

pub use call::serve;
pub use twiml::{document as twiml_document, valid_agent, VoiceQuery};

/// Largest text frame read from Twilio; media messages carry about 300 bytes.
pub const MAX_TWILIO_FRAME_BYTES: usize = 64 * 1024;
