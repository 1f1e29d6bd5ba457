//! Whisper's token vocabulary (CTranslate2 `vocabulary.txt`: one token per line, in GPT-2's
//! byte-level form) and decoding of token ids back to text.

use std::collections::HashMap;

/// Token strings by id, plus the special tokens the decoder needs.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    tokens: Vec<String>,
    byte_of: HashMap<char, u8>,
    /// `<|endoftext|>`
    pub eot: u32,
    /// `<|startoftranscript|>`
    pub sot: u32,
    /// `<|notimestamps|>`
    pub no_timestamps: u32,
}

impl Vocabulary {
    /// Parses `vocabulary.txt`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens: Vec<String> = text.lines().map(str::to_string).collect();
        let find = |t: &str| {
            tokens
                .iter()
                .position(|x| x == t)
                .map(|i| i as u32)
                .ok_or_else(|| format!("vocabulary has no {t}"))
        };
        Ok(Self {
            eot: find("<|endoftext|>")?,
            sot: find("<|startoftranscript|>")?,
            no_timestamps: find("<|notimestamps|>")?,
            byte_of: byte_decoder(),
            tokens,
        })
    }

    /// Number of tokens.
    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether `id` is a special token (`<|...|>`, including timestamps), never shown as text.
    pub fn is_special(&self, id: u32) -> bool {
        id >= self.eot
    }

    /// Decodes text tokens (special ones are skipped); invalid UTF-8 is replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if self.is_special(id) {
                continue;
            }
            if let Some(token) = self.tokens.get(id as usize) {
                bytes.extend(token.chars().filter_map(|c| self.byte_of.get(&c)));
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's byte-to-printable-character table, inverted.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0;
    for b in 0u32..256 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        if let Some(c) = char::from_u32(c) {
            map.insert(c, b as u8);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab() -> Vocabulary {
        // Ġ is the byte-level form of a space; Ã© is "é" in UTF-8 bytes.
        Vocabulary::parse(
            "what\nĠis\nĠthe\nĠcaf\nÃ©\n<|endoftext|>\n<|startoftranscript|>\n<|notimestamps|>\n",
        )
        .unwrap()
    }

    #[test]
    fn decodes_byte_level_tokens_and_skips_specials() {
        let v = vocab();
        assert_eq!(v.eot, 5);
        assert_eq!(v.sot, 6);
        assert_eq!(v.decode(&[6, 7, 0, 1, 2, 3, 4, 5]), "what is the café");
    }

    #[test]
    fn missing_special_tokens_are_an_error() {
        assert!(Vocabulary::parse("a\nb\n").is_err());
    }
}
