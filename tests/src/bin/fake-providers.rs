//! Runs the fake Deepgram, OpenAI and ElevenLabs servers on 127.0.0.1 so voice-host can be run
//! locally without any provider account, and prints the environment to point it at them.
//!
//! Usage: `cargo run -p voice-tests --bin fake-providers -- [--deepgram-port N]
//! [--openai-port N] [--elevenlabs-port N] [--utterance TEXT]... [--reply WHEN=TEXT]...` (ports
//! default to 0, any free port). `--utterance` transcripts are heard in turn, then `--fallback`
//! (default "hello there") for every utterance after. `--reply` makes the model answer TEXT when the user's last
//! message contains WHEN (otherwise it echoes "You said: ..."). Stops on Ctrl-C.
//!
//! Latencies, for load runs that show what a caller would hear with production providers:
//! `--stt-latency-ms N` (every recogniser message N ms after the audio that caused it),
//! `--llm-first-token-ms N`, `--llm-token-ms N` (pause between tokens, each streamed event
//! sent whole, as `--whole-events` does; by default the stream is cut into odd pieces 1 ms
//! apart, which tests a client's event framing but makes the first token ~120 ms late),
//! `--tts-first-audio-ms N`, or `--realistic` for 150 / 350 / 15 / 150. `--loudness-is-speech`
//! makes the recogniser take any loud frame for speech instead of checking its pitch (cheap
//! endpointing for a load rig). `--tts-handshake-ms N` delays every ElevenLabs WebSocket
//! upgrade by N ms, the TCP, TLS and HTTP round trips a real connection costs.
//!
//! On Ctrl-C or SIGTERM it prints to stderr how many ElevenLabs WebSocket connections and
//! contexts it served.

use std::process::ExitCode;
use voice_tests::fake_deepgram::{DeepgramScript, FakeDeepgram};
use voice_tests::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use voice_tests::fake_openai::{FakeOpenAi, OpenAiScript};

/// Keys the fakes accept (and require), shaped like the real ones.
const DEEPGRAM_KEY: &str = "0000000000000000000000000000000000fa4e00";
const OPENAI_KEY: &str = "sk-fake-local-0000000000000000";
const ELEVENLABS_KEY: &str = "sk_000000000000000000000000000000000000000000fa4e00";

struct Args {
    deepgram_port: u16,
    openai_port: u16,
    elevenlabs_port: u16,
    utterances: Vec<String>,
    fallback: Option<String>,
    replies: Vec<(String, String)>,
    stt_latency_ms: u64,
    llm_first_token_ms: u64,
    llm_token_ms: u64,
    tts_first_audio_ms: u64,
    tts_handshake_ms: u64,
    loudness_is_speech: bool,
    whole_events: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        deepgram_port: 0,
        openai_port: 0,
        elevenlabs_port: 0,
        utterances: Vec::new(),
        fallback: None,
        replies: Vec::new(),
        stt_latency_ms: 0,
        llm_first_token_ms: 0,
        llm_token_ms: 1,
        tts_first_audio_ms: 0,
        tts_handshake_ms: 0,
        loudness_is_speech: false,
        whole_events: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let port = |v: String| {
            v.parse::<u16>()
                .map_err(|_| format!("{flag}: not a port: {v}"))
        };
        let ms = |v: String| {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n <= 60_000)
                .ok_or_else(|| format!("{flag}: milliseconds 0..=60000, got {v}"))
        };
        match flag.as_str() {
            "--stt-latency-ms" => args.stt_latency_ms = ms(value()?)?,
            "--llm-first-token-ms" => args.llm_first_token_ms = ms(value()?)?,
            "--llm-token-ms" => {
                args.llm_token_ms = ms(value()?)?;
                args.whole_events = true;
            }
            "--whole-events" => args.whole_events = true,
            "--tts-first-audio-ms" => args.tts_first_audio_ms = ms(value()?)?,
            "--tts-handshake-ms" => args.tts_handshake_ms = ms(value()?)?,
            "--realistic" => {
                args.stt_latency_ms = 150;
                args.llm_first_token_ms = 350;
                args.llm_token_ms = 15;
                args.tts_first_audio_ms = 150;
                args.whole_events = true;
            }
            "--loudness-is-speech" => args.loudness_is_speech = true,
            "--deepgram-port" => args.deepgram_port = port(value()?)?,
            "--openai-port" => args.openai_port = port(value()?)?,
            "--elevenlabs-port" => args.elevenlabs_port = port(value()?)?,
            "--utterance" => args.utterances.push(value()?),
            "--fallback" => args.fallback = Some(value()?),
            "--reply" => {
                let v = value()?;
                let (when, text) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--reply: expected WHEN=TEXT, got {v}"))?;
                args.replies.push((when.to_string(), text.to_string()));
            }
            "-h" | "--help" => {
                return Err(
                    "usage: fake-providers [--deepgram-port N] [--openai-port N] \
                            [--elevenlabs-port N] [--utterance TEXT]... [--fallback TEXT] [--reply WHEN=TEXT]... \
                            [--stt-latency-ms N] [--llm-first-token-ms N] [--llm-token-ms N] \
                            [--tts-first-audio-ms N] [--tts-handshake-ms N] [--realistic] [--whole-events] [--loudness-is-speech]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let ms = std::time::Duration::from_millis;
    let defaults = DeepgramScript::default();
    let script = DeepgramScript {
        utterances: args.utterances,
        fallback: args.fallback.unwrap_or(defaults.fallback.clone()),
        pitch_check: !args.loudness_is_speech,
        latency: ms(args.stt_latency_ms),
        ..defaults
    }
    .with_key(DEEPGRAM_KEY);
    let started = async {
        let deepgram = FakeDeepgram::start_on(args.deepgram_port, script).await?;
        let openai = FakeOpenAi::start_on(
            args.openai_port,
            OpenAiScript {
                replies: args.replies,
                chunk_interval: ms(args.llm_token_ms),
                split_events: !args.whole_events,
                first_token_delay: ms(args.llm_first_token_ms),
                ..OpenAiScript::default()
            }
            .with_key(OPENAI_KEY),
        )
        .await?;
        let elevenlabs = FakeElevenLabs::start_on(
            args.elevenlabs_port,
            ElevenLabsScript {
                first_audio_delay: ms(args.tts_first_audio_ms),
                handshake_delay: ms(args.tts_handshake_ms),
                ..ElevenLabsScript::default()
            }
            .with_key(ELEVENLABS_KEY),
        )
        .await?;
        std::io::Result::Ok((deepgram, openai, elevenlabs))
    };
    let (deepgram, openai, elevenlabs) = match started.await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("could not start the fake providers: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("# Fake providers are running. Point voice-host at them with:");
    println!("export DEEPGRAM_URL={}", deepgram.url());
    println!("export DEEPGRAM_API_KEY={DEEPGRAM_KEY}");
    println!("export OPENAI_BASE_URL={}", openai.base_url());
    println!("export OPENAI_API_KEY={OPENAI_KEY}");
    println!("export ELEVENLABS_URL={}", elevenlabs.url());
    println!("export ELEVENLABS_API_KEY={ELEVENLABS_KEY}");
    println!("# Ctrl-C stops them.");
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    let requests = elevenlabs.requests();
    let contexts: usize = requests.iter().map(|r| r.contexts.len()).sum();
    eprintln!(
        "fake-providers: elevenlabs served {} WebSocket connections ({} multi-context, {contexts} contexts)",
        elevenlabs.websocket_connections(),
        requests.iter().filter(|r| r.is_multi_context()).count(),
    );
    ExitCode::SUCCESS
}
