//! Phone calls over Twilio Media Streams (`/twilio`), driven by a scripted client that speaks
//! Twilio's protocol the way Twilio does: `connected`, `start`, 20 ms mu-law `media` frames,
//! mark echoes on a simulated playout clock (8 bytes a ms), `clear` dropping buffered audio and
//! echoing pending marks at once, and `stop`.

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voice_host::audio::{linear_to_mulaw, mulaw_to_linear};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::{speech, Fault};

const STREAM_SID: &str = "MZ00000000000000000000000000000001";
const LONG_REPLY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him.";
const LIMIT: Duration = Duration::from_secs(30);
/// Mu-law bytes per ms at 8 kHz.
const BYTES_PER_MS: u64 = 8;

/// 16 kHz test speech as Twilio carries it: 8 kHz mu-law. The synthetic voice has no energy
/// above 4 kHz, so every second sample is kept.
fn phone_audio(samples_16k: &[i16]) -> Vec<u8> {
    samples_16k
        .iter()
        .step_by(2)
        .map(|&s| linear_to_mulaw(s))
        .collect()
}

/// A scripted Twilio side of one call.
struct FakeTwilio {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    seq: u64,
    chunk: u64,
    /// When the audio Twilio has buffered for the caller finishes playing.
    playout_end: Instant,
    /// Marks waiting for their audio to play: (name, when).
    marks: VecDeque<(String, Instant)>,
    /// Agent audio received (mu-law bytes).
    agent_audio: Vec<u8>,
    marks_received: usize,
    clears: usize,
    /// Agent media frames received after the last `clear`.
    media_after_clear: usize,
    closed: bool,
}

impl FakeTwilio {
    async fn connect(addr: SocketAddr, custom: Value) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/twilio"))
            .await
            .expect("twilio stream accepted");
        let now = Instant::now();
        let mut t = Self {
            ws,
            seq: 0,
            chunk: 0,
            playout_end: now,
            marks: VecDeque::new(),
            agent_audio: Vec::new(),
            marks_received: 0,
            clears: 0,
            media_after_clear: 0,
            closed: false,
        };
        t.send(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            .await;
        t.seq += 1;
        t.send(json!({
            "event": "start", "sequenceNumber": t.seq.to_string(), "streamSid": STREAM_SID,
            "start": {
                "streamSid": STREAM_SID, "accountSid": "AC00000000000000000000000000000001",
                "callSid": "CA00000000000000000000000000000001", "tracks": ["inbound"],
                "customParameters": custom,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            }
        }))
        .await;
        t
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send to host");
    }

    async fn send_media(&mut self, payload: &[u8]) {
        self.seq += 1;
        self.chunk += 1;
        let ts = self.chunk * 20;
        let b64 = base64::engine::general_purpose::STANDARD.encode(payload);
        self.send(json!({
            "event": "media", "sequenceNumber": self.seq.to_string(), "streamSid": STREAM_SID,
            "media": {"track": "inbound", "chunk": self.chunk.to_string(),
                      "timestamp": ts.to_string(), "payload": b64}
        }))
        .await;
    }

    async fn echo_mark(&mut self, name: String) {
        self.seq += 1;
        self.send(
            json!({"event": "mark", "sequenceNumber": self.seq.to_string(),
                         "streamSid": STREAM_SID, "mark": {"name": name}}),
        )
        .await;
    }

    /// Echo the marks whose audio has played by now.
    async fn play_out(&mut self) {
        let now = Instant::now();
        while self.marks.front().is_some_and(|(_, at)| *at <= now) {
            let (name, _) = self.marks.pop_front().expect("front exists");
            self.echo_mark(name).await;
        }
    }

