//! Buffer sizes for every WebSocket the host holds: each session has one to its client and one
//! or two to providers, so per-socket buffers are paid a thousand times over.
//!
//! tungstenite's default read buffer is 128 KiB, and before every read it zero-fills the free
//! part of the buffer up to that size: with a 640-byte audio frame arriving every 20 ms that was
//! most of the host's CPU under load (a `memset` of up to 128 KiB per frame) and much of its
//! memory per session. Messages larger than the buffer are still read whole (the frame's length
//! is reserved when its header arrives); they just take more than one `read`.

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Bytes read from a socket at a time: a few audio frames or a provider message.
pub const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Client sockets to providers (Deepgram, ElevenLabs).
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)
}
