//! Cloud providers: Deepgram streaming STT, OpenAI-compatible streaming LLM, ElevenLabs streaming TTS.
//!
//! Each provider runs one task per stream and talks to the session only through the channels of
//! `crate::providers`. Dropping the session's handle cancels the task, which drops its connection.
//! Errors are classified with [`ProviderError`](crate::providers::ProviderError) and never carry
//! the API key.

pub mod backoff;
pub mod deepgram;
pub mod elevenlabs;
pub mod openai;
mod redact;
pub mod sse;
mod ws;
