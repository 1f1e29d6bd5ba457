//! End to end with no keys and no fakes: the server runs the offline providers (Whisper,
//! Gemma, espeak-ng); a client speaks an espeak-ng recording into `/agent` and hears the reply,
//! then interrupts a reply by speaking over it.
//!
//! Needs the offline models (`voice-host models install`) and espeak-ng
//! (`scripts/install-deps.sh`). Where they are missing the test is skipped with a notice,
//! except when `CI=true`, where it fails.
#![cfg(feature = "local")]

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use voice_host::audio::{read_wav_mono_i16, Resampler};
use voice_host::config::{source::RawSettings, Config};
use voice_host::providers::local::LocalModels;
use voice_host::server::{self, ServerHandle};

/// Output rate the client asks for (not espeak-ng's 22,050 Hz, so resampling is exercised).
const OUTPUT_RATE: u32 = 24_000;
/// Guard against a hung pipeline; far above any expected turn time, not a performance bound.
const HANG_GUARD: Duration = Duration::from_secs(180);

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn models_dir() -> PathBuf {
    std::env::var_os("MODELS_DIR").map_or_else(LocalModels::default_dir, PathBuf::from)
}

/// Whether the prerequisites are present; panics in CI where they must be.
fn prerequisites() -> bool {
    let mut missing = LocalModels::new(models_dir()).check();
    if std::process::Command::new("espeak-ng")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push("espeak-ng is not installed: run scripts/install-deps.sh".into());
    }
    if missing.is_empty() {
        return true;
    }
    let reason = missing.join("; ");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("offline end-to-end prerequisites missing in CI: {reason}");
    }
    eprintln!("SKIPPED offline end-to-end test: {reason}");
    false
}

/// `text` spoken by the espeak-ng command line, as 16 kHz mono PCM16.
fn speak(text: &str) -> Vec<i16> {
    let path = std::env::temp_dir().join(format!(
        "vh-offline-{}-{}.wav",
        std::process::id(),
        text.len()
    ));
    let status = std::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("run espeak-ng");
    assert!(status.success());
    let (samples, rate) = read_wav_mono_i16(&path).expect("read wav");
    let _ = std::fs::remove_file(&path);
    let mut resampler = Resampler::new(rate, 16_000).expect("resampler");
    let mut out = Vec::new();
    resampler.process(&samples, &mut out);
    resampler.flush(&mut out);
    out
}

async fn start_server() -> ServerHandle {
    let mut raw = RawSettings::default();
    for (k, v) in [
        ("STT_PROVIDER", "local"),
        ("LLM_PROVIDER", "local"),
        ("TTS_PROVIDER", "local"),
        ("TTS_MIN_DURATION_MS", "0"),
        // Interrupt as soon as the user's speech starts: the local recogniser's interim words
        // come about once a second, and a short offline reply can be over by then.
        ("TTS_BARGE_THRESHOLD_WORDS", "0"),
        // The offline providers are under test here; the built-in behaviours stand in for plug-ins.
        ("INTENT_PLUGIN", "none"),
        ("PROMPT_PLUGIN", "none"),
        ("BARGE_IN_PLUGIN", "none"),
    ] {
        raw.values.insert(k.into(), v.into());
    }
    raw.values
        .insert("MODELS_DIR".into(), models_dir().display().to_string());
    let cfg = Config::from_raw(&raw).expect("config");
    let prepared = server::prepare(cfg).expect("prepare");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    ServerHandle::spawn(prepared, listener).expect("serve")
}

/// What the client saw of one turn.
#[derive(Default, Debug)]
struct Heard {
    final_transcript: Option<String>,
    agent_deltas: usize,
    agent_text: String,
    audio_samples: usize,
    interrupted: bool,
    done: bool,
}

