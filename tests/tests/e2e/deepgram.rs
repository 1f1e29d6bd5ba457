//! Conformance of the Deepgram client against the local fake: handshake URL, headers and query,
//! audio and control frames, result mapping, keep-alive, reconnect with resend, and error
//! classification without leaking the key.

use std::time::Duration;
use voice_host::providers::cloud::deepgram::{DeepgramSettings, DeepgramStt};
use voice_host::providers::{
    ProviderErrorKind, SttEvent, SttInput, SttParams, SttProvider, SttStream,
};
use voice_tests::fake_deepgram::{DeepgramScript, FakeDeepgram};
use voice_tests::speech::{frames, silence, utterance};
use voice_tests::{eventually, Fault};

const KEY: &str = "0123456789abcdef0123456789abcdef01234567";
const LIMIT: Duration = Duration::from_secs(20);

fn settings(fake: &FakeDeepgram, key: &str) -> DeepgramSettings {
    DeepgramSettings {
        url: fake.url(),
        api_key: Some(key.into()),
        reconnect_base_delay_ms: 20,
        reconnect_max_delay_ms: 100,
        ..Default::default()
    }
}

fn open(stt: &DeepgramStt) -> SttStream {
    stt.open(SttParams {
        session_id: "s1".into(),
        language: None,
    })
}

async fn send_audio(stream: &SttStream, audio: &[i16]) {
    for f in frames(audio) {
        stream
            .input
            .send(SttInput::Audio(f))
            .await
            .expect("stream accepts audio");
    }
}

/// Reads events until one matches `stop`, returning all of them.
async fn events_until(stream: &mut SttStream, stop: impl Fn(&SttEvent) -> bool) -> Vec<SttEvent> {
    let mut seen = Vec::new();
    loop {
        let ev = tokio::time::timeout(LIMIT, stream.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no matching event; saw {seen:?}"))
            .unwrap_or_else(|| panic!("stream ended; saw {seen:?}"));
        let done = stop(&ev);
        seen.push(ev);
        if done {
            return seen;
        }
    }
}

fn is_speech_final(ev: &SttEvent) -> bool {
    matches!(
        ev,
        SttEvent::Final {
            speech_final: true,
            ..
        }
    )
}

#[tokio::test]
async fn handshake_and_transcript_follow_the_protocol() {
    let fake =
        FakeDeepgram::start(DeepgramScript::new(["What is the weather in Paris?"]).with_key(KEY))
            .await
            .unwrap();
    let stt = DeepgramStt::new(settings(&fake, KEY));
    let mut stream = open(&stt);
    send_audio(&stream, &silence(200)).await;
    send_audio(&stream, &utterance(1500, 600)).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert_eq!(events[0], SttEvent::SpeechStarted);
    assert!(
        events.iter().any(|e| matches!(e, SttEvent::Interim { .. })),
        "{events:?}"
    );
    let Some(SttEvent::Final { text, words, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(text, "What is the weather in Paris?");
    assert_eq!(words.len(), 6);
    assert_eq!(words[5].word, "Paris?");
    // The speech starts 200 ms into the stream and lasts 1.5 s.
    assert!(
        words[0].start_ms >= 180 && words[0].start_ms <= 240,
        "{:?}",
        words[0]
    );
    assert!(
        words[5].end_ms >= 1650 && words[5].end_ms <= 1760,
        "{:?}",
        words[5]
    );
    send_audio(&stream, &silence(1200)).await;
    events_until(&mut stream, |e| *e == SttEvent::UtteranceEnd).await;

    stream.input.send(SttInput::Close).await.unwrap();
    while stream.events.recv().await.is_some() {}
    let conns = fake.connections();
    assert_eq!(conns.len(), 1);
    let c = &conns[0];
    assert_eq!(c.path, "/v1/listen");
    assert_eq!(
        c.header("authorization"),
        Some(format!("Token {KEY}").as_str())
    );
    for (name, value) in [
        ("model", "nova-3"),
        ("encoding", "linear16"),
        ("sample_rate", "16000"),
        ("channels", "1"),
        ("interim_results", "true"),
        ("endpointing", "300"),
        ("utterance_end_ms", "1000"),
        ("vad_events", "true"),
        ("smart_format", "true"),
        ("language", "en"),
    ] {
        assert_eq!(c.param(name), Some(value), "query parameter {name}");
    }
    let sent_samples = 16 * (200 + 1500 + 600 + 1200);
    assert_eq!(c.audio_bytes, sent_samples * 2);
    assert_eq!(c.control, vec!["CloseStream".to_string()]);
    eventually("the server ends the stream", LIMIT, || {
        fake.connections()[0].ended.as_deref() == Some("close-stream")
    })
    .await;
    assert_eq!(c.sent.last().unwrap()["type"], "Metadata");
}

#[tokio::test]
async fn finalize_yields_a_final_at_once() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["book a table"]))
        .await
        .unwrap();
    let stt = DeepgramStt::new(settings(&fake, KEY));
    let mut stream = open(&stt);
    send_audio(&stream, &utterance(800, 0)).await;
    stream.input.send(SttInput::Finalize).await.unwrap();
    let events = events_until(&mut stream, |e| matches!(e, SttEvent::Final { .. })).await;
    assert_eq!(
        events.last().map(|e| match e {
            SttEvent::Final {
                text, speech_final, ..
            } => (text.clone(), *speech_final),
            _ => unreachable!(),
        }),
        Some(("book a table".to_string(), false))
    );
    assert_eq!(fake.connections()[0].control, vec!["Finalize".to_string()]);
}

