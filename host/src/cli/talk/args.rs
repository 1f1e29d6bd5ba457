//! Command-line options of `voice-host talk`.

use std::path::PathBuf;

/// Talk to a running host: stream a WAV file (or a typed turn) to its `/agent` endpoint, print
/// what it says, and save the agent's voice. Doubles as a smoke test of a deployment: the exit
/// status is 0 only when the agent answered with audio.
#[derive(Debug, Clone, clap::Args)]
pub struct TalkArgs {
    /// The host's `/agent` WebSocket endpoint (ws:// or wss://).
    #[arg(long, default_value = "ws://127.0.0.1:4010/agent")]
    pub url: String,
    /// Speech to send, streamed at real-time pace: a WAV file at 8-48 kHz (stereo is mixed down).
    #[arg(long, value_name = "FILE", required_unless_present = "text")]
    pub wav: Option<PathBuf>,
    /// A typed user turn, sent after the WAV (or alone).
    #[arg(long)]
    pub text: Option<String>,
    /// Where to write the agent's audio (16-bit mono WAV).
    #[arg(long, value_name = "FILE", default_value = "agent.wav")]
    pub out: PathBuf,
    /// Agent profile to talk to (`[agents.<name>]` in the host's configuration).
    #[arg(long)]
    pub agent: Option<String>,
    /// Sample rate to ask for the agent's audio in (8000-48000).
    #[arg(long, default_value_t = 16_000)]
    pub rate: u32,
    /// Silence sent after the WAV so the host hears the speech end, in ms.
    #[arg(long, default_value_t = 1_000)]
    pub tail_ms: u32,
    /// Longest wait for the agent to finish once the input is sent, in seconds.
    #[arg(long, default_value_t = 20)]
    pub wait: u64,
    /// Print every server event as one JSON line instead of text.
    #[arg(long)]
    pub json: bool,
}