impl Heard {
    fn absorb(&mut self, msg: Message) {
        match msg {
            Message::Binary(bytes) => self.audio_samples += bytes.len() / 2,
            Message::Text(text) => {
                // Shown on failure (libtest captures it otherwise): the conversation so far.
                println!("server: {text}");
                let v: Value = serde_json::from_str(&text).expect("json");
                match v["type"].as_str().unwrap_or_default() {
                    "transcript" if v["final"] == true => {
                        let t = v["text"].as_str().unwrap_or_default();
                        if !t.trim().is_empty() {
                            self.final_transcript = Some(t.to_lowercase());
                        }
                    }
                    "agent_text" => {
                        self.agent_deltas += 1;
                        self.agent_text
                            .push_str(v["delta"].as_str().unwrap_or_default());
                    }
                    "agent_done" => {
                        self.done = true;
                        self.interrupted |= v["interrupted"] == true;
                    }
                    "interrupt" => self.interrupted = true,
                    "error" => panic!("server error: {text}"),
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The client's microphone: sends a 20 ms frame every 20 ms (queued speech, else silence), as
/// a real client does, so the VAD and the session clock see a live stream.
struct Mic {
    queue: tokio::sync::mpsc::UnboundedSender<Vec<i16>>,
    task: tokio::task::JoinHandle<()>,
}

impl Mic {
    fn start(mut sink: futures_util::stream::SplitSink<Ws, Message>) -> Self {
        let (queue, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<i16>>();
        let task = tokio::spawn(async move {
            let mut pending = std::collections::VecDeque::<i16>::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                while let Ok(samples) = rx.try_recv() {
                    pending.extend(samples);
                }
                let n = pending.len().min(320);
                let mut frame: Vec<i16> = pending.drain(..n).collect();
                frame.resize(320, 0);
                let bytes: Vec<u8> = frame.iter().flat_map(|s| s.to_le_bytes()).collect();
                if sink.send(Message::Binary(bytes.into())).await.is_err() {
                    return;
                }
            }
        });
        Self { queue, task }
    }

    fn say(&self, samples: Vec<i16>) {
        let _ = self.queue.send(samples);
    }
}

impl Drop for Mic {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads server messages into `heard` until `until` holds.
async fn listen(
    stream: &mut futures_util::stream::SplitStream<Ws>,
    heard: &mut Heard,
    until: impl Fn(&Heard) -> bool,
) {
    tokio::time::timeout(HANG_GUARD, async {
        while !until(heard) {
            let msg = stream.next().await.expect("socket open").expect("frame");
            heard.absorb(msg);
        }
    })
    .await
    .expect("the pipeline answered (hang guard)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoken_question_gets_a_spoken_reply_and_barge_in_stops_it() {
    if !prerequisites() {
        return;
    }
    let server = start_server().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/agent", server.addr))
        .await
        .expect("connect");
    let start = serde_json::json!({
        "type": "start",
        "audio": {"encoding": "pcm16", "sample_rate": 16000},
        "output": {"encoding": "pcm16", "sample_rate": OUTPUT_RATE},
    });
    ws.send(Message::Text(start.to_string().into()))
        .await
        .expect("start");
    let ready: Value = match ws.next().await.expect("ready").expect("ready") {
        Message::Text(t) => serde_json::from_str(&t).expect("json"),
        other => panic!("expected ready, got {other:?}"),
    };
    assert_eq!(ready["type"], "ready", "{ready}");
    assert_eq!(ready["output"]["sample_rate"], OUTPUT_RATE);
    let (sink, mut stream) = ws.split();
    let mic = Mic::start(sink);

    // Turn 1: the question; the reply streams as text and audio until it is done.
    mic.say(speak("what is the weather in paris"));
    let mut first = Heard::default();
    listen(&mut stream, &mut first, |h| h.done).await;
    let transcript = first.final_transcript.clone().expect("a final transcript");
    for word in ["weather", "paris"] {
        assert!(
            transcript.contains(word),
            "transcript {transcript:?} lacks {word:?}"
        );
    }
    assert!(!first.agent_text.trim().is_empty(), "the agent replied");
    assert!(
        first.agent_deltas >= 2,
        "the reply streamed in pieces: {first:?}"
    );
    assert!(!first.interrupted);
    // The reply's audio fits its text at the requested rate: espeak-ng speaks about 2.5-3.5
    // words a second, so audio read at 24 kHz must last about words / 3 seconds.
    let seconds = first.audio_samples as f64 / f64::from(OUTPUT_RATE);
    let words = first.agent_text.split_whitespace().count() as f64;
    assert!(
        seconds > words / 4.5 && seconds < words / 1.5 + 1.5,
        "{seconds:.2} s of audio for {words} words: {:?}",
        first.agent_text
    );

    // Turn 2: ask again, and talk over the reply as soon as its audio starts.
    mic.say(speak("tell me a long story about the city of paris"));
    let mut second = Heard::default();
    listen(&mut stream, &mut second, |h| h.audio_samples > 0).await;
    mic.say(speak("no stop please stop talking now"));
    listen(&mut stream, &mut second, |h| h.interrupted).await;
    listen(&mut stream, &mut second, |h| h.done).await;
    assert!(second.interrupted, "the reply was interrupted: {second:?}");

    drop(mic);
    drop(stream);
    server.shutdown().await;
}
