//! Audio sent since the last final result, kept so a reconnected stream can hear it again.

use std::collections::VecDeque;

/// A window of the session's audio, addressed by absolute sample index.
#[derive(Debug)]
pub(super) struct ResendBuffer {
    samples: VecDeque<i16>,
    /// Session sample index of `samples[0]`.
    start: u64,
    capacity: usize,
}

impl ResendBuffer {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            samples: VecDeque::new(),
            start: 0,
            capacity: capacity.max(1),
        }
    }

    /// An empty buffer whose next sample is session sample `start`.
    pub(super) fn starting_at(start: u64, capacity: usize) -> Self {
        Self {
            start,
            ..Self::new(capacity)
        }
    }

    /// Session sample index of the oldest kept sample.
    pub(super) fn start(&self) -> u64 {
        self.start
    }

    /// Session sample index just past the newest sample.
    pub(super) fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }

    pub(super) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Appends audio, letting the oldest go when over capacity.
    pub(super) fn push(&mut self, audio: &[i16]) {
        self.samples.extend(audio.iter().copied());
        let excess = self.samples.len().saturating_sub(self.capacity);
        if excess > 0 {
            self.samples.drain(..excess);
            self.start += excess as u64;
        }
    }

    /// Lets go of everything before `sample` (audio a final result has covered).
    pub(super) fn release_until(&mut self, sample: u64) {
        let n = sample
            .saturating_sub(self.start)
            .min(self.samples.len() as u64);
        self.samples.drain(..n as usize);
        self.start += n;
    }

    /// The kept audio in pieces of at most `size` samples, oldest first.
    pub(super) fn chunks(&self, size: usize) -> Vec<Vec<i16>> {
        let (a, b) = self.samples.as_slices();
        let all: Vec<i16> = a.iter().chain(b.iter()).copied().collect();
        all.chunks(size.max(1)).map(<[i16]>::to_vec).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_audio_until_released_and_tracks_positions() {
        let mut b = ResendBuffer::new(100);
        b.push(&[1, 2, 3, 4, 5]);
        b.push(&[6, 7]);
        assert_eq!((b.start(), b.end()), (0, 7));
        b.release_until(3);
        assert_eq!(b.start(), 3);
        assert_eq!(b.chunks(3), vec![vec![4, 5, 6], vec![7]]);
        b.release_until(100);
        assert!(b.is_empty());
        assert_eq!(b.start(), 7);
        b.release_until(2);
        assert_eq!(b.start(), 7);
    }

    #[test]
    fn drops_the_oldest_audio_past_capacity() {
        let mut b = ResendBuffer::new(4);
        b.push(&[1, 2, 3, 4, 5, 6]);
        assert_eq!((b.start(), b.end()), (2, 6));
        assert_eq!(b.chunks(10), vec![vec![3, 4, 5, 6]]);
    }
}
