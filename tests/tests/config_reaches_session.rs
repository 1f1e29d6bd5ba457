//! Every configuration variable the README documents (and every one the host reads) reaches
//! what it configures. One table: each variable is set and its effect observed through a client
//! or the provider fakes, or the table names the test that observes it elsewhere, or says
//! plainly why it is not observed end to end. A variable missing from the table fails the test,
//! so a new one cannot be added untested by accident.

use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use voice_host::admission::token::{mint_hs256, now_s, Claims};
use voice_tests::agent_client::{AgentClient, Refused};
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::{CloudStack, DEEPGRAM_KEY, ELEVENLABS_KEY, OPENAI_KEY};
use voice_tests::metrics::metric;
use voice_tests::microphone::is;
use voice_tests::microphone::Microphone;
use voice_tests::{eventually, plugins, speech, Fault};

const LIMIT: Duration = Duration::from_secs(20);
const REPLY: &str = "It is sunny in Paris today.";
const SECRET: &str = "config-test-secret-0123456789abcdef";
const ADMIN: &str = "config-test-admin-token-0123456789abcdef";
/// A reply long enough to still be speaking when the user talks over it.
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";
/// A P-256 key pair made for this test only.
const EC_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgG6vAxyUJhDrcoPdC
txP48d8FJGAF7VvNPaapWWtohI6hRANCAAQEPOcLm2IrVe2qsZ/VptoAH3c0HK2t
nM4Qqd0t0+ij/eK4+3fBuH0grWeCGNbs3Rx/MzjZpGhaGutQGirjHKJc
-----END PRIVATE KEY-----";
const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEBDznC5tiK1XtqrGf1abaAB93NByt
rZzOEKndLdPoo/3iuPt3wbh9IK1nghjW7N0cfzM42aRoWhrrUBoq4xyiXA==
-----END PUBLIC KEY-----";

