//! What the fake model says, and how it is cut into SSE bytes.

use serde_json::{json, Value};

/// Deterministic reply text for the conversation so far.
pub(super) fn reply_text(scripted: &[(String, String)], messages: &[Value]) -> String {
    let last = messages.last();
    if last.and_then(|m| m.get("role")).and_then(Value::as_str) == Some("tool") {
        return super::AFTER_TOOLS.into();
    }
    let user = last_user_text(messages);
    let lower = user.to_lowercase();
    // The request said last is answered: a message that joins two (the first went unanswered)
    // gets the reply to the later one. Among keywords ending at the same place (an empty one, a
    // catch-all, ends everywhere), the first listed.
    // (Reversed: of equal maxima `max_by_key` keeps the last, here the first listed.)
    let latest = scripted
        .iter()
        .rev()
        .filter_map(|(when, reply)| {
            let when = when.to_lowercase();
            Some((lower.rfind(&when)? + when.len(), reply))
        })
        .max_by_key(|(end, _)| *end);
    if let Some((_, reply)) = latest {
        return reply.clone();
    }
    let said = user.trim().trim_end_matches(['.', '?', '!']);
    format!("You said: {said}. That is interesting. Tell me more.")
}

/// The text of the last user message ("" when there is none).
pub(super) fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .unwrap_or("")
        .to_string()
}

/// Splits text into token-like pieces: each word with its leading space.
pub(super) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if c == ' ' && !current.trim().is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Builds the `data:` payloads of a streamed completion.
pub(super) struct Completion {
    id: String,
    model: String,
}

impl Completion {
    pub(super) fn new(model: &str) -> Self {
        Self {
            id: format!(
                "chatcmpl-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            model: model.to_string(),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": 1767225600,
            "model": self.model, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null,
        })
    }

    /// A text reply: role chunk, one chunk per token, finish chunk, usage chunk.
    pub(super) fn text(&self, text: &str, prompt_tokens: u32) -> Vec<Value> {
        let pieces = tokens(text);
        let mut out = vec![self.chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            None,
        )];
        for (i, t) in pieces.iter().enumerate() {
            let mut c = self.chunk(json!({"content": t}), None);
            if i % 2 == 1 {
                // Older streams omit `usage`; newer ones carry padding. Clients must take both.
                c.as_object_mut().map(|o| o.remove("usage"));
                c["obfuscation"] = json!("x1Y2");
            }
            out.push(c);
        }
        out.push(self.chunk(json!({}), Some("stop")));
        out.push(self.usage(prompt_tokens, pieces.len() as u32));
        out
    }

    /// A tool call with its arguments split across fragments.
    pub(super) fn tool_call(&self, name: &str, arguments: &str, prompt_tokens: u32) -> Vec<Value> {
        let mut out = vec![self.chunk(
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                {"index": 0, "id": "call_fake0001", "type": "function", "function": {"name": name, "arguments": ""}}
            ]}),
            None,
        )];
        let chars: Vec<char> = arguments.chars().collect();
        for piece in chars.chunks(7) {
            let args: String = piece.iter().collect();
            out.push(self.chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": args}}]}),
                None,
            ));
        }
        out.push(self.chunk(json!({}), Some("tool_calls")));
        out.push(self.usage(prompt_tokens, 12));
        out
    }

    /// `calls` calls of `get_weather` at once, as parallel tool calls stream: each opens with
    /// its id and name, then the arguments of all of them arrive in interleaved fragments.
    pub(super) fn tool_storm(&self, calls: usize, prompt_tokens: u32) -> Vec<Value> {
        let arguments = r#"{"city":"Paris","unit":"celsius"}"#;
        let mut out: Vec<Value> = (0..calls)
            .map(|i| {
                let mut delta = json!({"tool_calls": [{"index": i, "id": format!("call_storm{i:04}"),
                    "type": "function", "function": {"name": "get_weather", "arguments": ""}}]});
                if i == 0 {
                    delta["role"] = json!("assistant");
                    delta["content"] = Value::Null;
                }
                self.chunk(delta, None)
            })
            .collect();
        let chars: Vec<char> = arguments.chars().collect();
        for piece in chars.chunks(5) {
            let args: String = piece.iter().collect();
            for i in 0..calls {
                out.push(self.chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": args}}]}),
                    None,
                ));
            }
        }
        out.push(self.chunk(json!({}), Some("tool_calls")));
        out.push(self.usage(prompt_tokens, 12 * calls as u32));
        out
    }

    fn usage(&self, prompt: u32, completion: u32) -> Value {
        json!({
            "id": self.id, "object": "chat.completion.chunk", "created": 1767225600,
            "model": self.model, "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion,
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        })
    }
}

/// The whole event stream as bytes: events, a keep-alive comment, multi-line-safe framing, and
/// the `[DONE]` terminator.
pub(super) fn event_stream(events: &[Value]) -> Vec<u8> {
    let mut s = String::from(": keep-alive\n\n");
    for (i, e) in events.iter().enumerate() {
        s.push_str(&format!("data: {e}\n\n"));
        if i == 1 {
            s.push_str(": processing\n\n");
        }
    }
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

/// The event stream of [`event_stream`] as one piece per event (the first also carrying the
/// keep-alive comment, the last the terminator).
pub(super) fn event_pieces(events: &[Value]) -> Vec<Vec<u8>> {
    let mut pieces: Vec<Vec<u8>> = events
        .iter()
        .map(|e| format!("data: {e}\n\n").into_bytes())
        .collect();
    if let Some(first) = pieces.first_mut() {
        first.splice(0..0, b": keep-alive\n\n".iter().copied());
    }
    pieces.push(b"data: [DONE]\n\n".to_vec());
    pieces
}

/// Cuts bytes into oddly sized pieces (splitting lines, terminators and characters anywhere).
pub(super) fn odd_pieces(bytes: &[u8]) -> Vec<Vec<u8>> {
    const SIZES: [usize; 8] = [5, 1, 13, 3, 29, 7, 2, 17];
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = SIZES[i % SIZES.len()].min(rest.len());
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_reply_echoes_the_last_user_message() {
        let msgs = vec![
            json!({"role": "system", "content": "s"}),
            json!({"role": "user", "content": "what is the weather in paris?"}),
        ];
        assert_eq!(
            reply_text(&[], &msgs),
            "You said: what is the weather in paris. That is interesting. Tell me more."
        );
        let scripted = vec![("weather".to_string(), "Sunny.".to_string())];
        assert_eq!(reply_text(&scripted, &msgs), "Sunny.");
    }

    #[test]
    fn tokens_rejoin_to_the_text_and_pieces_to_the_bytes() {
        let t = "Hello there, my friend.";
        assert_eq!(tokens(t).concat(), t);
        let bytes = event_stream(&Completion::new("m").text(t, 3));
        assert_eq!(odd_pieces(&bytes).concat(), bytes);
        let events = Completion::new("m").text(t, 3);
        let whole = event_pieces(&events);
        assert_eq!(
            whole.len(),
            events.len() + 1,
            "an event a piece, then [DONE]"
        );
        assert!(whole.iter().all(|p| p.ends_with(b"\n\n")));
    }
}
