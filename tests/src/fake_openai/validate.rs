//! Request validation as the chat-completions API does it: unknown parameters, types and value
//! ranges here, the messages in [`super::messages`]. Each refusal carries the API's wording, `param`
//! and `code`, so a client that the fake accepts is one the real service accepts too.

use super::messages;
use serde_json::{Map, Value};

/// Why a request is refused: the fields of the API's 400 error body.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl Invalid {
    pub(super) fn new(
        message: impl Into<String>,
        param: Option<String>,
        code: Option<&'static str>,
    ) -> Self {
        Self {
            message: message.into(),
            param,
            code,
        }
    }

    pub(super) fn missing(param: String) -> Self {
        Self::new(
            format!("Missing required parameter: '{param}'."),
            Some(param),
            Some("missing_required_parameter"),
        )
    }

    pub(super) fn wrong_type(param: String, expected: &str, got: &Value) -> Self {
        Self::new(
            format!(
                "Invalid type for '{param}': expected {expected}, but got {} instead.",
                type_name(got)
            ),
            Some(param),
            Some("invalid_type"),
        )
    }

    pub(super) fn bad_value(param: String, got: &str, supported: &[&str]) -> Self {
        Self::new(
            format!(
                "Invalid value: '{got}'. Supported values are: {}.",
                quoted_list(supported)
            ),
            Some(param),
            Some("invalid_value"),
        )
    }
}

/// Every top-level parameter the endpoint takes; anything else is refused by name.
const KNOWN: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "service_tier",
    "store",
    "metadata",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "safety_identifier",
    "prompt_cache_key",
    "verbosity",
];

/// Checks a request body; `Err` is the 400 the real service would answer.
pub fn request(body: &Value) -> Result<(), Invalid> {
    let Some(body) = body.as_object() else {
        return Err(Invalid::new(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(Invalid::new(
            format!("Unrecognized request argument supplied: {unknown}"),
            None,
            None,
        ));
    }
    match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        Some(other @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => {
            return Err(Invalid::wrong_type("model".into(), "a string", other))
        }
        _ => {
            return Err(Invalid::new(
                "you must provide a model parameter",
                None,
                None,
            ))
        }
    }
    numbers(body)?;
    let streaming = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(Invalid::wrong_type("stream".into(), "a boolean", other)),
    };
    if body.get("stream_options").is_some_and(|v| !v.is_null()) && !streaming {
        return Err(Invalid::new(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Some("stream_options".into()),
            None,
        ));
    }
    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(Invalid::missing("messages".into())),
        Some(Value::Array(m)) => m,
        Some(other) => {
            return Err(Invalid::wrong_type(
                "messages".into(),
                "an array of objects",
                other,
            ))
        }
    };
    if messages.is_empty() {
        return Err(Invalid::new(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            Some("messages".into()),
            Some("empty_array"),
        ));
    }
    messages::check(messages)
}

/// Numeric parameters: type and documented range.
fn numbers(body: &Map<String, Value>) -> Result<(), Invalid> {
    for (name, min, max) in [
        ("temperature", 0.0, 2.0),
        ("top_p", 0.0, 1.0),
        ("presence_penalty", -2.0, 2.0),
        ("frequency_penalty", -2.0, 2.0),
    ] {
        let Some(v) = body.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(x) = v.as_f64() else {
            return Err(Invalid::wrong_type(name.into(), "a decimal", v));
        };
        if x > max {
            return Err(Invalid::new(
                format!("Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but got {x} instead."),
                Some(name.into()),
                Some("decimal_above_max_value"),
            ));
        }
        if x < min {
            return Err(Invalid::new(
                format!("Invalid '{name}': decimal below minimum value. Expected a value >= {min}, but got {x} instead."),
                Some(name.into()),
                Some("decimal_below_min_value"),
            ));
        }
    }
    for (name, min) in [("max_tokens", 1), ("max_completion_tokens", 1), ("n", 1)] {
        let Some(v) = body.get(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let Some(x) = v.as_i64() else {
            return Err(Invalid::wrong_type(name.into(), "an integer", v));
        };
        if x < min {
            return Err(Invalid::new(
                format!("Invalid '{name}': integer below minimum value. Expected a value >= {min}, but got {x} instead."),
                Some(name.into()),
                Some("integer_below_min_value"),
            ));
        }
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `'a', 'b', and 'c'`, as the service lists supported values.
fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok_body() -> Value {
        json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
               "temperature": 0.4, "max_tokens": 10, "max_completion_tokens": 10,
               "messages": [
                   {"role": "system", "content": "s"},
                   {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                   {"role": "assistant", "content": null, "tool_calls": [
                       {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                       {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "c2", "content": "x"},
                   {"role": "tool", "tool_call_id": "c1", "content": "y"},
                   {"role": "user", "content": "next"}]})
    }

    #[test]
    fn a_well_formed_request_passes_and_each_fault_is_named() {
        assert_eq!(request(&ok_body()), Ok(()));
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut b = ok_body();
            edit(&mut b);
            request(&b).expect_err("refused")
        };
        let e = refused(&|b| b["messages"][4]["tool_call_id"] = json!("c9"));
        assert_eq!(e.param.as_deref(), Some("messages.[4].role"));
        let e = refused(&|b| {
            b["messages"].as_array_mut().unwrap().remove(4);
        });
        assert!(e.message.ends_with("response messages: c1"), "{e:?}");
        let e = refused(&|b| b["temperature"] = json!(2.5));
        assert_eq!(e.code, Some("decimal_above_max_value"));
        let e = refused(&|b| b["messages"][1]["content"][0]["type"] = json!("input_text"));
        assert_eq!(e.param.as_deref(), Some("messages[1].content[0].type"));
        assert_eq!(
            e.message,
            "Invalid value: 'input_text'. Supported values are: 'text', 'image_url', 'input_audio', and 'file'."
        );
    }
}