    fn on_event(&mut self, v: Value) -> Vec<String> {
        assert_eq!(
            v["streamSid"], STREAM_SID,
            "every event names the stream: {v}"
        );
        match v["event"].as_str() {
            Some("media") => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(v["media"]["payload"].as_str().expect("payload"))
                    .expect("payload is base64");
                let now = Instant::now();
                self.playout_end = self.playout_end.max(now)
                    + Duration::from_millis(bytes.len() as u64 / BYTES_PER_MS);
                self.agent_audio.extend(bytes);
                if self.clears > 0 {
                    self.media_after_clear += 1;
                }
                Vec::new()
            }
            Some("mark") => {
                self.marks_received += 1;
                let name = v["mark"]["name"].as_str().expect("mark name").to_string();
                self.marks.push_back((name, self.playout_end));
                Vec::new()
            }
            Some("clear") => {
                self.clears += 1;
                self.media_after_clear = 0;
                self.playout_end = Instant::now();
                // Twilio echoes every pending mark at once on clear.
                self.marks.drain(..).map(|(n, _)| n).collect()
            }
            other => panic!("unexpected event from the host: {other:?} in {v}"),
        }
    }

    /// Stream `audio` (8 kHz mu-law) in real time, 20 ms a frame, while handling the host's
    /// events; stops early once `until` holds.
    async fn stream(&mut self, audio: &[u8], until: impl Fn(&Self) -> bool) {
        let start = Instant::now();
        for (i, frame) in audio.chunks(160).enumerate() {
            if self.closed || until(self) {
                return;
            }
            self.send_media(frame).await;
            let due = start + Duration::from_millis(20 * (i as u64 + 1));
            self.listen_until(due).await;
        }
    }

    /// Handle the host's events until `deadline`, keeping the caller's line open with silence
    /// as Twilio does.
    async fn listen_until(&mut self, deadline: Instant) {
        loop {
            self.play_out().await;
            let tick = (Instant::now() + Duration::from_millis(10)).min(deadline);
            match tokio::time::timeout_at(tick, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(&t).expect("host sends JSON");
                    for name in self.on_event(v) {
                        self.echo_mark(name).await;
                    }
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => {
                    self.closed = true;
                    return;
                }
                Ok(Some(Ok(other))) => panic!("the host sends only text frames: {other:?}"),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return;
            }
        }
    }

    /// Stream silence until `cond` holds; panics after `limit`.
    async fn silence_until(&mut self, what: &str, limit: Duration, cond: impl Fn(&Self) -> bool) {
        let give_up = Instant::now() + limit;
        let silence = phone_audio(&speech::silence(100));
        while !cond(self) {
            assert!(Instant::now() < give_up, "timed out waiting for {what}");
            assert!(
                !self.closed,
                "the host closed the call while waiting for {what}"
            );
            self.stream(&silence, &cond).await;
        }
    }

    fn agent_audio_ms(&self) -> u64 {
        self.agent_audio.len() as u64 / BYTES_PER_MS
    }

    async fn stop(&mut self) {
        self.seq += 1;
        self.send(
            json!({"event": "stop", "sequenceNumber": self.seq.to_string(),
            "streamSid": STREAM_SID,
            "stop": {"accountSid": "AC00000000000000000000000000000001",
                     "callSid": "CA00000000000000000000000000000001"}}),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.closed && Instant::now() < deadline {
            self.listen_until(Instant::now() + Duration::from_millis(100))
                .await;
        }
    }
}

fn rms(samples: impl Iterator<Item = i16>) -> f64 {
    let (sum, n) = samples.fold((0f64, 0usize), |(s, n), v| {
        (s + f64::from(v).powi(2), n + 1)
    });
    (sum / n.max(1) as f64).sqrt()
}

#[tokio::test]
async fn a_call_hears_the_reply_in_mulaw_and_barge_in_clears_it() {
    let stack = CloudStack::start(
        DeepgramScript::new(["tell me a story", "wait stop that please"]),
        OpenAiScript::default().reply("story", LONG_REPLY),
        ElevenLabsScript::default(),
        &[
            ("TTS_MIN_DURATION_MS", "0"),
            ("TTS_BARGE_THRESHOLD_WORDS", "2"),
        ],
    )
    .await;
    let mut call = FakeTwilio::connect(stack.host.addr, json!({"caller": "+15550100"})).await;

    // The caller asks; the agent answers in mu-law at 8 kHz.
    call.stream(&phone_audio(&speech::utterance(1200, 600)), |_| false)
        .await;
    call.silence_until("1.5 s of the agent's voice", LIMIT, |c| {
        c.agent_audio_ms() >= 1500
    })
    .await;
    let voice: Vec<i16> = call
        .agent_audio
        .iter()
        .map(|&b| mulaw_to_linear(b))
        .collect();
    assert!(
        rms(voice.iter().copied()) > 500.0,
        "the reply is audible speech-level audio, not silence"
    );
    assert!(
        call.marks_received >= 10,
        "a mark every ~100 ms: {}",
        call.marks_received
    );
    assert_eq!(call.clears, 0);
    // The model refuses the next turn (not retryable): the barge-in turn gets no reply, so any
    // audio after the `clear` could only be the interrupted reply going on.
    stack.openai.faults().push(Fault::Status {
        code: 400,
        retry_after: None,
    });

    // The caller talks over the agent: Twilio is told to drop what it buffered.
    call.stream(&phone_audio(&speech::utterance(1500, 0)), |c| c.clears > 0)
        .await;
    call.silence_until("clear after the barge-in", LIMIT, |c| c.clears > 0)
        .await;
    let heard_ms_at_clear = call.agent_audio_ms();
    let full_reply_ms = LONG_REPLY.chars().count() as u64 * 60;
    assert!(
        heard_ms_at_clear < full_reply_ms / 2,
        "the reply was cut short: {heard_ms_at_clear} ms of {full_reply_ms} ms"
    );

    // The agent answers the barge-in turn; its memory holds only what the caller heard.
    call.silence_until("the request answering the barge-in", LIMIT, |_| {
        stack.openai.requests().len() >= 2
    })
    .await;
    let requests = stack.openai.requests();
    assert_eq!(requests.len(), 2, "one request per turn");
    let messages = requests[1].body["messages"].as_array().expect("messages");
    let remembered = messages
        .iter()
        .filter(|m| m["role"] == "assistant")
        .filter_map(|m| m["content"].as_str())
        .next_back()
        .expect("the interrupted reply is in memory");
    assert!(
        remembered.len() < LONG_REPLY.len() / 2,
        "memory keeps only what was heard: {remembered:?}"
    );
    assert!(
        LONG_REPLY.starts_with(remembered.trim_end_matches(['.', '…', ' '])),
        "the remembered text is the start of the reply: {remembered:?}"
    );

    call.silence_until("the refused request's end", LIMIT, |_| {
        stack.openai.requests()[1].outcome.is_some()
    })
    .await;

    call.stop().await;
    assert!(call.closed, "the host ends the stream after stop");
    // Frames sent before the `clear` arrive before it (one ordered stream), so nothing of the
    // interrupted reply may follow it, up to the end of the call.
    assert_eq!(
        call.media_after_clear, 0,
        "media after the last clear: the interrupted reply kept streaming"
    );
}

