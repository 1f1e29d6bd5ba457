//! The fakes refuse what the real providers refuse, each in the provider's own way: OpenAI with
//! a 400 error body, Deepgram with a 400 handshake or a 1008 close and by hearing nothing in
//! audio that is not what the query declared, ElevenLabs with an error message and a 1008
//! close. Every test drives a fake with raw requests and holds a well-formed twin beside the
//! malformed one, so the refusal is the only difference.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::{self, Message};
use voice_tests::fake_deepgram::{DeepgramScript, FakeDeepgram};
use voice_tests::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use voice_tests::fake_openai::{FakeOpenAi, OpenAiScript};
use voice_tests::speech::{silence, utterance};

/// Guard against a hung fake; not a performance bound.
const LIMIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- OpenAI

fn chat_body() -> Value {
    json!({
        "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "temperature": 0.4, "max_tokens": 50,
        "messages": [
            {"role": "system", "content": "You are a voice agent."},
            {"role": "user", "content": "hello"},
        ],
    })
}

/// Posts `body` and returns the status and the parsed body (`null` for a stream).
async fn post(fake: &FakeOpenAi, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(body)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a whole body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn openai_refuses_malformed_requests_with_the_api_error_body() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    let (status, _) = post(&fake, &chat_body()).await;
    assert_eq!(status, 200, "the well-formed request streams");

    let tool_turn = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]});
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, Option<&str>, Option<&str>)> = vec![
        (
            "Unrecognized request argument supplied: frobnicate",
            Box::new(|b| b["frobnicate"] = json!(true)),
            None,
            None,
        ),
        (
            "Invalid value: 'bot'.",
            Box::new(|b| b["messages"][1]["role"] = json!("bot")),
            Some("messages[1].role"),
            Some("invalid_value"),
        ),
        (
            "Invalid value: 'input_text'.",
            Box::new(|b| {
                b["messages"][1]["content"] = json!([{"type": "input_text", "text": "hello"}])
            }),
            Some("messages[1].content[0].type"),
            Some("invalid_value"),
        ),
        (
            "Missing required parameter: 'messages[1].content'.",
            Box::new(|b| {
                b["messages"][1].as_object_mut().unwrap().remove("content");
            }),
            Some("messages[1].content"),
            Some("missing_required_parameter"),
        ),
        (
            "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
            Box::new(|b| {
                b["messages"][1] = json!({"role": "tool", "tool_call_id": "call_1", "content": "{}"})
            }),
            Some("messages.[1].role"),
            None,
        ),
        (
            "The following tool_call_ids did not have response messages: call_1",
            {
                let turn = tool_turn.clone();
                Box::new(move |b| b["messages"].as_array_mut().unwrap().push(turn.clone()))
            },
            Some("messages.[2].role"),
            None,
        ),
        (
            "Missing required parameter: 'messages[3].tool_call_id'.",
            {
                let turn = tool_turn.clone();
                Box::new(move |b| {
                    let m = b["messages"].as_array_mut().unwrap();
                    m.push(turn.clone());
                    m.push(json!({"role": "tool", "content": "{}"}));
                })
            },
            Some("messages[3].tool_call_id"),
            Some("missing_required_parameter"),
        ),
        (
            "Invalid 'temperature': decimal above maximum value.",
            Box::new(|b| b["temperature"] = json!(2.5)),
            Some("temperature"),
            Some("decimal_above_max_value"),
        ),
        (
            "Invalid 'max_tokens': integer below minimum value.",
            Box::new(|b| b["max_tokens"] = json!(0)),
            Some("max_tokens"),
            Some("integer_below_min_value"),
        ),
        (
            "Invalid type for 'max_completion_tokens': expected an integer",
            Box::new(|b| b["max_completion_tokens"] = json!("many")),
            Some("max_completion_tokens"),
            Some("invalid_type"),
        ),
        (
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Box::new(|b| b["stream"] = json!(false)),
            Some("stream_options"),
            None,
        ),
    ];
    for (message, edit, param, code) in cases {
        let mut body = chat_body();
        edit(&mut body);
        let (status, answer) = post(&fake, &body).await;
        assert_eq!(status, 400, "{message}: {answer}");
        let error = &answer["error"];
        assert!(
            error["message"].as_str().unwrap_or("").contains(message),
            "expected {message:?} in {answer}"
        );
        assert_eq!(error["type"], "invalid_request_error", "{answer}");
        assert_eq!(error["param"].as_str(), param, "{answer}");
        assert_eq!(error["code"].as_str(), code, "{answer}");
    }
    let refused = fake
        .requests()
        .iter()
        .filter(|r| r.outcome.as_deref() == Some("status 400"))
        .count();
    assert_eq!(
        refused, 11,
        "every malformed request was refused, none streamed"
    );
}

