//! End to end with no keys and no fakes: the server runs the offline providers (Whisper,
//! SmolLM2, espeak-ng) with the default barge-in rules. A client talks over the spoken greeting
//! with an espeak-ng recording of its question: the recogniser's interim transcripts reach the
//! default five-word threshold while the user is still speaking and, once the default 3000 ms
//! minimum has passed, interrupt the greeting. The question is answered with speech; a typed
//! turn then interrupts a reply while the local LLM is still generating it.
//!
//! Needs the offline models (`voice-host models install`) and espeak-ng
//! (`scripts/install-deps.sh`). Where they are missing the test is skipped with a notice,
//! except when `CI=true`, where it fails.
use serde_json::{json, Value};
use std::path::PathBuf;
use tokio::net::TcpListener;
use voice_host::audio::{read_wav_mono_i16, Resampler};
use voice_host::config::{source::RawSettings, Config};
use voice_host::providers::local::LocalModels;
use voice_host::server::{self, ServerHandle};
use voice_tests::microphone::Microphone;

/// About 30 s of speech: it outlasts the 3000 ms minimum plus the recogniser's interims.
const GREETING: &str = "Hello and welcome to the travel desk. I can tell you about the weather, \
about trains and flights, about museums and restaurants, and about anything else you might need \
on your trip. Before we begin, let me explain how this works. You can ask me a question at any \
time, and you can interrupt me whenever you like. I will keep my answers short and clear. If \
you need me to repeat something, just say so. So, what would you like to know today?";

/// Twelve words, about 4 s of espeak-ng speech.
const QUESTION: &str = "please stop for a moment, what is the weather in paris today";

/// Output audio bytes a millisecond (PCM16 at `OUTPUT_RATE`).
const BYTES_PER_MS: usize = OUTPUT_RATE as usize * 2 / 1000;

/// Output rate the client asks for (not espeak-ng's 22,050 Hz, so resampling is exercised).
const OUTPUT_RATE: u32 = 24_000;

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
    voice_tests::prerequisite::missing("offline end-to-end", &missing.join("; "));
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

/// The server on the offline providers, with `extra` settings.
async fn start_server(extra: &[(&str, &str)]) -> ServerHandle {
    let mut raw = RawSettings::default();
    for &(k, v) in [
        ("STT_PROVIDER", "local"),
        ("LLM_PROVIDER", "local"),
        ("TTS_PROVIDER", "local"),
        // The offline providers are under test here; the built-in behaviours stand in for plug-ins.
        ("INTENT_PLUGIN", "none"),
        ("PROMPT_PLUGIN", "none"),
        ("BARGE_IN_PLUGIN", "none"),
    ]
    .iter()
    .chain(extra)
    {
        raw.values.insert(k.into(), v.into());
    }
    raw.values
        .insert("MODELS_DIR".into(), models_dir().display().to_string());
    let cfg = Config::from_raw(&raw).expect("config");
    let prepared = server::prepare(cfg).expect("prepare");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    ServerHandle::spawn(prepared, listener).expect("serve")
}

/// What the client saw of turn `turn`: (final transcript, agent text, agent_text messages).
fn turn_of(mic: &Microphone, turn: &Value) -> (String, String, usize) {
    let of = |kind: &str| -> Vec<&Value> {
        mic.log
            .iter()
            .filter(|v| v["type"] == kind && &v["turn"] == turn)
            .collect()
    };
    let transcript = of("transcript")
        .iter()
        .rev()
        .find(|v| v["final"] == true)
        .and_then(|v| v["text"].as_str())
        .unwrap_or_default()
        .to_lowercase();
    let deltas = of("agent_text");
    let text = deltas
        .iter()
        .filter_map(|v| v["delta"].as_str())
        .collect::<String>();
    (transcript, text, deltas.len())
}

