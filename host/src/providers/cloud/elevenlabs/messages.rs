//! ElevenLabs server messages of both WebSocket endpoints: audio with alignment, the final
//! marker, errors; on the multi-context socket each names its context.

use crate::providers::Alignment;
use serde::Deserialize;

/// Any server message of the stream-input or multi-stream-input socket. The service writes
/// camelCase; some of its documents show `is_final` and `context_id`, so both spellings parse.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ServerMessage {
    #[serde(default)]
    pub audio: Option<String>,
    #[serde(default, alias = "is_final")]
    pub is_final: Option<bool>,
    /// The context the message belongs to (multi-context socket only).
    #[serde(default, alias = "context_id")]
    pub context_id: Option<String>,
    #[serde(default)]
    pub alignment: Option<WireAlignment>,
    #[serde(default)]
    pub normalized_alignment: Option<WireAlignment>,
    /// Error text, sent just before a 1008 close.
    #[serde(default)]
    pub message: Option<String>,
    /// Error code such as `input_timeout_exceeded` or `invalid_api_key`.
    #[serde(default)]
    pub error: Option<String>,
}

/// Character timings, relative to the chunk's start.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireAlignment {
    #[serde(default)]
    pub chars: Vec<String>,
    #[serde(default)]
    pub char_start_times_ms: Vec<f64>,
    /// Older documents spell it `charsDurationsMs`.
    #[serde(default, alias = "charsDurationsMs")]
    pub char_durations_ms: Vec<f64>,
}

impl ServerMessage {
    /// The chunk's alignment: the original text's characters when present (so truncation
    /// matches what the LLM wrote), else the normalised ones.
    pub(super) fn take_alignment(&mut self) -> Option<Alignment> {
        self.alignment
            .take()
            .and_then(WireAlignment::into_alignment)
            .or_else(|| {
                self.normalized_alignment
                    .take()
                    .and_then(WireAlignment::into_alignment)
            })
    }
}

impl WireAlignment {
    fn into_alignment(self) -> Option<Alignment> {
        let n = self
            .chars
            .len()
            .min(self.char_start_times_ms.len())
            .min(self.char_durations_ms.len());
        if n == 0 {
            return None;
        }
        let ms = |v: f64| v.round().clamp(0.0, u32::MAX as f64) as u32;
        Some(Alignment {
            chars: self.chars[..n]
                .iter()
                .map(|c| c.chars().next().unwrap_or(' '))
                .collect(),
            start_ms: self.char_start_times_ms[..n]
                .iter()
                .map(|&v| ms(v))
                .collect(),
            duration_ms: self.char_durations_ms[..n].iter().map(|&v| ms(v)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_alignment_is_preferred_and_both_spellings_parse() {
        let mut m: ServerMessage = serde_json::from_str(
            r#"{"audio":"AAA=","isFinal":null,
                "normalizedAlignment":{"chars":[" ","Y","o"],"charStartTimesMs":[0,58,104],"charDurationsMs":[58,46,47]},
                "alignment":{"chars":["Y","o"],"charStartTimesMs":[0,104],"charsDurationsMs":[104,47]}}"#,
        )
        .unwrap();
        let a = m.take_alignment().unwrap();
        assert_eq!(a.chars, vec!['Y', 'o']);
        assert_eq!(a.start_ms, vec![0, 104]);
        assert_eq!(a.duration_ms, vec![104, 47]);
    }

    #[test]
    fn normalized_alignment_is_the_fallback_and_ragged_arrays_are_cut() {
        let mut m: ServerMessage = serde_json::from_str(
            r#"{"audio":"AAA=","alignment":null,
                "normalizedAlignment":{"chars":["a","b","c"],"charStartTimesMs":[0,10],"charDurationsMs":[10,10,10]}}"#,
        )
        .unwrap();
        assert_eq!(m.take_alignment().unwrap().chars, vec!['a', 'b']);
        let mut fin: ServerMessage = serde_json::from_str(r#"{"isFinal":true}"#).unwrap();
        assert_eq!(fin.is_final, Some(true));
        assert!(fin.take_alignment().is_none());
        let err: ServerMessage = serde_json::from_str(
            r#"{"message":"Have not received a new text input","error":"input_timeout_exceeded","code":1008}"#,
        )
        .unwrap();
        assert_eq!(err.error.as_deref(), Some("input_timeout_exceeded"));
    }
}