/// How a row's variables are shown to take effect.
enum How {
    /// Set here and observed through a session, a client, a fake, the admin API or the settings
    /// the running server builds sessions from.
    Here(fn() -> LocalBoxFuture<'static, ()>),
    /// Observed by this test elsewhere.
    Elsewhere(&'static str),
}

fn cases() -> Vec<(&'static [&'static str], How)> {
    use How::*;
    vec![
        (&["BIND", "PORT", "LOG_FORMAT"], Elsewhere("tests/tests/e2e/sigterm.rs sigterm_drains_the_turn_in_flight_then_exits_0: the binary listens on BIND:PORT and logs JSON lines")),
        (&["ALLOWED_ORIGINS"], Here(|| Box::pin(allowed_origins()))),
        (&["MAX_SESSIONS"], Here(|| Box::pin(max_sessions()))),
        (&["DRAIN_TIMEOUT_MS"], Elsewhere("tests/tests/e2e/server.rs drain_timeout_closes_sessions_still_speaking")),
        (&["ADMIN_TOKEN"], Elsewhere("tests/tests/e2e/plugins_hot_swap_server.rs and admission.rs: admin calls need the bearer token")),
        (&["ADMIN_BIND"], Elsewhere("tests/tests/e2e/admission.rs: the admin routes on their own listener")),
        (&["AUTH_SECRET"], Here(|| Box::pin(auth_secret()))),
        (&["AUTH_PUBLIC_KEY"], Here(|| Box::pin(auth_public_key()))),
        (&["TWILIO_AUTH_TOKEN", "PUBLIC_URL"], Elsewhere("tests/tests/e2e/admission.rs: the signed Twilio webhook and its stream token")),
        (&["RESUME_TTL_S", "REDIS_URL"], Elsewhere("tests/tests/resume.rs: the TTL expires a dropped session (and 0 turns resume off); two hosts sharing REDIS_URL resume each other's sessions")),
        (&["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RECORD_TEXT"], Elsewhere("tests/tests/e2e/telemetry.rs: spans of a spoken turn reach a local OTLP receiver over each protocol under the service name, text only when asked")),
        (&["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], Elsewhere("not end to end: host/src/config/telemetry.rs reads it as the traces URL, used as is, over the base endpoint")),
        (&["TRUSTED_PROXIES"], Elsewhere("tests/tests/e2e/admission.rs one_ip_past_its_cap_gets_429_while_another_is_served")),
        (&["MAX_SESSIONS_PER_IP"], Here(|| Box::pin(max_sessions_per_ip()))),
        (&["CONNECT_RATE_PER_MIN", "CONNECT_BURST"], Here(|| Box::pin(connect_rate()))),
        (&["START_TIMEOUT_MS"], Here(|| Box::pin(start_timeout()))),
        (&["IDLE_TIMEOUT_MS"], Here(|| Box::pin(idle_timeout()))),
        (&["MAX_SESSION_MS"], Here(|| Box::pin(max_session()))),
        (&["TEXT_TURNS_PER_MIN"], Here(|| Box::pin(text_turns()))),
        (&["STT_PROVIDER", "MODELS_DIR"], Here(|| Box::pin(local_stt()))),
        (&["LLM_PROVIDER", "LOCAL_LLM_MODEL"], Here(|| Box::pin(local_llm()))),
        (&["TTS_PROVIDER"], Here(|| Box::pin(local_tts()))),
        (&["DEEPGRAM_URL", "DEEPGRAM_API_KEY", "DEEPGRAM_MODEL", "STT_LANGUAGE"], Here(|| Box::pin(deepgram()))),
        (&["OPENAI_BASE_URL", "OPENAI_API_KEY", "LLM_MODEL", "LLM_TEMPERATURE", "LLM_MAX_TOKENS"], Here(|| Box::pin(openai()))),
        (&["ELEVENLABS_URL", "ELEVENLABS_API_KEY", "VOICE_ID", "ELEVENLABS_MODEL_ID"], Here(|| Box::pin(elevenlabs()))),
        (&["ELEVENLABS_TRANSPORT"], Here(|| Box::pin(elevenlabs_http()))),
        (&["STT_SILENCE_TIMEOUT_MS", "STT_FINALIZE_WAIT_MS", "BARGE_IN_PAUSE_TIMEOUT_MS", "AUDIO_LEAD_MS"], Here(|| Box::pin(timing_settings()))),
        (&["LLM_STALL_TIMEOUT_MS"], Here(|| Box::pin(llm_stall()))),
        (&["TTS_STALL_TIMEOUT_MS"], Here(|| Box::pin(tts_stall()))),
        (&["TTS_MIN_DURATION_MS", "TTS_BARGE_THRESHOLD_WORDS", "TTS_PROTECTED_PHRASES"], Elsewhere("tests/tests/e2e/pipeline_cloud.rs speech_in_agent_voice_out_with_barge_in (0, 2 and false let a short barge-in interrupt at once); conversation.rs for the defaults")),
        (&["PROTECTED_PATTERNS"], Here(|| Box::pin(protected_patterns()))),
        (&["VAD_START_FRAMES"], Here(|| Box::pin(vad_start_frames()))),
        (&["VAD_HANGOVER_MS"], Here(|| Box::pin(vad_hangover()))),
        (&["VAD_AGGRESSIVENESS"], Here(|| Box::pin(vad_aggressiveness()))),
        (&["VAD_ENGINE"], Here(|| Box::pin(vad_engine()))),
        (&["MEMORY_TURNS"], Here(|| Box::pin(memory_turns()))),
        (&["MEMORY_CHARS"], Here(|| Box::pin(memory_chars()))),
        (&["SYSTEM_PROMPT"], Here(|| Box::pin(system_prompt()))),
        (&["GREETING"], Here(|| Box::pin(greeting()))),
        (&["PLUGIN_DIR"], Here(|| Box::pin(plugin_dir()))),
        (&["INTENT_PLUGIN", "PROMPT_PLUGIN", "PLUGIN_DEADLINE_MS", "PLUGIN_FAULT_WINDOW_MS", "PLUGIN_QUARANTINE_BACKOFF_MS"], Elsewhere("tests/tests/e2e/plugins_faults_server.rs and plugins_python_server.rs")),
        (&["BARGE_IN_PLUGIN"], Elsewhere("tests/tests/e2e/conversation.rs a_seven_word_barge_in_interrupts_with_each_reference_barge_in_plugin")),
        (&["TURN_PLUGIN", "TURN_MODEL", "TURN_MODEL_THREADS", "TURN_WORDS_MODEL", "TURN_WORDS_THREADS", "TURN_PAUSE_MS"], Elsewhere("tests/tests/e2e/end_of_turn.rs: the reference policy named by TURN_PLUGIN ends a finished question sooner and holds an unfinished one; with TURN_MODEL=smart-turn on TURN_MODEL_THREADS=2 threads (host/src/turn/worker.rs tests: each thread answers a session while the others run) and TURN_PAUSE_MS=150 the policy is asked after 150 ms of silence with the model's probability; with TURN_WORDS_MODEL=smollm2 it sees the words probability and holds \"can you tell me\" across a pause, with none it does not; the TURN_WORDS_MODEL=smollm2 host reads on TURN_WORDS_THREADS=2 threads (each session on one, host/src/turn/words.rs model tests: every answer on either thread is the cold one)")),
        (&["PREEMPTIVE_GENERATION"], Elsewhere("tests/tests/preemptive_generation.rs: on, the reply's first text comes sooner than off for the same speech, and a request made at a pause is dropped unheard")),
        (&["PLUGIN_WATCH"], Elsewhere("tests/tests/e2e/plugins_hot_swap_server.rs")),
        (&["PLUGIN_POLL_S", "PLUGIN_OCI_INSECURE"], Elsewhere("tests/tests/e2e/plugins_oci_server.rs a_moved_tag_rolls_every_host_and_its_open_sessions: two hosts reach the loopback registry over plain HTTP and roll to a moved tag within a poll of 1 s")),
        (&["PLUGIN_OCI_USERNAME", "PLUGIN_OCI_PASSWORD"], Elsewhere("tests/tests/e2e/plugins_oci_server.rs a_private_registry_is_reached_with_its_credentials_and_they_stay_secret")),
        (&["PLUGIN_MEMORY_MB"], Here(|| Box::pin(plugin_memory()))),
        (&["PLUGIN_SESSION_FAULT_LIMIT", "PLUGIN_QUARANTINE_SESSIONS"], Here(|| Box::pin(plugin_fault_limits()))),
        (&["PLUGIN_RECORD", "PLUGIN_RECORD_TEXT"], Elsewhere("tests/tests/plugins_record_replay.rs: typed turns and a barge-in recorded into the directory and replayed; a_masked_recording_keeps_no_words")),
        (&["INTENT_PLUGIN_SHADOW", "PROMPT_PLUGIN_SHADOW", "BARGE_IN_PLUGIN_SHADOW", "INTENT_PLUGIN_CANARY", "PROMPT_PLUGIN_CANARY", "BARGE_IN_PLUGIN_CANARY", "INTENT_PLUGIN_CANARY_PERCENT", "PROMPT_PLUGIN_CANARY_PERCENT", "BARGE_IN_PLUGIN_CANARY_PERCENT", "TURN_PLUGIN_SHADOW", "TURN_PLUGIN_CANARY", "TURN_PLUGIN_CANARY_PERCENT", "PLUGIN_CANARY_MARGIN_PCT", "PLUGIN_CANARY_MIN_CALLS", "PLUGIN_SHADOW_MAX_SESSIONS"], Here(|| Box::pin(candidate_versions()))),
        (&["PLUGIN_RECORD_MAX_MB", "PLUGIN_RECORD_FILES"], Elsewhere("not end to end, since a rotation takes megabytes of calls: host/src/plugins/record/rotate.rs rotates at the size limit and keeps that many files, config/mod.rs reads both")),
    ]
}

/// The variables named in the first column of the README's configuration table.
fn readme_variables() -> BTreeSet<String> {
    let readme = include_str!("../../README.md");
    let section = readme
        .split("## Configuration")
        .nth(1)
        .expect("README has a Configuration section");
    let section = section.split("\n## ").next().unwrap();
    let mut names = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap();
        for name in first.split('`').skip(1).step_by(2) {
            names.insert(name.trim().to_string());
        }
    }
    assert!(names.len() > 40, "README table not found: {names:?}");
    names
}

#[tokio::test]
async fn every_configuration_variable_reaches_what_it_configures() {
    let cases = cases();
    let listed: Vec<&str> = cases.iter().flat_map(|(v, _)| v.iter().copied()).collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "a variable is listed twice");
    let mut documented = readme_variables();
    documented.extend(
        voice_host::config::vars::names()
            .iter()
            .map(|n| n.to_string()),
    );
    let missing: Vec<&String> = documented
        .iter()
        .filter(|n| !unique.contains(n.as_str()))
        .collect();
    assert!(missing.is_empty(), "variables without a case: {missing:?}");
    let stale: Vec<&&str> = unique
        .iter()
        .filter(|n| !documented.contains(**n))
        .collect();
    assert!(stale.is_empty(), "cases for unknown variables: {stale:?}");
    for (vars, how) in &cases {
        match how {
            How::Here(check) => {
                eprintln!("checking {vars:?}");
                check().await;
            }
            How::Elsewhere(test) => eprintln!("{vars:?}: observed by {test}"),
        }
    }
}

// ---- helpers ----

async fn stack(extra: &[(&str, &str)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default().reply("weather", REPLY),
        ElevenLabsScript::default(),
        extra,
    )
    .await
}

fn pcm16k() -> Value {
    json!({"encoding": "pcm16", "sample_rate": 16000})
}

async fn session(s: &CloudStack) -> AgentClient {
    AgentClient::start(s.host.addr, pcm16k(), None).await
}

/// A typed turn on a new session; returns the session after the reply.
async fn typed_turn(s: &CloudStack, text: &str) -> AgentClient {
    let mut c = session(s).await;
    c.send_json(json!({"type": "text", "text": text})).await;
    c.expect_type("agent_done", LIMIT).await;
    c
}

async fn refused(s: &CloudStack, path: &str, origin: Option<&str>) -> Refused {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    match AgentClient::connect_with(s.host.addr, path, &headers).await {
        Ok(_) => panic!("{path} was admitted"),
        Err(r) => r,
    }
}

fn code(r: &Refused) -> String {
    let v: Value = serde_json::from_str(&r.body).expect("JSON error body");
    v["code"].as_str().unwrap_or_default().to_string()
}

/// The `vad` events of a session whose real-time microphone says `audio`, then 1 s of silence.
async fn vad_events(extra: &[(&str, &str)], audio: Vec<i16>) -> Vec<String> {
    let s = stack(extra).await;
    let mut mic = microphone(&s).await;
    let mut audio = audio;
    audio.extend(speech::silence(1000));
    mic.say(&audio);
    mic.finish_saying().await;
    mic.of_type("vad")
        .iter()
        .map(|v| v["event"].as_str().unwrap().to_string())
        .collect()
}

/// A real-time microphone client of a session sending PCM16 at 16 kHz.
async fn microphone(s: &CloudStack) -> Microphone {
    Microphone::connect(&format!("ws://{}/agent", s.host.addr), pcm16k()).await
}

/// The LLM requests after three typed turns.
async fn three_turns(extra: &[(&str, &str)]) -> Vec<Value> {
    let s = stack(extra).await;
    let mut c = session(&s).await;
    for (i, text) in ["first question", "second question", "third question"]
        .iter()
        .enumerate()
    {
        c.send_json(json!({"type": "text", "text": text})).await;
        c.wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == i + 1)
            .await
            .expect("answered");
    }
    s.openai.requests().into_iter().map(|r| r.body).collect()
}

