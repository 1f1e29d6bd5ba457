//! Binary frames to samples, as the service reads `encoding=linear16`: one continuous
//! little-endian byte stream (a sample may straddle two frames), interleaved by `channels`.
//! A client that drops or adds a byte shifts every later sample, which then decodes to noise.

/// Decoder state of one connection.
#[derive(Debug)]
pub struct Linear16 {
    channels: usize,
    /// Bytes of a sample frame (all channels) not complete yet.
    pending: Vec<u8>,
}

impl Linear16 {
    pub fn new(channels: u32) -> Self {
        Self {
            channels: channels.max(1) as usize,
            pending: Vec::new(),
        }
    }

    /// The first channel's samples completed by `bytes`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<i16> {
        self.pending.extend_from_slice(bytes);
        let width = 2 * self.channels;
        let whole = self.pending.len() / width * width;
        let samples = self.pending[..whole]
            .chunks_exact(width)
            .map(|f| i16::from_le_bytes([f[0], f[1]]))
            .collect();
        self.pending.drain(..whole);
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_straddling_frames_are_joined() {
        let bytes: Vec<u8> = [1i16, -2, 300, 4]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let mut d = Linear16::new(1);
        let mut out = d.push(&bytes[..3]);
        out.extend(d.push(&bytes[3..]));
        assert_eq!(out, [1, -2, 300, 4]);
        assert_eq!(Linear16::new(2).push(&bytes), [1, 300]);
    }
}
