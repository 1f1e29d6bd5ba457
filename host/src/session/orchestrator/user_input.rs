//! What the orchestrator knows of the user's utterance in progress: its words (final and interim),
//! what the VAD hears, how long the user has been silent and the end-of-turn policy's say. A turn
//! ends with `reset`, which keeps only what belongs to the next utterance.

use super::words::join_words;
use crate::session::turn_policy::TurnPolicyState;

/// The user's speech being collected into a turn.
#[derive(Debug, Default)]
pub(super) struct UserInput {
    pub(super) finals: String,
    pub(super) interim: String,
    pub(super) vad_speaking: bool,
    pub(super) speech_started_at: Option<u64>,
    pub(super) speech_end_at: Option<u64>,
    pub(super) last_text_at: Option<u64>,
    /// Something says the utterance is over (the VAD's end of speech, the recogniser's
    /// endpoint, or a final while the VAD heard nothing); the turn ends once the VAD is quiet
    /// and no finalize result is awaited.
    pub(super) ended: bool,
    /// After the VAD's end of speech: the recogniser's answer to `Finalize` is awaited until then.
    pub(super) finalize_until: Option<u64>,
    /// First voice of this turn (speech may pause and resume within it).
    pub(super) first_voice_at: Option<u64>,
    /// When the voice last stopped, while the user is silent (a pause or after the end of speech).
    pub(super) silent_since: Option<u64>,
    /// Where the voice stopped on the audio clock, at the last pause (the end of speech the
    /// policy brings forward is reported from there).
    pub(super) paused_at_ms: Option<u64>,
    /// The end-of-turn policy's say in this turn.
    pub(super) policy: TurnPolicyState,
    /// When the VAD heard voice it has not confirmed as speech yet (`VadTransition::Onset`),
    /// until `SpeechStart` or `FalseOnset` settles it.
    pub(super) onset: Option<u64>,
    /// Until when the turn waits for the VAD to settle voice it heard beginning: the user may
    /// be going on. Bounded (`ONSET_SETTLE_MS`), so voice never settled (the audio stopped
    /// coming) does not hold the turn.
    pub(super) settling_until: Option<u64>,
}

impl UserInput {
    pub(super) fn text(&self) -> String {
        join_words(&self.finals, &self.interim)
    }

    pub(super) fn has_text(&self) -> bool {
        !self.finals.trim().is_empty() || !self.interim.trim().is_empty()
    }

    pub(super) fn reset(&mut self) {
        let speaking = self.vad_speaking;
        let started = self.speech_started_at;
        let onset = self.onset;
        *self = UserInput::default();
        // Voice beginning is the next utterance's.
        self.onset = onset;
        // A user still speaking keeps their speech state for the next turn.
        if speaking {
            self.vad_speaking = true;
            self.speech_started_at = started;
        }
    }
}