#[tokio::test]
async fn the_voice_webhook_returns_twiml_connecting_to_the_stream() {
    let stack = CloudStack::with_defaults().await;
    let resp = reqwest::Client::new()
        .post(format!(
            "http://{}/twilio/voice?agent=support",
            stack.host.addr
        ))
        .header("host", "voice.example.com")
        .form(&[
            ("CallSid", "CA00000000000000000000000000000001"),
            ("From", "+15550100"),
        ])
        .send()
        .await
        .expect("webhook answers");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/xml"));
    let xml = resp.text().await.unwrap();
    assert!(
        xml.contains("<Connect>\n    <Stream url=\"wss://voice.example.com/twilio\">"),
        "{xml}"
    );
    assert!(
        xml.contains("<Parameter name=\"agent\" value=\"support\"/>"),
        "{xml}"
    );
}

#[tokio::test]
async fn calls_share_the_session_capacity_and_bad_starts_are_refused() {
    let stack = CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default(),
        ElevenLabsScript::default(),
        &[("MAX_SESSIONS", "1")],
    )
    .await;
    let mut first = FakeTwilio::connect(stack.host.addr, json!({})).await;
    first
        .stream(&phone_audio(&speech::silence(200)), |_| false)
        .await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/twilio", stack.host.addr))
        .await
        .expect_err("a second call is refused at capacity");
    match refused {
        tokio_tungstenite::tungstenite::Error::Http(resp) => {
            assert_eq!(resp.status(), 503);
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    first.stop().await;

    // A call naming an agent profile that does not exist is ended, not served by another.
    let mut admitted = None;
    for _ in 0..100 {
        if let Ok((ws, _)) =
            tokio_tungstenite::connect_async(format!("ws://{}/twilio", stack.host.addr)).await
        {
            admitted = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ws = admitted.expect("the slot is released when the call ends");
    let start = json!({"event": "start", "sequenceNumber": "1", "streamSid": STREAM_SID,
        "start": {"streamSid": STREAM_SID, "customParameters": {"agent": "nobody"},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}});
    ws.send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(LIMIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the host ends the call");
    assert_eq!(closed, Some(1008));
}

#[tokio::test]
async fn call_audio_far_faster_than_real_time_is_dropped_not_transcribed() {
    let stack = CloudStack::with_defaults().await;
    let mut call = FakeTwilio::connect(stack.host.addr, json!({})).await;
    // 60 s of the caller's audio sent as fast as the socket takes it: the host passes on the
    // burst allowance (5 s) and twice real time, and drops the rest.
    let sent_s = 60;
    let audio = phone_audio(&speech::silence(sent_s * 1000));
    for frame in audio.chunks(160) {
        call.send_media(frame).await;
    }
    call.stop().await;
    voice_tests::eventually("the recogniser's stream to end", LIMIT, || {
        stack
            .deepgram
            .connections()
            .first()
            .is_some_and(|c| c.ended.is_some())
    })
    .await;
    let stt = &stack.deepgram.connections()[0];
    let rate: usize = stt.param("sample_rate").unwrap().parse().unwrap();
    assert_eq!(stt.param("encoding"), Some("linear16"));
    let transcribed_s = stt.audio_bytes as f64 / (2 * rate) as f64;
    assert!(
        transcribed_s >= 4.0 && transcribed_s < sent_s as f64 / 2.0,
        "{transcribed_s:.1} s of the {sent_s} s sent reached speech-to-text"
    );
}