// ---- the cases ----

async fn allowed_origins() {
    let s = stack(&[("ALLOWED_ORIGINS", "https://app.example")]).await;
    let r = refused(&s, "/agent", Some("https://evil.example")).await;
    assert_eq!((r.status, code(&r).as_str()), (403, "origin_not_allowed"));
    assert!(
        AgentClient::connect(s.host.addr, Some("https://app.example"))
            .await
            .is_ok()
    );
}

async fn max_sessions() {
    let s = stack(&[("MAX_SESSIONS", "1")]).await;
    let _first = session(&s).await;
    let r = refused(&s, "/agent", None).await;
    assert_eq!((r.status, code(&r).as_str()), (503, "at_capacity"));
}

async fn auth_secret() {
    let s = stack(&[("AUTH_SECRET", SECRET)]).await;
    let r = refused(&s, "/agent", None).await;
    assert_eq!((r.status, code(&r).as_str()), (401, "token_missing"));
    let claims = Claims {
        sub: "user-1".into(),
        exp: now_s() + 600,
        nbf: None,
        iat: None,
        agent: None,
        max_session_s: None,
        call_sid: None,
    };
    let path = format!("/agent?token={}", mint_hs256(SECRET.as_bytes(), &claims));
    assert!(AgentClient::connect_with(s.host.addr, &path, &[])
        .await
        .is_ok());
}

