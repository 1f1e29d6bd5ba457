//! One `chat.completion.chunk` of a streamed reply, and the reassembly of streamed tool calls.
//! Every field the protocol marks optional (or that some servers omit or send as null) is
//! optional here.

use crate::providers::Usage;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub(super) struct Chunk {
    #[serde(default)]
    pub choices: Option<Vec<Choice>>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    /// A mid-stream failure: `{"error":{"message":…}}`.
    #[serde(default)]
    pub error: Option<StreamError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Choice {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub delta: Option<Delta>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct ToolCallDelta {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
pub(super) struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub prompt_tokens: u32,
    #[serde(default)]
    pub completion_tokens: u32,
}

#[derive(Debug, Deserialize)]
pub(super) struct StreamError {
    #[serde(default)]
    pub message: Option<String>,
}

impl From<WireUsage> for Usage {
    fn from(u: WireUsage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }
    }
}

/// A complete tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text, as the model wrote it.
    pub arguments: String,
}

/// What one chunk contributed to the reply.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Contribution {
    pub text: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// Accumulates the reply's streamed state: tool-call fragments keyed by their `index`.
#[derive(Debug, Default)]
pub(super) struct Reply {
    calls: BTreeMap<u32, ToolCall>,
}

impl Reply {
    /// Takes one chunk in; only the first choice is read (requests ask for one).
    pub(super) fn take(&mut self, chunk: Chunk) -> Contribution {
        let mut out = Contribution {
            usage: chunk.usage.map(Usage::from),
            ..Default::default()
        };
        let Some(choice) = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        else {
            return out;
        };
        out.finish_reason = choice.finish_reason;
        let delta = choice.delta.unwrap_or_default();
        out.text = delta.content.filter(|t| !t.is_empty());
        for fragment in delta.tool_calls.unwrap_or_default() {
            let call = self
                .calls
                .entry(fragment.index.unwrap_or(0))
                .or_insert_with(|| ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
            if let Some(id) = fragment.id.filter(|s| !s.is_empty()) {
                call.id = id;
            }
            if let Some(f) = fragment.function {
                if let Some(name) = f.name {
                    call.name.push_str(&name);
                }
                if let Some(args) = f.arguments {
                    call.arguments.push_str(&args);
                }
            }
        }
        out
    }

    /// The tool calls assembled so far, in index order; calls without an id get one.
    pub(super) fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls
            .iter()
            .map(|(index, call)| {
                let mut call = call.clone();
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                call
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(json: &str) -> Chunk {
        serde_json::from_str(json).expect("chunk parses")
    }

    #[test]
    fn text_finish_and_usage_are_read_with_null_and_missing_fields() {
        let mut reply = Reply::default();
        let first = reply.take(chunk(
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        ));
        assert_eq!(first, Contribution::default());
        let text = reply.take(chunk(
            r#"{"choices":[{"index":0,"delta":{"content":"Sure,"},"finish_reason":null}],"obfuscation":"xx","service_tier":"default"}"#,
        ));
        assert_eq!(text.text.as_deref(), Some("Sure,"));
        let null_content = reply.take(chunk(
            r#"{"choices":[{"index":0,"delta":{"content":null}}]}"#,
        ));
        assert_eq!(null_content.text, None);
        let finish = reply.take(chunk(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        ));
        assert_eq!(finish.finish_reason.as_deref(), Some("stop"));
        let usage = reply.take(chunk(
            r#"{"choices":[],"usage":{"prompt_tokens":42,"completion_tokens":5,"total_tokens":47,"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        ));
        assert_eq!(
            usage.usage,
            Some(Usage {
                prompt_tokens: 42,
                completion_tokens: 5
            })
        );
        assert!(reply.tool_calls().is_empty());
    }

    #[test]
    fn tool_call_fragments_are_joined_per_index() {
        let mut reply = Reply::default();
        for c in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_9Qx2","type":"function","function":{"name":"create_booking","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"other","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"party_"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"size\":2}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            reply.take(chunk(c));
        }
        assert_eq!(
            reply.tool_calls(),
            vec![
                ToolCall {
                    id: "call_9Qx2".into(),
                    name: "create_booking".into(),
                    arguments: "{\"party_size\":2}".into()
                },
                ToolCall {
                    id: "call_B".into(),
                    name: "other".into(),
                    arguments: "{}".into()
                }
            ]
        );
    }

    #[test]
    fn mid_stream_error_is_recognised() {
        let c =
            chunk(r#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#);
        assert_eq!(c.error.and_then(|e| e.message).as_deref(), Some("boom"));
    }
}
