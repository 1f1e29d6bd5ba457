//! The chat-completions request body.

use super::chunk::ToolCall;
use super::OpenAiSettings;
use crate::behaviour::{ChatMessage, GenerationSettings, Role};
use serde_json::{json, Value};

/// The tool result sent back for every call, since the host exposes no tools yet.
pub(super) const TOOL_UNAVAILABLE: &str =
    r#"{"error":"This tool is not available. Answer the user without it."}"#;

/// Conversation messages in wire form.
pub(super) fn wire_messages(messages: &[ChatMessage]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": m.content})
        })
        .collect()
}

/// Appends the assistant's tool-call turn and an error result for each call.
pub(super) fn answer_tool_calls(messages: &mut Vec<Value>, text: &str, calls: &[ToolCall]) {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|c| {
            json!({"id": c.id, "type": "function",
                   "function": {"name": c.name, "arguments": c.arguments}})
        })
        .collect();
    let content = if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_string())
    };
    messages.push(json!({"role": "assistant", "content": content, "tool_calls": tool_calls}));
    for call in calls {
        messages
            .push(json!({"role": "tool", "tool_call_id": call.id, "content": TOOL_UNAVAILABLE}));
    }
}

/// The request body: streamed, with usage, and the effective generation settings.
pub(super) fn body(
    settings: &OpenAiSettings,
    model: Option<&str>,
    overrides: &GenerationSettings,
    messages: &[Value],
) -> Value {
    let mut body = json!({
        "model": model.unwrap_or(&settings.model),
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(t) = overrides.temperature.or(settings.temperature) {
        body["temperature"] = json!(t);
    }
    if let Some(n) = overrides.max_tokens.or(settings.max_tokens) {
        body[max_tokens_field(&settings.base_url)] = json!(n);
    }
    body
}

/// OpenAI's own API deprecated `max_tokens` for `max_completion_tokens` (reasoning models refuse
/// the old name); compatible servers (vLLM, llama.cpp, Ollama, older gateways) often know only
/// `max_tokens`.
fn max_tokens_field(base_url: &str) -> &'static str {
    let host = url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    match host.as_deref() {
        Some("api.openai.com") => "max_completion_tokens",
        _ => "max_tokens",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_streamed_with_usage_and_request_settings_win() {
        let settings = OpenAiSettings {
            temperature: Some(0.2),
            max_tokens: Some(100),
            ..Default::default()
        };
        let messages = wire_messages(&[
            ChatMessage::new(Role::System, "be brief"),
            ChatMessage::new(Role::User, "hi"),
        ]);
        let b = body(
            &settings,
            None,
            &GenerationSettings {
                temperature: Some(0.9),
                max_tokens: None,
            },
            &messages,
        );
        assert_eq!(b["model"], "gpt-4o-mini");
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert!((b["temperature"].as_f64().unwrap() - 0.9).abs() < 1e-6);
        assert_eq!(
            b["max_completion_tokens"], 100,
            "OpenAI's endpoint gets the current name: {b}"
        );
        assert!(b.get("max_tokens").is_none(), "{b}");
        let compatible = body(
            &OpenAiSettings {
                base_url: "http://127.0.0.1:8080/v1".into(),
                ..settings.clone()
            },
            None,
            &GenerationSettings::default(),
            &messages,
        );
        assert_eq!(compatible["max_tokens"], 100, "{compatible}");
        assert!(compatible.get("max_completion_tokens").is_none());
        assert_eq!(
            b["messages"][0],
            json!({"role":"system","content":"be brief"})
        );
        assert_eq!(b["messages"][1]["role"], "user");
        let plain = body(
            &OpenAiSettings::default(),
            None,
            &GenerationSettings::default(),
            &messages,
        );
        assert!(
            plain.get("temperature").is_none()
                && plain.get("max_tokens").is_none()
                && plain.get("max_completion_tokens").is_none()
        );
        let profile = body(
            &OpenAiSettings::default(),
            Some("gpt-4.1-mini"),
            &GenerationSettings::default(),
            &messages,
        );
        assert_eq!(
            profile["model"], "gpt-4.1-mini",
            "the agent profile's model wins"
        );
    }

    #[test]
    fn tool_calls_are_answered_with_error_results() {
        let mut messages = Vec::new();
        let calls = vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
        }];
        answer_tool_calls(&mut messages, "", &calls);
        assert_eq!(messages[0]["role"], "assistant");
        assert_eq!(messages[0]["content"], Value::Null);
        assert_eq!(
            messages[0]["tool_calls"][0]["function"]["arguments"],
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(messages[1]["role"], "tool");
        assert_eq!(messages[1]["tool_call_id"], "call_1");
    }
}
