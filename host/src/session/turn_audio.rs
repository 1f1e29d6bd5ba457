//! The audio of the user's turn so far, for the end-of-turn model: from half a second before the
//! speech started (as pipecat feeds Smart Turn) up to now, at most the 8 s the model reads.
//! Between turns only that half second is kept, so a listening session holds 16 KB.

use crate::turn::features::{SAMPLE_RATE, WINDOW_SAMPLES};
use std::collections::VecDeque;

/// Audio kept before the speech starts.
const PRE_ROLL: usize = SAMPLE_RATE / 2;

/// 16 kHz samples of the turn in progress (or the pre-roll between turns).
#[derive(Debug, Default)]
pub struct TurnAudio {
    samples: VecDeque<i16>,
    in_turn: bool,
}

impl TurnAudio {
    /// One 20 ms frame of the client's audio.
    pub fn push(&mut self, frame: &[i16]) {
        self.samples.extend(frame.iter().copied());
        let keep = if self.in_turn {
            WINDOW_SAMPLES
        } else {
            PRE_ROLL
        };
        let excess = self.samples.len().saturating_sub(keep);
        self.samples.drain(..excess);
    }

    /// The user started speaking: keep everything from the pre-roll on.
    pub fn speech_started(&mut self) {
        self.in_turn = true;
    }

    /// The turn ended: back to the pre-roll, and the memory of a long turn is returned.
    pub fn turn_ended(&mut self) {
        self.in_turn = false;
        let excess = self.samples.len().saturating_sub(PRE_ROLL);
        self.samples.drain(..excess);
        self.samples.shrink_to(PRE_ROLL);
    }

    /// The audio as the model takes it (floats in -1..1).
    pub fn clip(&self) -> Vec<f32> {
        self.samples
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_pre_roll_between_turns_and_at_most_the_window_in_one() {
        let mut a = TurnAudio::default();
        let frame = [1000i16; 320];
        for _ in 0..100 {
            a.push(&frame); // 2 s of audio before any speech
        }
        assert_eq!(a.clip().len(), PRE_ROLL);
        a.speech_started();
        for _ in 0..1000 {
            a.push(&frame); // 20 s of speech
        }
        let clip = a.clip();
        assert_eq!(clip.len(), WINDOW_SAMPLES);
        assert!((clip[0] - 1000.0 / 32768.0).abs() < 1e-9);
        a.turn_ended();
        assert_eq!(a.clip().len(), PRE_ROLL);
    }
}