#[tokio::test]
async fn keep_alive_holds_an_idle_stream_open() {
    let fake = FakeDeepgram::start(
        DeepgramScript::new(["still here"]).with_idle_timeout(Duration::from_millis(600)),
    )
    .await
    .unwrap();
    let stt = DeepgramStt::new(DeepgramSettings {
        keepalive_interval_ms: 150,
        ..settings(&fake, KEY)
    });
    let mut stream = open(&stt);
    eventually("several KeepAlive messages", LIMIT, || {
        fake.connections()
            .first()
            .is_some_and(|c| c.control.iter().filter(|k| *k == "KeepAlive").count() >= 5)
    })
    .await;
    // Still the first connection, never closed for idleness.
    assert_eq!(fake.connections().len(), 1);
    assert_eq!(fake.connections()[0].ended, None);
    send_audio(&stream, &utterance(600, 500)).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert!(matches!(events.last(), Some(SttEvent::Final { text, .. }) if text == "still here"));
}

#[tokio::test]
async fn dropped_stream_resends_only_audio_after_the_last_final() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["first words", "second words"]))
        .await
        .unwrap();
    // The connection drops 400 ms into the second utterance (1100 ms of audio come first).
    fake.faults().push(Fault::DropMidStream {
        after: 16 * 1500 * 2,
    });
    let stt = DeepgramStt::new(settings(&fake, KEY));
    let mut stream = open(&stt);
    send_audio(&stream, &utterance(600, 500)).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert!(matches!(events.last(), Some(SttEvent::Final { text, .. }) if text == "first words"));
    let second = utterance(900, 600);
    send_audio(&stream, &second).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert!(
        !events.iter().any(|e| matches!(e, SttEvent::Error(_))),
        "{events:?}"
    );
    let Some(SttEvent::Final { text, words, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(text, "second words");
    // Word times stay on the session's clock: the second utterance starts at 1.1 s.
    assert!(
        words[0].start_ms >= 1080 && words[0].start_ms <= 1140,
        "{words:?}"
    );
    let conns = fake.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[0].ended.as_deref(), Some("dropped-by-fault"));
    // The first final covered the stream up to 0.9 s (speech end plus 300 ms endpointing);
    // everything after it, and nothing before, was sent again.
    assert_eq!(conns[1].audio_bytes, 16 * (2600 - 900) * 2);
}

#[tokio::test]
async fn mid_utterance_drop_resends_audio_since_the_last_final() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["only this"]))
        .await
        .unwrap();
    let drop_at = 16 * 400 * 2;
    fake.faults().push(Fault::DropMidStream { after: drop_at });
    let stt = DeepgramStt::new(settings(&fake, KEY));
    let mut stream = open(&stt);
    let audio = utterance(1000, 600);
    send_audio(&stream, &audio).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert!(
        !events.iter().any(|e| matches!(e, SttEvent::Error(_))),
        "{events:?}"
    );
    let Some(SttEvent::Final { text, words, .. }) = events.last() else {
        unreachable!()
    };
    assert_eq!(text, "only this");
    // Word times stay on the session's clock across the reconnect.
    assert!(words[0].start_ms <= 20, "{words:?}");
    let conns = fake.connections();
    assert_eq!(conns.len(), 2);
    assert_eq!(conns[0].ended.as_deref(), Some("dropped-by-fault"));
    assert!(conns[0].audio_bytes >= drop_at);
    // No final had covered any audio, so the whole utterance arrived on the new connection.
    assert_eq!(conns[1].audio_bytes, audio.len() * 2);
}

#[tokio::test]
async fn malformed_server_message_is_skipped() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["fine anyway"]))
        .await
        .unwrap();
    fake.faults().push(Fault::Malformed);
    let stt = DeepgramStt::new(settings(&fake, KEY));
    let mut stream = open(&stt);
    send_audio(&stream, &utterance(700, 500)).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert!(!events.iter().any(|e| matches!(e, SttEvent::Error(_))));
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn refused_key_is_reported_once_without_the_key() {
    let fake = FakeDeepgram::start(
        DeepgramScript::new(["x"]).with_key("ffffffffffffffffffffffffffffffffffffffff"),
    )
    .await
    .unwrap();
    let stt = DeepgramStt::new(settings(&fake, KEY));
    let mut stream = open(&stt);
    let events = events_until(&mut stream, |e| matches!(e, SttEvent::Error(_))).await;
    let Some(SttEvent::Error(e)) = events.last() else {
        unreachable!()
    };
    assert_eq!(e.kind, ProviderErrorKind::Auth);
    assert_eq!(e.client_code(), "provider_auth");
    assert!(e.message.contains("401"), "{}", e.message);
    assert!(!format!("{e} {e:?}").contains(KEY));
    assert!(
        stream.events.recv().await.is_none(),
        "no retry after an auth failure"
    );
    assert_eq!(fake.connections().len(), 1);
}

#[tokio::test]
async fn unrecoverable_outage_is_reported_and_the_stream_recovers_later() {
    let fake = FakeDeepgram::start(DeepgramScript::new(["back again"]))
        .await
        .unwrap();
    for _ in 0..3 {
        fake.faults().push(Fault::Status {
            code: 503,
            retry_after: None,
        });
    }
    let stt = DeepgramStt::new(DeepgramSettings {
        reconnect_attempts: 2,
        ..settings(&fake, KEY)
    });
    let mut stream = open(&stt);
    let events = events_until(&mut stream, |e| matches!(e, SttEvent::Error(_))).await;
    let Some(SttEvent::Error(e)) = events.last() else {
        unreachable!()
    };
    assert_eq!(e.kind, ProviderErrorKind::Unavailable);
    // The session goes on: once the service is back, speech is transcribed again.
    send_audio(&stream, &utterance(600, 500)).await;
    let events = events_until(&mut stream, is_speech_final).await;
    assert!(matches!(events.last(), Some(SttEvent::Final { text, .. }) if text == "back again"));
}
