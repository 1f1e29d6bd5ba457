//! Conformance of the ElevenLabs client against the local fake: stream-input URL, headers,
//! messages, audio and alignment decoding in both output formats, the HTTP transport, retries,
//! cancellation and error classification without leaking the key, for each transport (the
//! multi-context socket of a session: `elevenlabs_session.rs`).

use std::time::Duration;
use voice_host::providers::cloud::elevenlabs::{ElevenLabsSettings, ElevenLabsTts, TtsTransport};
use voice_host::providers::{
    ProviderErrorKind, TtsEvent, TtsInput, TtsParams, TtsProvider, TtsStream,
};
use voice_tests::fake_elevenlabs::synth::MS_PER_CHAR;
use voice_tests::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use voice_tests::{eventually, Fault};

const KEY: &str = "sk_0123456789abcdef0123456789abcdef0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(20);

fn settings(fake: &FakeElevenLabs, transport: TtsTransport) -> ElevenLabsSettings {
    ElevenLabsSettings {
        url: fake.url(),
        api_key: Some(KEY.into()),
        transport,
        ..Default::default()
    }
}

fn open(tts: &ElevenLabsTts, rate: u32) -> TtsStream {
    tts.open(TtsParams {
        session_id: "s1".into(),
        turn: 3,
        voice: None,
        preferred_rate: rate,
    })
}

struct Heard {
    samples: usize,
    rates: Vec<u32>,
    chars: String,
    end: TtsEvent,
}

async fn speak(stream: &mut TtsStream, sentences: &[&str]) -> Heard {
    for s in sentences {
        stream
            .input
            .send(TtsInput::Text(s.to_string()))
            .await
            .unwrap();
    }
    stream.input.send(TtsInput::Flush).await.unwrap();
    let mut heard = Heard {
        samples: 0,
        rates: Vec::new(),
        chars: String::new(),
        end: TtsEvent::Done,
    };
    loop {
        let ev = tokio::time::timeout(LIMIT, stream.events.recv())
            .await
            .expect("synthesis finishes")
            .expect("stream reports Done or Error");
        match ev {
            TtsEvent::Audio {
                samples,
                sample_rate,
                alignment,
            } => {
                heard.samples += samples.len();
                if !heard.rates.contains(&sample_rate) {
                    heard.rates.push(sample_rate);
                }
                if let Some(a) = alignment {
                    assert_eq!(a.chars.len(), a.start_ms.len());
                    assert_eq!(a.chars.len(), a.duration_ms.len());
                    heard.chars.extend(a.chars);
                }
            }
            end => {
                heard.end = end;
                return heard;
            }
        }
    }
}

#[tokio::test]
async fn websocket_reply_follows_the_protocol_and_carries_alignment() {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default().with_key(KEY))
        .await
        .unwrap();
    let tts = ElevenLabsTts::new(
        settings(&fake, TtsTransport::WebSocket),
        reqwest::Client::new(),
    );
    let mut stream = open(&tts, 16_000);
    let heard = speak(&mut stream, &["Hello there.", "How are you today?"]).await;
    assert_eq!(heard.end, TtsEvent::Done);
    assert_eq!(heard.rates, vec![16_000]);
    // The original characters (not the lower-cased normalised ones), trailing spaces included.
    assert_eq!(heard.chars, "Hello there. How are you today? ");
    assert_eq!(
        heard.samples,
        heard.chars.chars().count() * 16 * MS_PER_CHAR as usize
    );

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.path,
        "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input"
    );
    assert_eq!(r.param("model_id"), Some("eleven_flash_v2_5"));
    assert_eq!(r.param("output_format"), Some("pcm_16000"));
    assert_eq!(r.header("xi-api-key"), Some(KEY));
    let init = &r.messages[0];
    assert_eq!(init["text"], " ");
    assert_eq!(init["xi-api-key"], KEY);
    assert_eq!(init["voice_settings"]["stability"], 0.5);
    assert_eq!(init["voice_settings"]["speed"], 1.0);
    assert_eq!(r.messages[1]["text"], "Hello there. ");
    assert_eq!(r.messages[2]["text"], "How are you today? ");
    assert_eq!(r.messages[3]["flush"], true);
    assert_eq!(r.messages[4]["text"], "");
    eventually("the server ends the stream", LIMIT, || {
        fake.requests()[0].ended.as_deref() == Some("final")
    })
    .await;
}

#[tokio::test]
async fn telephone_rate_asks_for_mulaw_and_gets_8khz_samples() {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default())
        .await
        .unwrap();
    for transport in [
        TtsTransport::MultiContext,
        TtsTransport::WebSocket,
        TtsTransport::Http,
    ] {
        let tts = ElevenLabsTts::new(settings(&fake, transport), reqwest::Client::new());
        let mut stream = open(&tts, 8000);
        let heard = speak(&mut stream, &["Your table is booked."]).await;
        assert_eq!(heard.end, TtsEvent::Done, "{transport:?}");
        assert_eq!(heard.rates, vec![8000]);
        let chars = if transport == TtsTransport::Http {
            21
        } else {
            22
        };
        assert_eq!(
            heard.samples,
            chars * 8 * MS_PER_CHAR as usize,
            "{transport:?}"
        );
    }
    for r in fake.requests() {
        assert_eq!(r.param("output_format"), Some("ulaw_8000"));
    }
}