async fn auth_public_key() {
    let s = stack(&[("AUTH_PUBLIC_KEY", EC_PUBLIC)]).await;
    let r = refused(&s, "/agent", None).await;
    assert_eq!((r.status, code(&r).as_str()), (401, "token_missing"));
    let claims = json!({"sub": "user-1", "exp": now_s() + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    let c = AgentClient::connect_with(s.host.addr, &format!("/agent?token={token}"), &[])
        .await
        .expect("a token signed by the key's owner is admitted");
    c.start_session(pcm16k(), None).await;
    // A token signed with anything else is not.
    let forged = mint_hs256(SECRET.as_bytes(), &serde_json::from_value(claims).unwrap());
    let r = refused(&s, &format!("/agent?token={forged}"), None).await;
    assert_eq!(r.status, 401, "{}", r.body);
}

async fn max_sessions_per_ip() {
    let s = stack(&[("MAX_SESSIONS_PER_IP", "1")]).await;
    let _first = session(&s).await;
    let r = refused(&s, "/agent", None).await;
    assert_eq!((r.status, code(&r).as_str()), (429, "too_many_sessions"));
}

async fn connect_rate() {
    let s = stack(&[("CONNECT_BURST", "1"), ("CONNECT_RATE_PER_MIN", "1")]).await;
    let _first = AgentClient::connect(s.host.addr, None).await.unwrap();
    let r = refused(&s, "/agent", None).await;
    assert_eq!((r.status, code(&r).as_str()), (429, "rate_limited"));
    // One connection a minute: the next is most of a minute away (at the default rate, 1 s).
    let wait: u64 = r.retry_after.as_deref().unwrap().parse().unwrap();
    assert!(wait >= 30, "Retry-After {wait}");
}

async fn start_timeout() {
    let s = stack(&[("START_TIMEOUT_MS", "300")]).await;
    let mut c = AgentClient::connect(s.host.addr, None).await.unwrap();
    // A client slow to start (2 s, well within the default 5 s) is timed out by the setting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.send_json(json!({"type": "start", "audio": pcm16k()}))
        .await;
    let e = c.expect_type("error", LIMIT).await;
    assert_eq!(e["code"], "start_timeout", "{e}");
    assert_eq!(c.expect_close(LIMIT).await.0, 1008);
    assert!(c.of_type("ready").is_empty());
}

async fn idle_timeout() {
    let s = stack(&[("IDLE_TIMEOUT_MS", "300")]).await;
    let mut c = session(&s).await;
    let e = c.expect_type("error", LIMIT).await;
    assert_eq!(e["code"], "idle_timeout");
    assert_eq!(e["message"], "no audio or text for 300 ms");
    assert_eq!(c.expect_close(LIMIT).await.0, 1008);
}

async fn max_session() {
    let s = stack(&[("MAX_SESSION_MS", "400")]).await;
    let mut c = session(&s).await;
    let e = c.expect_type("error", LIMIT).await;
    assert_eq!(e["code"], "session_time_limit");
    assert_eq!(e["message"], "sessions may last 400 ms");
    assert_eq!(c.expect_close(LIMIT).await.0, 1008);
}

async fn text_turns() {
    // Seven turns at once: past the default's burst of 5, and no limit with 0.
    let s = stack(&[("TEXT_TURNS_PER_MIN", "0")]).await;
    let mut c = session(&s).await;
    for i in 0..7 {
        c.send_json(json!({"type": "text", "text": format!("question {i}")}))
            .await;
    }
    c.wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == 7)
        .await
        .unwrap_or_else(|| panic!("the last turn was not answered: {:?}", c.messages));
    assert!(c.of_type("error").is_empty(), "{:?}", c.of_type("error"));
}

/// An empty models directory named for this process and `what`.
fn empty_models(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "voice-host-config-models-{}-{what}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn local_stt() {
    let dir = empty_models("stt");
    let s = stack(&[
        ("STT_PROVIDER", "local"),
        ("MODELS_DIR", dir.to_str().unwrap()),
    ])
    .await;
    let mut c = session(&s).await;
    let e = c.expect_type("error", LIMIT).await;
    assert_eq!(e["code"], "provider_not_installed");
    // The message names the models directory it looked in.
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains(dir.to_str().unwrap()),
        "{e}"
    );
    assert!(s.deepgram.connections().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

async fn local_llm() {
    let dir = empty_models("llm");
    // The default model, then the other one by name: the error names the file each looks for.
    for (model, file) in [
        (None, "SmolLM2-135M-Instruct.Q4_1.gguf"),
        (Some("gemma3-270m"), "gemma-3-270m-q4_k_m.gguf"),
    ] {
        let mut settings = vec![
            ("LLM_PROVIDER", "local"),
            ("MODELS_DIR", dir.to_str().unwrap()),
        ];
        settings.extend(model.map(|m| ("LOCAL_LLM_MODEL", m)));
        let s = stack(&settings).await;
        let mut c = session(&s).await;
        c.send_json(json!({"type": "text", "text": "what is the weather"}))
            .await;
        let e = c.expect_type("error", LIMIT).await;
        assert_eq!(e["code"], "provider_not_installed");
        assert!(e["message"].as_str().unwrap().contains(file), "{e}");
        assert!(s.openai.requests().is_empty());
    }
    let _ = std::fs::remove_dir_all(dir);
}

async fn local_tts() {
    // espeak-ng needs no model files: the reply is spoken locally.
    let s = stack(&[("TTS_PROVIDER", "local")]).await;
    let c = typed_turn(&s, "what is the weather").await;
    assert!(!c.audio.is_empty(), "the local voice spoke");
    assert!(s.elevenlabs.requests().is_empty());
}

async fn deepgram() {
    let s = stack(&[
        ("DEEPGRAM_MODEL", "nova-2-phonecall"),
        ("STT_LANGUAGE", "de"),
    ])
    .await;
    let mic = microphone(&s).await;
    mic.say(&speech::utterance(300, 200));
    eventually("a Deepgram connection", LIMIT, || {
        !s.deepgram.connections().is_empty()
    })
    .await;
    let conn = &s.deepgram.connections()[0];
    assert_eq!(conn.param("model"), Some("nova-2-phonecall"));
    assert_eq!(conn.param("language"), Some("de"));
    assert_eq!(
        conn.header("authorization"),
        Some(format!("Token {DEEPGRAM_KEY}").as_str())
    );
}

async fn openai() {
    let s = stack(&[
        ("LLM_MODEL", "my-model-1"),
        ("LLM_TEMPERATURE", "0.25"),
        ("LLM_MAX_TOKENS", "77"),
    ])
    .await;
    typed_turn(&s, "what is the weather").await;
    let r = &s.openai.requests()[0];
    assert_eq!(r.body["model"], "my-model-1");
    assert_eq!(r.body["temperature"], 0.25);
    assert_eq!(r.body["max_tokens"], 77);
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
}

async fn elevenlabs() {
    let s = stack(&[
        ("VOICE_ID", "configVoice42"),
        ("ELEVENLABS_MODEL_ID", "eleven_turbo_v2_5"),
    ])
    .await;
    let c = typed_turn(&s, "what is the weather").await;
    assert!(!c.audio.is_empty());
    let r = &s.elevenlabs.requests()[0];
    assert_eq!(r.transport, "websocket");
    assert!(r.path.contains("/configVoice42/"), "{}", r.path);
    assert_eq!(r.param("model_id"), Some("eleven_turbo_v2_5"));
    let key_sent = r.header("xi-api-key") == Some(ELEVENLABS_KEY)
        || r.messages.iter().any(|m| m["xi_api_key"] == ELEVENLABS_KEY);
    assert!(key_sent, "{:?}", r.headers);
}

async fn elevenlabs_http() {
    let s = stack(&[("ELEVENLABS_TRANSPORT", "http")]).await;
    let c = typed_turn(&s, "what is the weather").await;
    assert!(!c.audio.is_empty());
    let requests = s.elevenlabs.requests();
    assert!(
        requests.iter().all(|r| r.transport == "http"),
        "{requests:?}"
    );
}

async fn llm_stall() {
    // The LLM answers after 5 s: within the default 10 s, past the 300 ms set here.
    let s = stack(&[("LLM_STALL_TIMEOUT_MS", "300")]).await;
    s.openai.faults().push(Fault::Delay(Duration::from_secs(5)));
    let mut c = session(&s).await;
    c.send_json(json!({"type": "text", "text": "what is the weather"}))
        .await;
    let first = c
        .wait_for(LIMIT, |m| m["type"] == "error" || m["type"] == "agent_done")
        .await
        .expect("the turn ended");
    assert_eq!(first["type"], "error", "{:?}", c.messages);
    assert_eq!(first["code"], "provider_unavailable", "{first}");
    let done = c.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["interrupted"], true);
}

async fn tts_stall() {
    // The voice answers after 5 s: within the default 10 s, past the 300 ms set here.
    let s = stack(&[("TTS_STALL_TIMEOUT_MS", "300")]).await;
    s.elevenlabs
        .faults()
        .push(Fault::Delay(Duration::from_secs(5)));
    let mut c = session(&s).await;
    c.send_json(json!({"type": "text", "text": "what is the weather"}))
        .await;
    let first = c
        .wait_for(LIMIT, |m| m["type"] == "error" || m["type"] == "agent_done")
        .await
        .expect("the turn ended");
    assert_eq!(first["type"], "error", "{:?}", c.messages);
    let done = c.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["interrupted"], true);
}