#[tokio::test]
async fn openai_accepts_answered_tool_calls_and_either_token_limit() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    let mut answered = chat_body();
    let m = answered["messages"].as_array_mut().unwrap();
    m.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}));
    m.push(json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"error\":\"none\"}"}));
    m.push(json!({"role": "developer", "content": [{"type": "text", "text": "be brief"}]}));
    assert_eq!(post(&fake, &answered).await.0, 200);

    let mut newer = chat_body();
    newer.as_object_mut().unwrap().remove("max_tokens");
    newer["max_completion_tokens"] = json!(50);
    assert_eq!(post(&fake, &newer).await.0, 200);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs
        .iter()
        .all(|r| r.outcome.as_deref() != Some("status 400")));
}

// ---------------------------------------------------------------- Deepgram

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn listen(fake: &FakeDeepgram, query: &str) -> Result<Socket, tungstenite::Error> {
    let url = format!("{}/v1/listen?{query}", fake.url());
    tokio_tungstenite::connect_async(url).await.map(|(s, _)| s)
}

/// Reads until the server closes; returns the text messages and the close code.
async fn until_close(socket: &mut Socket) -> (Vec<Value>, Option<u16>) {
    let mut texts = Vec::new();
    loop {
        let frame = tokio::time::timeout(LIMIT, socket.next())
            .await
            .expect("the server answers");
        match frame {
            Some(Ok(Message::Text(t))) => {
                texts.push(serde_json::from_str(t.as_str()).unwrap_or(Value::Null))
            }
            Some(Ok(Message::Close(close))) => {
                return (texts, close.map(|c| u16::from(c.code)));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (texts, None),
        }
    }
}

/// Streams `bytes` in frames of `frame` bytes, asks to close, and returns every transcript
/// word the fake sent.
async fn transcribe(fake: &FakeDeepgram, query: &str, bytes: &[u8], frame: usize) -> String {
    let mut socket = listen(fake, query).await.expect("handshake accepted");
    for chunk in bytes.chunks(frame) {
        socket.send(Message::binary(chunk.to_vec())).await.unwrap();
    }
    socket
        .send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .unwrap();
    let (texts, code) = until_close(&mut socket).await;
    assert_eq!(code, Some(1000), "{texts:?}");
    assert_eq!(texts.last().unwrap()["type"], "Metadata");
    texts
        .iter()
        .filter(|m| m["type"] == "Results")
        .filter_map(|m| m["channel"]["alternatives"][0]["transcript"].as_str())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// An utterance at 16 kHz with silence around it.
fn spoken() -> Vec<i16> {
    let mut audio = silence(200);
    audio.extend(utterance(800, 600));
    audio
}

fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

const LINEAR16_16K: &str = "encoding=linear16&sample_rate=16000&channels=1&endpointing=300";

#[tokio::test]
async fn deepgram_hears_nothing_in_byte_swapped_or_misaligned_linear16() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["one", "two", "three"]))
        .await
        .unwrap();
    let audio = spoken();
    let swapped: Vec<u8> = audio.iter().flat_map(|s| s.to_be_bytes()).collect();
    assert_eq!(transcribe(&fake, LINEAR16_16K, &swapped, 640).await, "");
    // One stray byte up front shifts every sample by half.
    let mut shifted = vec![0u8];
    shifted.extend(le_bytes(&audio));
    assert_eq!(transcribe(&fake, LINEAR16_16K, &shifted, 640).await, "");
    // Little-endian in odd-sized frames: samples straddle frames and still decode.
    assert_eq!(
        transcribe(&fake, LINEAR16_16K, &le_bytes(&audio), 333).await,
        "one"
    );
}

#[tokio::test]
async fn deepgram_hears_nothing_when_the_declared_rate_is_wrong() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["right rate"]))
        .await
        .unwrap();
    let audio = spoken();
    let at_8k: Vec<i16> = audio.iter().step_by(2).copied().collect();
    let declared = |rate: u32| format!("encoding=linear16&sample_rate={rate}&endpointing=300");
    // 16 kHz audio declared as 8 kHz or 48 kHz, 8 kHz audio declared as 16 kHz.
    assert_eq!(
        transcribe(&fake, &declared(8000), &le_bytes(&audio), 640).await,
        ""
    );
    assert_eq!(
        transcribe(&fake, &declared(48_000), &le_bytes(&audio), 640).await,
        ""
    );
    assert_eq!(
        transcribe(&fake, &declared(16_000), &le_bytes(&at_8k), 640).await,
        ""
    );
    // The 8 kHz copy declared as what it is.
    assert_eq!(
        transcribe(&fake, &declared(8000), &le_bytes(&at_8k), 320).await,
        "right rate"
    );
}

