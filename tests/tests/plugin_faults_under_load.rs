//! Plug-in faults under load: fifty sessions talk over the agent at once while the barge-in
//! slot is swapped, through the admin API, to a build that traps, one that loops for ever and
//! one that allocates without bound (each faults when the user's words contain "boom"), and
//! then to a component of the wrong world. In every round each session stays open and hears
//! no error; its barge-in is decided by the built-in policy when the plug-in faults, so the
//! story is interrupted and the words are answered in full. The faults are counted by kind,
//! readiness stays up, the wrong world is refused while the last version keeps serving.
//!
//! The only test in its binary: `/metrics` is process-wide.

use futures_util::future::join_all;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics::{metric, sessions_become};
use voice_tests::microphone::Microphone;
use voice_tests::{plugins, speech};

const SESSIONS: usize = 50;
const TOKEN: &str = "test-admin-token-0123456789abcdefghij";
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted the ships that passed his rock, and every night he wrote their names in a thick blue book.";
const REPLY: &str = "It is sunny in Paris today.";
/// What the recogniser hears in every barge-in: the hostile builds fault on "boom".
const WORDS: &str = "boom what is the weather";
const LIMIT: Duration = Duration::from_secs(60);

/// Every session asks for a story and talks over it; each story must be interrupted and the
/// words answered in full, with no error and the session open.
async fn barge_in_round(what: &str, mics: &mut [Microphone]) {
    join_all(mics.iter_mut().enumerate().map(|(i, m)| async move {
        m.log.clear();
        m.send(json!({"type": "text", "text": "tell me a story"}));
        let story = m.until("the story", |v| v["type"] == "agent_text").await["turn"].as_u64();
        // 300 ms into the story, a second of speech over it.
        m.audio(300 * 32).await;
        m.say(&speech::utterance(1000, 600));
        let ended = m
            .until("the story's interrupt or end", |v| {
                (v["type"] == "interrupt" || v["type"] == "agent_done")
                    && v["turn"].as_u64() == story
            })
            .await;
        assert_eq!(
            ended["type"], "interrupt",
            "{what}: session {i}: {:#?}",
            m.log
        );
        let done = m
            .until("the answer to the barge-in", |v| {
                v["type"] == "agent_done" && v["turn"].as_u64() > story
            })
            .await;
        assert_eq!(done["interrupted"], false, "{what}: session {i}: {done}");
        assert_eq!(done["text"], REPLY, "{what}: session {i}");
        let errors: Vec<&Value> = m.of_type("error");
        assert!(errors.is_empty(), "{what}: session {i}: {errors:?}");
    }))
    .await;
}

async fn faults(addr: SocketAddr, kind: &str) -> u64 {
    metric(
        addr,
        &format!("voice_plugin_faults_total{{slot=\"barge_in\",kind=\"{kind}\"}}"),
    )
    .await
}

async fn ready(addr: SocketAddr) -> bool {
    reqwest::get(format!("http://{addr}/readyz"))
        .await
        .expect("GET /readyz")
        .status()
        .is_success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_ride_out_hostile_barge_in_plugins_swapped_under_them() {
    let dir = std::env::temp_dir().join(format!("voice-plugin-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("barge_in.wasm");
    let read = |name: &str| std::fs::read(plugins::component(name)).expect("plug-in build");
    plugins::install(&file, &read("test-hostile-trap"));
    let s = CloudStack::start(
        DeepgramScript {
            fallback: WORDS.into(),
            ..Default::default()
        },
        OpenAiScript::default()
            .reply("story", STORY)
            .reply("weather", REPLY),
        ElevenLabsScript::default(),
        &[
            ("BARGE_IN_PLUGIN", file.to_str().unwrap()),
            ("INTENT_PLUGIN", "none"),
            ("PROMPT_PLUGIN", "none"),
            ("ADMIN_TOKEN", TOKEN),
            ("PLUGIN_WATCH", "false"),
            // A small cap, so the memory bomb meets it within a few pages' worth of CPU.
            ("PLUGIN_MEMORY_MB", "4"),
            // The built-in policy interrupts on the first word at any point of the reply.
            ("TTS_MIN_DURATION_MS", "0"),
            ("TTS_BARGE_THRESHOLD_WORDS", "1"),
            ("MAX_SESSIONS_PER_IP", "0"),
            ("CONNECT_RATE_PER_MIN", "0"),
            ("TEXT_TURNS_PER_MIN", "0"),
        ],
    )
    .await;
    let addr = s.host.addr;
    let mut mics = Microphone::many_ready(addr, SESSIONS).await;

    // (build, the kinds of fault that may stop it). Filling even a small memory takes CPU: on
    // a loaded machine the CPU deadline may end the memory bomb before the memory cap does.
    let hostile: [(&str, &[&str]); 3] = [
        ("test-hostile-trap", &["trap"]),
        ("test-hostile-loop", &["deadline"]),
        ("test-hostile-alloc", &["memory", "deadline"]),
    ];
    for (build, stopped_by) in hostile {
        // The first is loaded already: reloading the same bytes keeps its version.
        plugins::install(&file, &read(build));
        let (status, body) = plugins::admin(addr, TOKEN, "POST", "/admin/plugins/reload").await;
        assert_eq!(status, 200, "{build}: {body}");
        let kinds: Vec<&str> = stopped_by.to_vec();
        let mut before = Vec::new();
        for kind in &kinds {
            before.push(faults(addr, kind).await);
        }
        barge_in_round(build, &mut mics).await;
        let mut counted = 0;
        for (kind, before) in kinds.iter().zip(&before) {
            counted += faults(addr, kind).await - before;
        }
        assert!(counted > 0, "{build}: no {stopped_by:?} fault was counted");
        assert!(ready(addr).await, "{build}: /readyz went down");
    }

    // A component of the wrong world: refused; the version serving stays.
    let (_, listed) = plugins::admin(addr, TOKEN, "GET", "/admin/plugins").await;
    let serving = plugins::version(&listed, "barge_in");
    plugins::install(&file, &read("test-hostile-wrong-world"));
    let (status, body) = plugins::admin(addr, TOKEN, "POST", "/admin/plugins/reload").await;
    assert_eq!(status, 422, "{body}");
    let (_, listed) = plugins::admin(addr, TOKEN, "GET", "/admin/plugins").await;
    assert_eq!(plugins::version(&listed, "barge_in"), serving);
    barge_in_round("after a refused component", &mut mics).await;
    assert!(ready(addr).await);

    for m in &mics {
        m.send(json!({"type": "stop"}));
    }
    sessions_become(addr, 0, LIMIT).await;
    drop(mics);
    let _ = std::fs::remove_dir_all(&dir);
}