/// Settings whose only effect is when something happens (a turn ends, a paused reply gives
/// up, audio is sent): a test of the effect through a session would be a wall-clock threshold.
/// They are observed here in the settings every session of the running server is built from;
/// their effect is tested on a virtual clock (`session::orchestrator::tests::user_turns`
/// silence and finalize, `...::pause`, `...::replies::reply_audio_is_paced_at_real_time_plus_the_lead_and_then_done`).
async fn timing_settings() {
    let s = stack(&[
        ("STT_SILENCE_TIMEOUT_MS", "1234"),
        ("STT_FINALIZE_WAIT_MS", "210"),
        ("BARGE_IN_PAUSE_TIMEOUT_MS", "3456"),
        ("AUDIO_LEAD_MS", "420"),
    ])
    .await;
    let o = &s.host.state.deps.orchestrator;
    assert_eq!(
        (
            o.silence_timeout_ms,
            o.finalize_wait_ms,
            o.pause_timeout_ms,
            o.lead_ms
        ),
        (1234, 210, 3456, 420)
    );
}

async fn vad_start_frames() {
    // 160 ms of voice: speech with the default 3 frames, not with 15.
    let blip = || {
        let mut a = speech::silence(300);
        a.extend(speech::voiced(160));
        a
    };
    assert_eq!(
        vad_events(&[], blip()).await,
        ["speech_start", "speech_end"]
    );
    assert!(vad_events(&[("VAD_START_FRAMES", "15")], blip())
        .await
        .is_empty());
}

