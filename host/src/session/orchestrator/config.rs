//! The orchestrator's settings.

use crate::audio::AudioFormat;
use regex::Regex;
use std::sync::Arc;

/// Settings of the orchestrator (from the host configuration).
#[derive(Debug, Clone)]
pub struct OrchestratorConfig {
    pub output: AudioFormat,
    /// End the user's turn after this much silence following interim text without a final.
    pub silence_timeout_ms: u64,
    /// After the VAD's end of speech, how long the turn waits for the recogniser's final.
    pub finalize_wait_ms: u64,
    /// A paused reply resumes after this long if no real words follow.
    pub pause_timeout_ms: u64,
    /// An LLM stream silent this long (no token, no end) is ended with an error.
    pub llm_stall_ms: u64,
    /// A text-to-speech stream that owes audio and stays silent this long is ended with an error.
    pub tts_stall_ms: u64,
    /// How far ahead of real time agent audio is sent.
    pub lead_ms: u64,
    pub chunk_ms: u32,
    pub max_sentence_chars: usize,
    /// Never cut a protected sentence (`TTS_PROTECTED_PHRASES`).
    pub protect_phrases: bool,
    /// Sentences matching any of these are protected.
    pub protected_patterns: Arc<Vec<Regex>>,
    pub greeting: Option<String>,
    pub memory_turns: usize,
    pub memory_chars: usize,
    /// Ask the end-of-turn policy (a `turn` plug-in serves the session); the I/O then reports
    /// pauses inside speech and answers `EndSpeech`.
    pub turn_policy: bool,
    /// The VAD's hangover: how long the user has been silent at its end of speech.
    pub vad_hangover_ms: u64,
    /// Start the reply on a final transcript before the turn is committed
    /// (`PREEMPTIVE_GENERATION`).
    pub preemptive: bool,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        Self {
            output: AudioFormat {
                encoding: crate::audio::Encoding::Pcm16,
                sample_rate: 16_000,
            },
            silence_timeout_ms: 2500,
            finalize_wait_ms: 300,
            pause_timeout_ms: 2000,
            llm_stall_ms: 10_000,
            tts_stall_ms: 10_000,
            lead_ms: 200,
            chunk_ms: 20,
            max_sentence_chars: 120,
            protect_phrases: true,
            protected_patterns: Arc::new(Vec::new()),
            greeting: None,
            memory_turns: 20,
            memory_chars: 8000,
            turn_policy: false,
            vad_hangover_ms: 600,
            preemptive: false,
        }
    }
}
