//! Conformance of the OpenAI client against the local fake: the request as the API documents
//! it, SSE parsing over odd chunk boundaries, retries, error classification, cancellation and
//! tool calls. No test reaches the internet.

use std::time::Duration;
use voice_host::behaviour::{ChatMessage, GenerationSettings, Role};
use voice_host::providers::cloud::openai::{OpenAiLlm, OpenAiSettings};
use voice_host::providers::{LlmEvent, LlmProvider, LlmRequest, ProviderErrorKind};
use voice_tests::fake_openai::{FakeOpenAi, OpenAiScript};
use voice_tests::{eventually, Fault};

const KEY: &str = "sk-proj-TESTKEY0123456789T3BlbkFJabcdefghijklmnop";

fn settings(fake: &FakeOpenAi, key: Option<&str>) -> OpenAiSettings {
    OpenAiSettings {
        base_url: fake.base_url(),
        api_key: key.map(str::to_string),
        // Short retry delays keep the tests quick; the policy's shape is what is under test.
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(200),
        ..Default::default()
    }
}

fn request(text: &str) -> LlmRequest {
    LlmRequest {
        session_id: "s1".into(),
        turn: 1,
        messages: vec![
            ChatMessage::new(Role::System, "You are a voice agent."),
            ChatMessage::new(Role::User, text),
        ],
        settings: GenerationSettings {
            temperature: Some(0.4),
            max_tokens: Some(120),
        },
        model: None,
    }
}

/// Collects events until `Done` or `Error`.
async fn collect(llm: &OpenAiLlm, req: LlmRequest) -> (String, LlmEvent) {
    let mut rx = llm.stream(req);
    let mut text = String::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            LlmEvent::Token(t) => text.push_str(&t),
            LlmEvent::Working => {}
            end => return (text, end),
        }
    }
    panic!("stream ended without Done or Error");
}

#[tokio::test]
async fn streams_the_reply_and_sends_the_documented_request() {
    let fake = FakeOpenAi::start(OpenAiScript::default().with_key(KEY))
        .await
        .unwrap();
    let llm = OpenAiLlm::new(settings(&fake, Some(KEY)), reqwest::Client::new());
    let (text, end) = collect(&llm, request("what is the weather in paris?")).await;
    assert_eq!(
        text,
        "You said: what is the weather in paris. That is interesting. Tell me more."
    );
    let LlmEvent::Done {
        finish_reason,
        usage,
    } = end
    else {
        panic!("{end:?}")
    };
    assert_eq!(finish_reason.as_deref(), Some("stop"));
    assert_eq!(usage.map(|u| u.prompt_tokens), Some(20));

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(r.body["model"], "gpt-4o-mini");
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["stream_options"]["include_usage"], true);
    assert_eq!(r.body["max_tokens"], 120);
    assert!((r.body["temperature"].as_f64().unwrap() - 0.4).abs() < 1e-6);
    assert_eq!(r.body["messages"][0]["role"], "system");
    assert_eq!(
        r.body["messages"][1]["content"],
        "what is the weather in paris?"
    );
    eventually(
        "the server finishes the stream",
        Duration::from_secs(20),
        || fake.requests()[0].outcome.as_deref() == Some("completed"),
    )
    .await;
}

#[tokio::test]
async fn compatible_endpoint_without_key_gets_no_authorization_header() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    let custom = OpenAiSettings {
        model: "llama-3.2-1b".into(),
        ..settings(&fake, None)
    };
    let llm = OpenAiLlm::new(custom, reqwest::Client::new());
    let (text, end) = collect(&llm, request("hello")).await;
    assert!(matches!(end, LlmEvent::Done { .. }), "{end:?}");
    assert!(text.starts_with("You said: hello."));
    let r = &fake.requests()[0];
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.body["model"], "llama-3.2-1b");
}

#[tokio::test]
async fn rate_limit_with_retry_after_then_success_is_retried() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    fake.faults().push(Fault::Status {
        code: 429,
        retry_after: Some(Duration::from_millis(50)),
    });
    let llm = OpenAiLlm::new(settings(&fake, None), reqwest::Client::new());
    let (text, end) = collect(&llm, request("hi")).await;
    assert!(matches!(end, LlmEvent::Done { .. }), "{end:?}");
    assert!(text.contains("You said: hi."));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one refused request, one retry");
    assert_eq!(reqs[0].outcome.as_deref(), Some("status 429"));
}