async fn vad_hangover() {
    // Two words 400 ms apart: one run of speech with the default 600 ms, two with 200.
    let words = || {
        let mut a = speech::silence(300);
        a.extend(speech::utterance(800, 400));
        a.extend(speech::voiced(800));
        a
    };
    let events = vad_events(&[("VAD_HANGOVER_MS", "200")], words()).await;
    assert_eq!(
        events,
        ["speech_start", "speech_end", "speech_start", "speech_end"]
    );
    let events = vad_events(&[], words()).await;
    assert_eq!(events, ["speech_start", "speech_end"]);
}

fn mentions(body: &Value, text: &str) -> bool {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["content"].as_str().unwrap_or_default().contains(text))
}

async fn memory_turns() {
    let requests = three_turns(&[("MEMORY_TURNS", "1")]).await;
    assert!(mentions(&requests[1], "first question"), "{}", requests[1]);
    assert!(!mentions(&requests[2], "first question"), "{}", requests[2]);
    assert!(mentions(&requests[2], "second question"), "{}", requests[2]);
}

async fn memory_chars() {
    // Each echoed reply is about 60 characters: 100 keep only the latest exchange.
    let requests = three_turns(&[("MEMORY_CHARS", "100")]).await;
    assert!(!mentions(&requests[2], "first question"), "{}", requests[2]);
    assert!(mentions(&requests[2], "third question"), "{}", requests[2]);
}

async fn system_prompt() {
    let s = stack(&[("SYSTEM_PROMPT", "You keep a lighthouse.")]).await;
    typed_turn(&s, "what is the weather").await;
    let body = &s.openai.requests()[0].body;
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], "You keep a lighthouse.");
}

async fn greeting() {
    let s = stack(&[("GREETING", "Welcome aboard.")]).await;
    let mut c = session(&s).await;
    let done = c.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["turn"], 0);
    assert_eq!(done["text"], "Welcome aboard.");
    assert!(!c.audio.is_empty(), "the greeting was spoken");
}

/// A steady 150 Hz tone at about a tenth of full scale: speech to webrtc-vad in modes 0 to 2,
/// not in mode 3 (whatever the silence before it; checked frame by frame against the detector).
fn hum(ms: u32) -> Vec<i16> {
    (0..16 * ms)
        .map(|i| {
            let t = i as f32 / 16_000.0;
            ((std::f32::consts::TAU * 150.0 * t).sin() * 3300.0) as i16
        })
        .collect()
}

async fn vad_aggressiveness() {
    let heard = || {
        let mut a = speech::silence(300);
        a.extend(hum(800));
        a
    };
    assert_eq!(
        vad_events(&[], heard()).await,
        ["speech_start", "speech_end"],
        "the default mode 2 hears the hum"
    );
    assert!(
        vad_events(&[("VAD_AGGRESSIVENESS", "3")], heard())
            .await
            .is_empty(),
        "the most restrictive mode does not"
    );
}