#[tokio::test]
async fn deepgram_refuses_unreadable_query_values_at_the_handshake() {
    let fake = FakeDeepgram::start(DeepgramScript::default())
        .await
        .unwrap();
    for bad in [
        "endpointing=soon",
        "endpointing=-300",
        "interim_results=yes",
        "encoding=linear16",
        "encoding=wav&sample_rate=16000",
    ] {
        let query = format!("model=nova-3&{bad}");
        let Err(tungstenite::Error::Http(response)) = listen(&fake, &query).await else {
            panic!("{bad}: the handshake was accepted");
        };
        assert_eq!(response.status().as_u16(), 400, "{bad}");
        let body: Value =
            serde_json::from_slice(&response.body().as_ref().map(|b| b.to_vec()).unwrap())
                .expect("a JSON error body");
        assert_eq!(body["err_code"], "INVALID_QUERY_PARAMETER", "{bad}");
        assert!(body["err_msg"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["request_id"].is_string());
    }
    for good in ["endpointing=false", "endpointing=300", "endpointing=0"] {
        let query = format!("model=nova-3&encoding=linear16&sample_rate=16000&{good}");
        assert!(listen(&fake, &query).await.is_ok(), "{good} is accepted");
    }
    let refused = fake
        .connections()
        .iter()
        .filter(|c| c.refused == Some(400))
        .count();
    assert_eq!(refused, 5);
}

#[tokio::test]
async fn deepgram_refuses_unknown_control_messages_with_an_error_and_a_close() {
    let fake = FakeDeepgram::start(DeepgramScript::default())
        .await
        .unwrap();
    for bad in [
        r#"{"type":"Flush"}"#,
        r#"{"kind":"KeepAlive"}"#,
        r#"{"type":"Finalize","channel":"zero"}"#,
        "KeepAlive",
    ] {
        let mut socket = listen(&fake, LINEAR16_16K).await.unwrap();
        socket
            .send(Message::text(r#"{"type":"KeepAlive"}"#))
            .await
            .unwrap();
        socket.send(Message::text(bad)).await.unwrap();
        let (texts, code) = until_close(&mut socket).await;
        assert_eq!(code, Some(1008), "{bad}: {texts:?}");
        assert_eq!(texts.len(), 1, "{bad}: {texts:?}");
        assert_eq!(texts[0]["type"], "Error", "{bad}");
    }
    let conns = fake.connections();
    assert!(conns
        .iter()
        .all(|c| c.control == ["KeepAlive", "refused"]
            && c.ended.as_deref() == Some("refused-message")));
}

// ---------------------------------------------------------------- ElevenLabs

async fn tts_socket(fake: &FakeElevenLabs) -> Socket {
    let url = format!(
        "{}/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input?model_id=eleven_flash_v2_5&output_format=pcm_16000",
        fake.url().replace("http://", "ws://")
    );
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Sends `messages` and reads until the close: (audio messages, error messages, close code).
async fn tts_exchange(
    fake: &FakeElevenLabs,
    messages: &[Value],
) -> (usize, Vec<Value>, Option<u16>) {
    let mut socket = tts_socket(fake).await;
    for m in messages {
        socket.send(Message::text(m.to_string())).await.unwrap();
    }
    let (texts, code) = until_close(&mut socket).await;
    let audio = texts.iter().filter(|m| m["audio"].is_string()).count();
    let errors = texts
        .into_iter()
        .filter(|m| m.get("error").is_some())
        .collect();
    (audio, errors, code)
}

#[tokio::test]
async fn elevenlabs_refuses_a_first_message_that_is_not_the_init_and_text_that_is_missing() {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default())
        .await
        .unwrap();
    let init = json!({"text": " ", "voice_settings": {"stability": 0.5, "similarity_boost": 0.8}});
    let sentence = json!({"text": "Your table is booked. "});
    let end = json!({"text": ""});

    let (audio, errors, code) =
        tts_exchange(&fake, &[init.clone(), sentence.clone(), end.clone()]).await;
    assert!(audio > 0 && errors.is_empty(), "{errors:?}");
    assert_eq!(code, Some(1000));

    // Text first, without the init.
    let (audio, errors, code) = tts_exchange(&fake, &[sentence.clone(), end.clone()]).await;
    assert_eq!((audio, code), (0, Some(1008)));
    assert_eq!(errors[0]["error"], "invalid_input_message");
    assert_eq!(errors[0]["code"], 1008);

    // A message without `text` (here a bare flush) is not read as a space.
    let (audio, errors, code) = tts_exchange(
        &fake,
        &[
            init.clone(),
            sentence.clone(),
            json!({"flush": true}),
            end.clone(),
        ],
    )
    .await;
    assert_eq!((audio, code), (0, Some(1008)));
    assert_eq!(errors[0]["error"], "invalid_input_message");
    assert!(errors[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Could not parse input message"));

    // Voice settings changed after the init.
    let changed = json!({"text": "Hi. ", "voice_settings": {"stability": 0.9}});
    let (_, errors, code) = tts_exchange(&fake, &[init, changed, end]).await;
    assert_eq!(code, Some(1008));
    assert_eq!(errors[0]["error"], "invalid_input_message");

    let ended: Vec<_> = fake.requests().into_iter().map(|r| r.ended).collect();
    assert_eq!(
        ended,
        [
            Some("final"),
            Some("invalid"),
            Some("invalid"),
            Some("invalid")
        ]
        .map(|e| e.map(str::to_string))
    );
}