#[tokio::test]
async fn server_errors_are_retried_then_reported_when_retries_run_out() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    let llm = OpenAiLlm::new(settings(&fake, None), reqwest::Client::new());
    fake.faults().push(Fault::Status {
        code: 500,
        retry_after: None,
    });
    let (_, end) = collect(&llm, request("one")).await;
    assert!(matches!(end, LlmEvent::Done { .. }), "{end:?}");
    assert_eq!(fake.requests().len(), 2);

    for _ in 0..3 {
        fake.faults().push(Fault::Status {
            code: 503,
            retry_after: None,
        });
    }
    let (text, end) = collect(&llm, request("two")).await;
    assert!(text.is_empty());
    let LlmEvent::Error(e) = end else {
        panic!("{end:?}")
    };
    assert_eq!(e.kind, ProviderErrorKind::Unavailable);
    assert_eq!(e.client_code(), "provider_unavailable");
    // One attempt plus the default two retries.
    assert_eq!(fake.requests().len(), 2 + 3);
}

#[tokio::test]
async fn refused_key_is_an_auth_error_without_retry_and_without_the_key() {
    let fake = FakeOpenAi::start(OpenAiScript::default().with_key("sk-the-right-key-000"))
        .await
        .unwrap();
    let llm = OpenAiLlm::new(settings(&fake, Some(KEY)), reqwest::Client::new());
    let (_, end) = collect(&llm, request("hi")).await;
    let LlmEvent::Error(e) = end else {
        panic!("{end:?}")
    };
    assert_eq!(e.kind, ProviderErrorKind::Auth);
    assert_eq!(e.client_code(), "provider_auth");
    assert!(e.message.contains("401"), "{}", e.message);
    assert!(!e.to_string().contains(KEY) && !format!("{e:?}").contains(KEY));
    assert!(!format!("{:?}", settings(&fake, Some(KEY))).contains(KEY));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn bad_request_is_rejected_without_retry() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    fake.faults().push(Fault::Status {
        code: 400,
        retry_after: None,
    });
    let llm = OpenAiLlm::new(settings(&fake, Some(KEY)), reqwest::Client::new());
    let (_, end) = collect(&llm, request("hi")).await;
    let LlmEvent::Error(e) = end else {
        panic!("{end:?}")
    };
    assert_eq!(e.client_code(), "provider_rejected");
    assert!(!e.message.contains(KEY));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn dropping_the_receiver_closes_the_connection() {
    let long = "word ".repeat(400);
    let script = OpenAiScript {
        chunk_interval: Duration::from_millis(5),
        ..OpenAiScript::default().reply("story", long)
    };
    let fake = FakeOpenAi::start(script).await.unwrap();
    let llm = OpenAiLlm::new(settings(&fake, None), reqwest::Client::new());
    let mut rx = llm.stream(request("tell me a story"));
    let first = rx.recv().await;
    assert!(matches!(first, Some(LlmEvent::Token(_))), "{first:?}");
    drop(rx);
    eventually(
        "the server sees the client hang up",
        Duration::from_secs(20),
        || fake.requests()[0].outcome.as_deref() == Some("client-gone"),
    )
    .await;
}

#[tokio::test]
async fn tool_calls_are_answered_with_an_error_and_the_follow_up_is_streamed() {
    let script = OpenAiScript {
        tool_call_when: Some("weather".into()),
        ..OpenAiScript::default()
    };
    let fake = FakeOpenAi::start(script).await.unwrap();
    let llm = OpenAiLlm::new(settings(&fake, None), reqwest::Client::new());
    let (text, end) = collect(&llm, request("what is the weather in paris?")).await;
    assert_eq!(text, "I could not look that up right now, sorry.");
    assert!(
        matches!(end, LlmEvent::Done { ref finish_reason, .. } if finish_reason.as_deref() == Some("stop"))
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let follow_up = reqs[1].body["messages"].as_array().unwrap();
    let call = &follow_up[2];
    assert_eq!(call["role"], "assistant");
    assert_eq!(call["tool_calls"][0]["id"], "call_fake0001");
    assert_eq!(call["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(
        call["tool_calls"][0]["function"]["arguments"],
        r#"{"city":"Paris","unit":"celsius"}"#
    );
    assert_eq!(follow_up[3]["role"], "tool");
    assert_eq!(follow_up[3]["tool_call_id"], "call_fake0001");
    assert!(follow_up[3]["content"].as_str().unwrap().contains("error"));
}

#[tokio::test]
async fn malformed_chunk_is_skipped_and_mid_stream_failures_are_handled() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    let llm = OpenAiLlm::new(settings(&fake, None), reqwest::Client::new());
    fake.faults().push(Fault::Malformed);
    let (text, end) = collect(&llm, request("hello")).await;
    assert!(matches!(end, LlmEvent::Done { .. }), "{end:?}");
    assert!(text.starts_with("You said: hello."));
    let outcomes = |fake: &FakeOpenAi| -> Vec<Option<String>> {
        fake.requests().into_iter().map(|r| r.outcome).collect()
    };
    // Skipped within the one stream, not answered by asking again.
    assert_eq!(fake.requests().len(), 1, "{:?}", outcomes(&fake));

    // Cut before any token: retried transparently.
    fake.faults().push(Fault::DropMidStream { after: 2 });
    let (text, end) = collect(&llm, request("again")).await;
    assert!(matches!(end, LlmEvent::Done { .. }), "{end:?}");
    assert!(text.starts_with("You said: again."), "{text}");
    let reqs = fake.requests();
    assert_eq!(
        reqs.len(),
        3,
        "the cut request and its retry: {:?}",
        outcomes(&fake)
    );
    assert_eq!(reqs[1].body["messages"], reqs[2].body["messages"]);
    eventually("the fake records the cut", Duration::from_secs(20), || {
        fake.requests()[1].outcome.as_deref() == Some("dropped-by-fault")
    })
    .await;

    // An error event after tokens were spoken cannot be retried: reported.
    fake.faults().push(Fault::StreamError { after: 60 });
    let (text, end) = collect(&llm, request("third time")).await;
    assert!(!text.is_empty());
    let LlmEvent::Error(e) = end else {
        panic!("{end:?}")
    };
    assert_eq!(e.kind, ProviderErrorKind::Unavailable);
    assert_eq!(fake.requests().len(), 4, "{:?}", outcomes(&fake));
}

#[tokio::test]
async fn unreachable_endpoint_is_reported_as_unavailable() {
    let fake = FakeOpenAi::start(OpenAiScript::default()).await.unwrap();
    let base = fake.base_url();
    drop(fake);
    let llm = OpenAiLlm::new(
        OpenAiSettings {
            base_url: base,
            retry_base_delay: Duration::from_millis(10),
            ..Default::default()
        },
        reqwest::Client::new(),
    );
    let (_, end) = collect(&llm, request("hi")).await;
    let LlmEvent::Error(e) = end else {
        panic!("{end:?}")
    };
    assert_eq!(e.kind, ProviderErrorKind::Unavailable);
}

#[tokio::test]
async fn a_long_tool_call_round_tells_the_session_the_model_is_at_work() {
    // Ten parallel calls streamed in many small pieces, 5 ms apart: over a second without text.
    let fake = FakeOpenAi::start(OpenAiScript {
        chunk_interval: Duration::from_millis(5),
        ..OpenAiScript::default()
    })
    .await
    .unwrap();
    fake.faults().push(Fault::ToolStorm { calls: 10 });
    let llm = OpenAiLlm::new(settings(&fake, None), reqwest::Client::new());
    let mut rx = llm.stream(request("what is the weather in paris?"));
    let mut working_before_text = 0;
    let mut text = String::new();
    loop {
        match rx.recv().await.expect("the stream ends with Done") {
            LlmEvent::Working if text.is_empty() => working_before_text += 1,
            LlmEvent::Working => {}
            LlmEvent::Token(t) => text.push_str(&t),
            LlmEvent::Done { .. } => break,
            LlmEvent::Error(e) => panic!("{e}"),
        }
    }
    assert!(
        working_before_text >= 1,
        "no sign of work during the tool-call round"
    );
    assert!(!text.is_empty(), "the follow-up was streamed");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    let tools = reqs[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    assert_eq!(tools, 10, "every call of the round was answered");
}