async fn vad_engine() {
    let models = std::env::var_os("MODELS_DIR").map_or_else(
        voice_host::providers::local::LocalModels::default_dir,
        Into::into,
    );
    let silero = models.join("silero-vad/silero_vad.onnx");
    if !silero.is_file() {
        voice_tests::prerequisite::missing(
            "VAD_ENGINE=silero",
            &format!("{} (run `voice-host models install`)", silero.display()),
        );
        return;
    }
    let weather = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../host/tests/fixtures/smart-turn/weather.wav");
    let (words, rate) = voice_host::audio::read_wav_mono_i16(&weather).unwrap();
    assert_eq!(rate, 16_000);
    let with = |audio: &[i16]| {
        let mut a = speech::silence(300);
        a.extend_from_slice(audio);
        a
    };
    let silero = [("VAD_ENGINE", "silero")];
    // A steady hum is speech to webrtc-vad (see `vad_aggressiveness`), not to Silero; words are
    // speech to both.
    assert!(
        vad_events(&silero, with(&hum(800))).await.is_empty(),
        "Silero heard a hum"
    );
    assert_eq!(
        vad_events(&silero, with(&words)).await,
        ["speech_start", "speech_end"]
    );
}

/// A directory of its own for this process and `what`, empty.
fn scratch_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("voice-host-config-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Why the server refuses to start with the built-in test settings plus `extra`.
async fn start_error(extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(String, String)> = vec![
        ("DEEPGRAM_API_KEY".into(), DEEPGRAM_KEY.into()),
        ("OPENAI_API_KEY".into(), OPENAI_KEY.into()),
        ("ELEVENLABS_API_KEY".into(), ELEVENLABS_KEY.into()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = voice_tests::host::config(&pairs);
    match tokio::task::spawn_blocking(move || voice_host::server::prepare(cfg))
        .await
        .unwrap()
    {
        Ok(_) => panic!("the server prepared with {extra:?}"),
        Err(e) => e.0,
    }
}

/// The admin API's view of `slot`.
async fn admin_slot(s: &CloudStack, slot: &str) -> Value {
    let body: Value = reqwest::Client::new()
        .get(format!("http://{}/admin/plugins", s.host.addr))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["slot"] == slot)
        .unwrap_or_else(|| panic!("no {slot} slot in {body}"))
        .clone()
}

async fn plugin_dir() {
    // An empty plug-in directory: the default barge-in plug-in is looked for, and missed, there.
    let empty = scratch_dir("plugins-empty");
    let e = start_error(&[
        ("PLUGIN_DIR", empty.to_str().unwrap()),
        ("BARGE_IN_PLUGIN", ""),
    ])
    .await;
    let expected = empty.join("barge_in_smart.wasm");
    assert!(e.contains(expected.to_str().unwrap()), "{e}");
    // One holding the reference component: it is loaded from there.
    let dir = scratch_dir("plugins");
    std::fs::copy(
        plugins::component("barge-in-smart"),
        dir.join("barge_in_smart.wasm"),
    )
    .unwrap();
    let s = stack(&[
        ("PLUGIN_DIR", dir.to_str().unwrap()),
        ("BARGE_IN_PLUGIN", ""),
        ("ADMIN_TOKEN", ADMIN),
    ])
    .await;
    let slot = admin_slot(&s, "barge_in").await;
    assert_eq!(
        slot["path"],
        dir.join("barge_in_smart.wasm").to_str().unwrap(),
        "{slot}"
    );
    assert_eq!(slot["plugin"], "barge_in_smart", "{slot}");
    for d in [empty, dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

async fn plugin_memory() {
    // 1 MiB cannot hold a Rust component's stack and data; the default 16 MiB can.
    let smart = plugins::component("barge-in-smart");
    let e = start_error(&[
        ("BARGE_IN_PLUGIN", smart.to_str().unwrap()),
        ("PLUGIN_MEMORY_MB", "1"),
    ])
    .await;
    // The component's memory against the 1 MiB limit set.
    assert!(
        e.contains("barge_in") && e.contains("exceeds the limit of 0x100000 bytes"),
        "{e}"
    );
    // At the default the same component loads (the host checks it in a fresh instance).
    let s = stack(&[("BARGE_IN_PLUGIN", smart.to_str().unwrap())]).await;
    assert_eq!(s.host.state.config.plugin_memory_mb, 16);
}

async fn candidate_versions() {
    // Every slot gets a shadow and a canary from the variables; the admin listing shows them
    // with their shares and the rollback policy, and a turn shows the shadow cap at work.
    let path = |name: &str| plugins::component(name).to_str().unwrap().to_string();
    let (keywords, persona, seed, smart, turn) = (
        path("intent-keywords"),
        path("prompt-persona"),
        path("barge-in-seed"),
        path("barge-in-smart"),
        path("turn-smart"),
    );
    let s = stack(&[
        ("ADMIN_TOKEN", ADMIN),
        ("INTENT_PLUGIN", "none"),
        ("INTENT_PLUGIN_SHADOW", &keywords),
        ("INTENT_PLUGIN_CANARY", &keywords),
        ("INTENT_PLUGIN_CANARY_PERCENT", "0"),
        ("PROMPT_PLUGIN", &persona),
        ("PROMPT_PLUGIN_SHADOW", &persona),
        ("PROMPT_PLUGIN_CANARY", &persona),
        ("PROMPT_PLUGIN_CANARY_PERCENT", "100"),
        ("BARGE_IN_PLUGIN", &smart),
        ("BARGE_IN_PLUGIN_SHADOW", &seed),
        ("BARGE_IN_PLUGIN_CANARY", &seed),
        ("BARGE_IN_PLUGIN_CANARY_PERCENT", "35"),
        ("TURN_PLUGIN_SHADOW", &turn),
        ("TURN_PLUGIN_CANARY", &turn),
        ("TURN_PLUGIN_CANARY_PERCENT", "20"),
        ("TURN_MODEL", "none"),
        ("PLUGIN_CANARY_MARGIN_PCT", "7.5"),
        ("PLUGIN_CANARY_MIN_CALLS", "3"),
        ("PLUGIN_SHADOW_MAX_SESSIONS", "0"),
    ])
    .await;
    let (status, listing) = plugins::admin(s.host.addr, ADMIN, "GET", "/admin/plugins").await;
    assert_eq!(status, 200, "{listing}");
    for (slot, shadow, canary, percent) in [
        ("intent", "intent_keywords", "intent_keywords", 0),
        ("prompt", "prompt_persona", "prompt_persona", 100),
        ("barge_in", "barge_in_seed", "barge_in_seed", 35),
        ("turn", "turn_smart", "turn_smart", 20),
    ] {
        let entry = plugins::slot_entry(&listing, slot);
        assert_eq!(entry["shadow"]["plugin"], shadow, "{entry}");
        assert_eq!(entry["canary"]["plugin"], canary, "{entry}");
        assert_eq!(entry["canary"]["percent"], percent, "{entry}");
        assert_eq!(entry["canary"]["policy"]["margin"], 0.075, "{entry}");
        assert_eq!(entry["canary"]["policy"]["min_calls"], 3, "{entry}");
    }
    // No session may be shadowed, so the turn's intent and prompt calls are not compared; the
    // prompt canary (100 %) served the turn.
    typed_turn(&s, "what is the weather in paris").await;
    let addr = s.host.addr;
    assert!(
        metric(
            addr,
            "voice_plugin_shadow_sessions_skipped_total{slot=\"intent\"}"
        )
        .await
            >= 1
    );
    assert_eq!(
        metric(addr, "voice_plugin_shadow_calls_total{slot=\"intent\"}").await,
        0
    );
    let (_, listing) = plugins::admin(addr, ADMIN, "GET", "/admin/plugins").await;
    assert_eq!(
        plugins::slot_entry(&listing, "prompt")["canary"]["usage"]["sessions"],
        1,
        "{listing}"
    );
}

async fn plugin_fault_limits() {
    // A barge-in plug-in that traps on "boom": the user talks over the agent saying it, once.
    let trap = plugins::component("test-hostile-trap");
    let s = CloudStack::start(
        DeepgramScript::new(["boom goes the drum"]),
        OpenAiScript::default().reply("story", STORY),
        ElevenLabsScript::default(),
        &[
            ("BARGE_IN_PLUGIN", trap.to_str().unwrap()),
            ("ADMIN_TOKEN", ADMIN),
            ("PLUGIN_SESSION_FAULT_LIMIT", "1"),
            ("PLUGIN_QUARANTINE_SESSIONS", "1"),
            ("PLUGIN_QUARANTINE_BACKOFF_MS", "600000"),
        ],
    )
    .await;
    let addr = s.host.addr;
    let mut mic = microphone(&s).await;
    let story = mic.ask_after_ready("tell me a long story").await;
    mic.audio(500 * 32).await;
    mic.say(&speech::utterance(1800, 0));
    mic.until("the story's end", is("agent_done", story)).await;
    let faults = "voice_plugin_faults_total{slot=\"barge_in\",kind=\"trap\"}";
    let start = std::time::Instant::now();
    while metric(addr, faults).await == 0 {
        assert!(start.elapsed() < LIMIT, "the plug-in never trapped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let slot = admin_slot(&s, "barge_in").await;
    // One fault, and the first: the session is benched at once (the default waits for 5) and
    // the version quarantined (the default waits for 3 sessions).
    assert_eq!(metric(addr, faults).await, 1);
    assert_eq!(
        metric(
            addr,
            "voice_plugin_sessions_benched_total{slot=\"barge_in\"}"
        )
        .await,
        1
    );
    assert_eq!(slot["quarantined"], true, "{slot}");
    assert_eq!(
        metric(addr, "voice_plugin_degraded{slot=\"barge_in\"}").await,
        1
    );
}

async fn protected_patterns() {
    // A barge-in interrupts at once (no minimum, no word threshold) 0.5 s into a story whose
    // first sentence (about 4 s of speech) the pattern protects: the interruption waits for
    // that sentence's end, so all of it was heard. Unprotected, about 0.7 s of it would be.
    let s = CloudStack::start(
        DeepgramScript::new(["hold on a moment"]),
        OpenAiScript::default().reply("story", STORY),
        ElevenLabsScript::default(),
        &[
            ("TTS_MIN_DURATION_MS", "0"),
            ("TTS_BARGE_THRESHOLD_WORDS", "0"),
            ("PROTECTED_PATTERNS", "(?i)lighthouse keeper"),
        ],
    )
    .await;
    let mut mic = microphone(&s).await;
    let story = mic.ask_after_ready("tell me a long story").await;
    mic.audio(500 * 32).await;
    mic.say(&speech::utterance(1800, 0));
    let done = mic.until("the story's end", is("agent_done", story)).await;
    assert_eq!(done["interrupted"], true, "{done}");
    let heard = done["text"].as_str().unwrap();
    let first = "Once upon a time there was a lighthouse keeper who counted ships.";
    assert!(
        heard.starts_with(first) && heard.len() < STORY.len(),
        "heard {heard:?}"
    );
}