fn no_errors(mic: &Microphone) {
    let errors: Vec<&Value> = mic.log.iter().filter(|v| v["type"] == "error").collect();
    assert!(errors.is_empty(), "server errors: {errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_silero_vad_a_spoken_question_gets_a_spoken_reply() {
    if !prerequisites() {
        return;
    }
    let server = start_server(&[("VAD_ENGINE", "silero")]).await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", server.addr),
        json!({"encoding": "pcm16", "sample_rate": OUTPUT_RATE}),
    )
    .await;
    mic.until("ready", |v| v["type"] == "ready").await;
    let question = speak("what is the weather in paris today");
    let question_ms = (question.len() / 16) as u64;
    mic.say(&question);
    let start = mic
        .until("speech start", |v| {
            v["type"] == "vad" && v["event"] == "speech_start"
        })
        .await;
    let end = mic
        .until("speech end", |v| {
            v["type"] == "vad" && v["event"] == "speech_end"
        })
        .await;
    // Audio clock times: the voice is the recording's minus espeak-ng's own silence at its
    // edges, and the question's short pause stays inside one run of speech.
    let voiced = end["at_ms"].as_u64().unwrap() - start["at_ms"].as_u64().unwrap();
    assert!(
        (question_ms / 2..=question_ms).contains(&voiced),
        "{voiced} ms of speech in a {question_ms} ms recording"
    );
    let done = mic.until("the reply", |v| v["type"] == "agent_done").await;
    no_errors(&mic);
    assert_eq!(done["interrupted"], false, "{done}");
    let (transcript, text, _) = turn_of(&mic, &done["turn"]);
    for word in ["weather", "paris"] {
        assert!(
            transcript.contains(word),
            "transcript {transcript:?} lacks {word:?}"
        );
    }
    assert!(!text.trim().is_empty(), "the agent replied");
    assert!(mic.audio_bytes > 0, "the reply was spoken");
    assert_eq!(
        mic.of_type("vad").len(),
        2,
        "one run of speech: {:?}",
        mic.of_type("vad")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_question_interrupts_the_greeting_and_gets_a_spoken_reply() {
    if !prerequisites() {
        return;
    }
    // A greeting long enough to talk over with the default barge-in rules (five words, 3000 ms).
    let server = start_server(&[("GREETING", GREETING)]).await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", server.addr),
        json!({"encoding": "pcm16", "sample_rate": OUTPUT_RATE}),
    )
    .await;
    let ready = mic.until("ready", |v| v["type"] == "ready").await;
    assert_eq!(ready["output"]["sample_rate"], OUTPUT_RATE);

    // The greeting plays; half a second in, the user asks a question over it.
    let greeting = mic
        .until("the greeting", |v| v["type"] == "agent_text")
        .await["turn"]
        .clone();
    mic.audio(500 * BYTES_PER_MS).await;
    let asked_at = mic.log.len();
    let question = speak(QUESTION);
    let question_ms = question.len() / 16;
    let said = std::time::Instant::now();
    mic.say(&question);
    mic.until("the interrupt", |v| {
        v["type"] == "interrupt" && v["turn"] == greeting
    })
    .await;
    let at_interrupt = mic.audio_bytes;
    // What the recogniser had heard of the question when the greeting was interrupted: interim
    // transcripts only (its final comes at the end of the speech), the last with at least the
    // default five words.
    let heard: Vec<&Value> = mic.log[asked_at..]
        .iter()
        .filter(|v| v["type"] == "transcript")
        .collect();
    eprintln!(
        "interrupt {} ms after the start of a {question_ms} ms question, {} ms into the greeting; \
         transcripts before it: {heard:?}",
        said.elapsed().as_millis(),
        at_interrupt / BYTES_PER_MS
    );
    assert!(
        heard.iter().all(|v| v["final"] == false),
        "interim words, not the final, interrupted the greeting: {heard:?}"
    );
    // The interims grew while the user spoke (one a second): the first is not yet the whole
    // question, so the barge-in was judged before the user stopped.
    let words = |v: &Value| {
        v["text"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .count()
    };
    assert!(
        heard
            .first()
            .is_some_and(|v| words(v) < QUESTION.split_whitespace().count()),
        "no interim came while the question was spoken: {heard:?}"
    );
    let last = heard
        .last()
        .and_then(|v| v["text"].as_str())
        .expect("an interim transcript fed the barge-in")
        .to_lowercase();
    assert!(
        last.split_whitespace().count() >= 5,
        "the interim that interrupted has the default threshold of words: {last:?}"
    );
    assert!(
        at_interrupt >= 3000 * BYTES_PER_MS,
        "interrupted after {} ms of greeting, before the 3000 ms minimum",
        at_interrupt / BYTES_PER_MS
    );
    let done = mic
        .until("the greeting's end", |v| {
            v["type"] == "agent_done" && v["turn"] == greeting
        })
        .await;
    assert_eq!(done["interrupted"], true, "{done}");
    let kept = done["text"].as_str().unwrap();
    assert!(
        GREETING.starts_with(kept) && kept.len() < GREETING.len() / 2,
        "only the heard part of the greeting is kept: {kept:?}"
    );

    // The question is the next turn; its reply streams as text and audio until it is done.
    let before = mic.audio_bytes;
    let done = mic
        .until("the reply", |v| {
            v["type"] == "agent_done" && v["turn"] != greeting
        })
        .await;
    no_errors(&mic);
    assert_eq!(done["interrupted"], false, "{done}");
    let (transcript, text, deltas) = turn_of(&mic, &done["turn"]);
    for word in ["weather", "paris"] {
        assert!(
            transcript.contains(word),
            "transcript {transcript:?} lacks {word:?}"
        );
    }
    assert!(!text.trim().is_empty(), "the agent replied");
    assert!(deltas >= 2, "the reply streamed in pieces: {text:?}");
    // The reply's audio fits its text at the requested rate: espeak-ng speaks about 2.5-3.5
    // words a second, so audio read at 24 kHz must last about words / 3 seconds. Short
    // one-syllable words go faster: "It's a bit of an odd day." took 1.30 s (5.4 words a
    // second), hence the lower bound of 6 words a second.
    let seconds = (mic.audio_bytes - before) as f64 / 2.0 / f64::from(OUTPUT_RATE);
    let words = text.split_whitespace().count() as f64;
    assert!(
        seconds > words / 6.0 && seconds < words / 1.5 + 1.5,
        "{seconds:.2} s of audio for {words} words: {text:?}"
    );

    // A typed turn interrupts the next reply while it is spoken (the local LLM, at a few
    // tokens a second, is most likely still generating it).
    mic.send(json!({"type": "text", "text": "tell me a long story about the city of paris"}));
    let story = mic
        .until("the story's first words", |v| {
            v["type"] == "agent_text" && v["turn"] != done["turn"]
        })
        .await["turn"]
        .clone();
    mic.audio(200 * BYTES_PER_MS).await;
    mic.send(json!({"type": "text", "text": "thank you, that is all"}));
    let ended = mic
        .until("the story's end", |v| {
            v["type"] == "agent_done" && v["turn"] == story
        })
        .await;
    assert_eq!(ended["interrupted"], true, "{ended}");
    mic.until("the next turn", |v| {
        v["type"] == "transcript"
            && v["final"] == true
            && v["text"]
                .as_str()
                .is_some_and(|t| t.ends_with("that is all"))
    })
    .await;
    no_errors(&mic);
    server.shutdown().await;
}
