//! Cuts a stream of samples into fixed-length frames.

/// Accumulates samples and hands out complete frames of a fixed length.
///
/// Frames that lie wholly inside one pushed slice are passed straight through; only a
/// frame straddling two pushes is copied, into a buffer allocated once.
#[derive(Debug, Clone)]
pub struct Framer {
    frame_len: usize,
    partial: Vec<i16>,
}

impl Default for Framer {
    /// 20 ms frames at 16 kHz.
    fn default() -> Self {
        Self::new(super::FRAME_SAMPLES)
    }
}

impl Framer {
    /// A framer yielding frames of `frame_len` samples (a length of 0 is treated as 1).
    pub fn new(frame_len: usize) -> Self {
        let frame_len = frame_len.max(1);
        Self {
            frame_len,
            partial: Vec::with_capacity(frame_len),
        }
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Appends `samples`, calling `f` once per completed frame, in order.
    pub fn push(&mut self, mut samples: &[i16], mut f: impl FnMut(&[i16])) {
        if !self.partial.is_empty() {
            let need = self.frame_len - self.partial.len();
            let (head, rest) = samples.split_at(need.min(samples.len()));
            self.partial.extend_from_slice(head);
            samples = rest;
            if self.partial.len() < self.frame_len {
                return;
            }
            f(&self.partial);
            self.partial.clear();
        }
        let mut frames = samples.chunks_exact(self.frame_len);
        for frame in frames.by_ref() {
            f(frame);
        }
        self.partial.extend_from_slice(frames.remainder());
    }

    /// Samples waiting for the rest of their frame.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Drops the samples waiting for the rest of their frame.
    pub fn reset(&mut self) {
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(framer: &mut Framer, samples: &[i16], frames: &mut Vec<Vec<i16>>) {
        framer.push(samples, |frame| frames.push(frame.to_vec()));
    }

    #[test]
    fn yields_frames_in_order_across_uneven_pushes() {
        let input: Vec<i16> = (0..1_000).collect();
        let mut framer = Framer::new(320);
        let mut frames = Vec::new();
        let mut rest = &input[..];
        for size in [1usize, 319, 0, 500, 7, 173].iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            collect(&mut framer, &rest[..n], &mut frames);
            rest = &rest[n..];
        }
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() == 320));
        let joined: Vec<i16> = frames.concat();
        assert_eq!(joined, input[..960]);
        assert_eq!(framer.pending(), 40);
    }

    #[test]
    fn short_push_yields_nothing_until_complete() {
        let mut framer = Framer::default();
        let mut frames = Vec::new();
        collect(&mut framer, &[1; 319], &mut frames);
        assert!(frames.is_empty());
        assert_eq!(framer.pending(), 319);
        collect(&mut framer, &[2; 1], &mut frames);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0][319], 2);
        assert_eq!(framer.pending(), 0);
    }

    #[test]
    fn reset_drops_pending_samples() {
        let mut framer = Framer::new(4);
        let mut frames = Vec::new();
        collect(&mut framer, &[9, 9, 9], &mut frames);
        framer.reset();
        collect(&mut framer, &[1, 2, 3, 4], &mut frames);
        assert_eq!(frames, vec![vec![1, 2, 3, 4]]);
    }

    #[test]
    fn zero_length_is_clamped() {
        let mut framer = Framer::new(0);
        let mut count = 0;
        framer.push(&[1, 2, 3], |_| count += 1);
        assert_eq!(count, 3);
    }
}
