//! End to end with no keys and no fakes: the server runs the offline providers (Whisper,
//! Gemma, espeak-ng); a client speaks an espeak-ng recording into `/agent` and hears the reply,
//! then interrupts a reply by speaking over it: the recogniser's interim transcripts reach the
//! barge-in word threshold while the user is still speaking.
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

async fn start_server() -> ServerHandle {
    let mut raw = RawSettings::default();
    for (k, v) in [
        ("STT_PROVIDER", "local"),
        ("LLM_PROVIDER", "local"),
        ("TTS_PROVIDER", "local"),
        // A short offline reply may be interrupted at any point.
        ("TTS_MIN_DURATION_MS", "0"),
        // The barge-in is decided by the recogniser's interim words. Not the default five: the
        // local recogniser transcribes the speech so far once a second, one pass at a time, so
        // five words arrive some three seconds into the user's speech, after a typical offline
        // reply (one sentence, three to four seconds) has ended; the built-in policy does not
        // pause the reply to listen longer.
        ("TTS_BARGE_THRESHOLD_WORDS", "2"),
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
async fn spoken_question_gets_a_spoken_reply_and_barge_in_stops_it() {
    if !prerequisites() {
        return;
    }
    let server = start_server().await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", server.addr),
        json!({"encoding": "pcm16", "sample_rate": OUTPUT_RATE}),
    )
    .await;
    let ready = mic.until("ready", |v| v["type"] == "ready").await;
    assert_eq!(ready["output"]["sample_rate"], OUTPUT_RATE);

    // Turn 1: the question; the reply streams as text and audio until it is done.
    mic.say(&speak("what is the weather in paris"));
    let before = mic.audio_bytes;
    let done = mic
        .until("the first reply", |v| v["type"] == "agent_done")
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
    // words a second, so audio read at 24 kHz must last about words / 3 seconds.
    let seconds = (mic.audio_bytes - before) as f64 / 2.0 / f64::from(OUTPUT_RATE);
    let words = text.split_whitespace().count() as f64;
    assert!(
        seconds > words / 4.5 && seconds < words / 1.5 + 1.5,
        "{seconds:.2} s of audio for {words} words: {text:?}"
    );

    // Turn 2: ask again, and talk over the reply as soon as its audio starts.
    mic.say(&speak("tell me a long story about the city of paris"));
    let fin = mic
        .until("the second question", |v| {
            v["type"] == "transcript" && v["final"] == true && v["turn"] != done["turn"]
        })
        .await;
    mic.audio(2 * OUTPUT_RATE as usize / 10).await;
    let asked_at = mic.log.len();
    // Long enough for interim transcripts while the user is still speaking.
    mic.say(&speak(
        "no stop please stop talking now I would like to ask you about something else instead",
    ));
    mic.until("the interrupt", |v| {
        v["type"] == "interrupt" && v["turn"] == fin["turn"]
    })
    .await;
    // What the recogniser had heard of the barge-in when the reply was interrupted: interim
    // transcripts only (its final comes at the end of the speech), the last with at least the
    // threshold of words.
    let heard: Vec<&Value> = mic.log[asked_at..]
        .iter()
        .filter(|v| v["type"] == "transcript")
        .collect();
    eprintln!("transcripts of the barge-in before the interrupt: {heard:?}");
    assert!(
        heard.iter().all(|v| v["final"] == false),
        "interim words, not the final, interrupted the reply: {heard:?}"
    );
    let last = heard
        .last()
        .and_then(|v| v["text"].as_str())
        .expect("an interim transcript fed the barge-in")
        .to_lowercase();
    assert!(
        last.split_whitespace().count() >= 2,
        "the interim that interrupted has the threshold of words: {last:?}"
    );
    let second = mic
        .until("the second reply's end", |v| {
            v["type"] == "agent_done" && v["turn"] == fin["turn"]
        })
        .await;
    assert_eq!(second["interrupted"], true, "{second}");
    no_errors(&mic);
    server.shutdown().await;
}
