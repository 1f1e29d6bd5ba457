//! The `messages` array as the chat-completions API checks it: roles, content (a string or
//! typed parts allowed for the role), `tool_calls` items, and that every `tool_calls` turn is
//! answered by one `tool` message per call id, right after it.

use super::validate::Invalid;
use serde_json::Value;

const ROLES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "function",
    "tool",
    "developer",
];

/// Checks every message, then the pairing of tool calls with their results.
pub(super) fn check(messages: &[Value]) -> Result<(), Invalid> {
    for (i, m) in messages.iter().enumerate() {
        message(i, m)?;
    }
    tool_pairing(messages)
}

/// One message: role, content (string or typed parts), and the role's own fields.
fn message(i: usize, m: &Value) -> Result<(), Invalid> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let Some(m) = m.as_object() else {
        return Err(Invalid::wrong_type(
            format!("messages[{i}]"),
            "an object",
            m,
        ));
    };
    let role = match m.get("role") {
        None | Some(Value::Null) => return Err(Invalid::missing(at("role"))),
        Some(Value::String(r)) => r.as_str(),
        Some(other) => return Err(Invalid::wrong_type(at("role"), "a string", other)),
    };
    if !ROLES.contains(&role) {
        return Err(Invalid::bad_value(at("role"), role, ROLES));
    }
    let parts: &[&str] = match role {
        "user" => &["text", "image_url", "input_audio", "file"],
        "assistant" => &["text", "refusal"],
        _ => &["text"],
    };
    let has_calls = role == "assistant" && m.get("tool_calls").is_some_and(|c| !c.is_null());
    match m.get("content") {
        None | Some(Value::Null) if has_calls || role == "function" => {}
        None | Some(Value::Null) => return Err(Invalid::missing(at("content"))),
        Some(Value::String(_)) => {}
        Some(Value::Array(items)) => {
            for (j, part) in items.iter().enumerate() {
                let here = format!("messages[{i}].content[{j}]");
                let Some(kind) = part.get("type").and_then(Value::as_str) else {
                    return Err(Invalid::missing(format!("{here}.type")));
                };
                if !parts.contains(&kind) {
                    return Err(Invalid::bad_value(format!("{here}.type"), kind, parts));
                }
                if kind == "text" && !part.get("text").is_some_and(Value::is_string) {
                    return Err(Invalid::missing(format!("{here}.text")));
                }
            }
        }
        Some(other) => {
            return Err(Invalid::wrong_type(
                at("content"),
                "one of a string or array of objects",
                other,
            ))
        }
    }
    if role == "tool" && !m.get("tool_call_id").is_some_and(Value::is_string) {
        return Err(Invalid::missing(at("tool_call_id")));
    }
    if let Some(calls) = m.get("tool_calls").filter(|c| !c.is_null()) {
        if role != "assistant" {
            return Err(Invalid::new(
                format!("Invalid parameter: only messages with role 'assistant' can have 'tool_calls'; messages[{i}] has role '{role}'."),
                Some(at("tool_calls")),
                None,
            ));
        }
        tool_calls(i, calls)?;
    }
    Ok(())
}

fn tool_calls(i: usize, calls: &Value) -> Result<(), Invalid> {
    let Some(calls) = calls.as_array() else {
        return Err(Invalid::wrong_type(
            format!("messages[{i}].tool_calls"),
            "an array of objects",
            calls,
        ));
    };
    if calls.is_empty() {
        return Err(Invalid::new(
            format!("Invalid 'messages[{i}].tool_calls': empty array. Expected an array with minimum length 1, but got an empty array instead."),
            Some(format!("messages[{i}].tool_calls")),
            Some("empty_array"),
        ));
    }
    for (j, call) in calls.iter().enumerate() {
        let here = format!("messages[{i}].tool_calls[{j}]");
        if !call.get("id").is_some_and(Value::is_string) {
            return Err(Invalid::missing(format!("{here}.id")));
        }
        match call.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some(other) => {
                return Err(Invalid::bad_value(
                    format!("{here}.type"),
                    other,
                    &["function"],
                ))
            }
            None => return Err(Invalid::missing(format!("{here}.type"))),
        }
        let function = call.get("function");
        if !function
            .and_then(|f| f.get("name"))
            .is_some_and(Value::is_string)
        {
            return Err(Invalid::missing(format!("{here}.function.name")));
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(_)) => {}
            None => return Err(Invalid::missing(format!("{here}.function.arguments"))),
            Some(other) => {
                return Err(Invalid::wrong_type(
                    format!("{here}.function.arguments"),
                    "a string",
                    other,
                ))
            }
        }
    }
    Ok(())
}

/// Every `tool_calls` turn is followed by one `tool` message per call id, and every `tool`
/// message answers a call of the assistant turn just before it.
fn tool_pairing(messages: &[Value]) -> Result<(), Invalid> {
    // Call ids of the latest assistant turn not yet answered, and that turn's index.
    let mut open: Option<(usize, Vec<String>)> = None;
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if role == "tool" {
            let id = m.get("tool_call_id").and_then(Value::as_str).unwrap_or("");
            let answered = open
                .as_mut()
                .and_then(|(_, ids)| ids.iter().position(|x| x == id).map(|p| ids.remove(p)));
            if answered.is_none() {
                return Err(Invalid::new(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    Some(format!("messages.[{i}].role")),
                    None,
                ));
            }
            continue;
        }
        unanswered(&open)?;
        open = m
            .get("tool_calls")
            .and_then(Value::as_array)
            .filter(|_| role == "assistant")
            .map(|calls| {
                let ids = calls
                    .iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect();
                (i, ids)
            });
    }
    unanswered(&open)
}

fn unanswered(open: &Option<(usize, Vec<String>)>) -> Result<(), Invalid> {
    match open {
        Some((at, ids)) if !ids.is_empty() => Err(Invalid::new(
            format!("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}", ids.join(", ")),
            Some(format!("messages.[{at}].role")),
            None,
        )),
        _ => Ok(()),
    }
}