#[tokio::test]
async fn http_transport_posts_each_sentence() {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default().with_key(KEY))
        .await
        .unwrap();
    let tts = ElevenLabsTts::new(settings(&fake, TtsTransport::Http), reqwest::Client::new());
    let mut stream = open(&tts, 16_000);
    let heard = speak(&mut stream, &["One.", "Two three."]).await;
    assert_eq!(heard.end, TtsEvent::Done);
    assert_eq!(heard.samples, (4 + 10) * 16 * MS_PER_CHAR as usize);
    assert!(heard.chars.is_empty(), "the HTTP stream has no alignment");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].path,
        "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream"
    );
    assert_eq!(reqs[0].header("xi-api-key"), Some(KEY));
    assert_eq!(reqs[0].param("output_format"), Some("pcm_16000"));
    assert_eq!(reqs[0].messages[0]["text"], "One.");
    assert_eq!(reqs[0].messages[0]["model_id"], "eleven_flash_v2_5");
    assert_eq!(reqs[1].messages[0]["text"], "Two three.");
}

#[tokio::test]
async fn failures_before_audio_are_retried() {
    for transport in [TtsTransport::WebSocket, TtsTransport::MultiContext] {
        failures_before_audio_are_retried_by(transport).await;
    }
}

async fn failures_before_audio_are_retried_by(transport: TtsTransport) {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default())
        .await
        .unwrap();
    fake.faults().push(Fault::Status {
        code: 503,
        retry_after: None,
    });
    let tts = ElevenLabsTts::new(settings(&fake, transport), reqwest::Client::new());
    let heard = speak(&mut open(&tts, 16_000), &["Retry me."]).await;
    assert_eq!(heard.end, TtsEvent::Done);
    fake.faults().push(Fault::DropMidStream { after: 0 });
    let heard = speak(&mut open(&tts, 16_000), &["Dropped then fine."]).await;
    assert_eq!(heard.end, TtsEvent::Done);
    assert_eq!(heard.chars, "Dropped then fine. ");
    eventually("every socket ends", LIMIT, || {
        fake.requests().iter().all(|r| r.ended.is_some())
    })
    .await;
    let ended: Vec<_> = fake
        .requests()
        .into_iter()
        .map(|r| r.ended.unwrap_or_default())
        .collect();
    assert_eq!(
        ended,
        vec!["refused 503", "final", "dropped-by-fault", "final"],
        "{transport:?}"
    );
}

#[tokio::test]
async fn refused_key_is_an_auth_error_without_the_key() {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default().with_key("sk_another"))
        .await
        .unwrap();
    for transport in [
        TtsTransport::MultiContext,
        TtsTransport::WebSocket,
        TtsTransport::Http,
    ] {
        let tts = ElevenLabsTts::new(settings(&fake, transport), reqwest::Client::new());
        let heard = speak(&mut open(&tts, 16_000), &["Hello."]).await;
        let TtsEvent::Error(e) = heard.end else {
            panic!("{transport:?}: {:?}", heard.end)
        };
        assert_eq!(e.kind, ProviderErrorKind::Auth, "{transport:?}: {e}");
        assert_eq!(e.client_code(), "provider_auth");
        assert!(!format!("{e} {e:?}").contains(KEY));
    }
    assert_eq!(fake.requests().len(), 3, "auth failures are not retried");
}

#[tokio::test]
async fn dropping_the_stream_closes_the_socket_and_stops_audio() {
    for transport in [TtsTransport::WebSocket, TtsTransport::MultiContext] {
        dropping_the_stream_stops_audio_of(transport).await;
    }
}

async fn dropping_the_stream_stops_audio_of(transport: TtsTransport) {
    let script = ElevenLabsScript {
        chunk_interval: Duration::from_millis(20),
        ..ElevenLabsScript::default()
    };
    let fake = FakeElevenLabs::start(script).await.unwrap();
    let tts = ElevenLabsTts::new(settings(&fake, transport), reqwest::Client::new());
    let mut stream = open(&tts, 16_000);
    let long = "This is a long sentence that takes a good while to speak aloud. ".repeat(4);
    stream
        .input
        .send(TtsInput::Text(long.clone()))
        .await
        .unwrap();
    let first = stream.events.recv().await;
    assert!(matches!(first, Some(TtsEvent::Audio { .. })), "{first:?}");
    drop(stream);
    eventually("the server sees the socket close", LIMIT, || {
        fake.requests()[0].ended.is_some()
    })
    .await;
    let r = &fake.requests()[0];
    if transport == TtsTransport::MultiContext {
        // The context is closed, then the socket with `close_socket`, which the server ends.
        let context = &r.contexts[0];
        assert!(context.closed_unflushed, "{context:?}");
        assert!(
            matches!(r.ended.as_deref(), Some("final" | "client-close")),
            "{:?}",
            r.ended
        );
    } else {
        assert!(
            matches!(r.ended.as_deref(), Some("client-close" | "client-gone")),
            "{:?}",
            r.ended
        );
    }
    let total_chunks = long.chars().count().div_ceil(12);
    assert!(
        r.audio_messages_sent < total_chunks,
        "synthesis stopped early"
    );
}

#[tokio::test]
async fn invalid_voice_id_is_rejected_locally() {
    let fake = FakeElevenLabs::start(ElevenLabsScript::default())
        .await
        .unwrap();
    for transport in [TtsTransport::WebSocket, TtsTransport::MultiContext] {
        let tts = ElevenLabsTts::new(settings(&fake, transport), reqwest::Client::new());
        let mut stream = tts.open(TtsParams {
            voice: Some("../../admin".into()),
            preferred_rate: 16_000,
            ..Default::default()
        });
        let ev = stream.events.recv().await;
        assert!(
            matches!(ev, Some(TtsEvent::Error(ref e)) if e.kind == ProviderErrorKind::Rejected),
            "{transport:?}: {ev:?}"
        );
    }
    assert!(fake.requests().is_empty());
}
