//! Hot swap through the running server: while sessions take turns, the prompt plug-in file is
//! replaced (write-then-rename) with a new version and then with a broken file. No session is
//! dropped or sees an error, the new version is served, and the broken one is refused while the
//! previous version stays.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::plugins;

const TOKEN: &str = "test-admin-token-0123456789abcdefghij";
const LONG: Duration = Duration::from_secs(30);

/// The same component with a custom section appended: a new version (new content hash) that
/// behaves the same, as a rebuilt plug-in would.
fn new_version(bytes: &[u8]) -> Vec<u8> {
    let name = b"voice-host-version";
    let payload = b"2";
    let mut out = bytes.to_vec();
    let body_len = 1 + name.len() + payload.len();
    out.push(0); // custom section id
    out.push(body_len as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(payload);
    out
}

fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("wasm.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn admin(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}{path}");
    let req = if method == "POST" {
        client.post(url)
    } else {
        client.get(url)
    };
    let resp = req.bearer_auth(TOKEN).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn prompt_version(status: &Value) -> String {
    let slots = status
        .as_array()
        .or_else(|| status["slots"].as_array())
        .expect("slot list");
    let prompt = slots
        .iter()
        .find(|s| s["slot"] == "prompt")
        .expect("prompt slot");
    prompt["version"].as_str().unwrap().to_string()
}

/// A session taking `turns` typed turns one after another; returns the agent_done texts.
async fn talk(addr: std::net::SocketAddr, turns: usize) -> Vec<String> {
    let mut c = AgentClient::start(
        addr,
        json!({"encoding": "pcm16", "sample_rate": 16000}),
        None,
    )
    .await;
    let mut replies = Vec::new();
    for i in 0..turns {
        c.send_json(json!({"type": "text", "text": format!("question number {i}")}))
            .await;
        let done = c.expect_type("agent_done", LONG).await;
        assert_eq!(done["interrupted"], false);
        replies.push(done["text"].as_str().unwrap().to_string());
    }
    assert!(
        c.of_type("error").is_empty(),
        "errors: {:?}",
        c.of_type("error")
    );
    assert!(c.closed.is_none(), "session was closed: {:?}", c.closed);
    c.close().await;
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_plugins_under_load_drops_no_session() {
    let dir = std::env::temp_dir().join(format!("voice-host-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prompt.wasm");
    let original = std::fs::read(plugins::component("prompt-persona")).unwrap();
    replace(&file, &original);
    let file_str = file.to_str().unwrap().to_string();
    let s = CloudStack::start(
        DeepgramScript::new(["hello"]),
        OpenAiScript::default().reply("question", "Sure. Here is a short answer."),
        ElevenLabsScript::default(),
        &[
            ("PROMPT_PLUGIN", &file_str),
            ("ADMIN_TOKEN", TOKEN),
            ("PLUGIN_DEADLINE_MS", "200"),
            ("PLUGIN_WATCH", "false"),
        ],
    )
    .await;
    let addr = s.host.addr;
    let (status, before) = admin(addr, "GET", "/admin/plugins").await;
    assert_eq!(status, 200, "{before}");
    let v1 = prompt_version(&before);

    let sessions: Vec<_> = (0..4).map(|_| tokio::spawn(talk(addr, 4))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A new version: accepted and served.
    replace(&file, &new_version(&original));
    let (status, after) = admin(addr, "POST", "/admin/plugins/reload").await;
    assert_eq!(status, 200, "{after}");
    let (_, listed) = admin(addr, "GET", "/admin/plugins").await;
    let v2 = prompt_version(&listed);
    assert_ne!(v1, v2, "the new version is loaded");

    // A broken file: refused, the previous version stays.
    replace(&file, &original[..original.len() / 2]);
    let (status, refused) = admin(addr, "POST", "/admin/plugins/reload").await;
    assert_eq!(status, 422, "{refused}");
    let (_, listed) = admin(addr, "GET", "/admin/plugins").await;
    assert_eq!(
        prompt_version(&listed),
        v2,
        "a broken file never replaces a working version"
    );

    // Sessions started after the swaps are served too.
    let late = tokio::spawn(talk(addr, 2));
    for s in sessions {
        let replies = s.await.expect("session task");
        assert_eq!(replies.len(), 4);
        assert!(
            replies.iter().all(|r| r == "Sure. Here is a short answer."),
            "{replies:?}"
        );
    }
    assert_eq!(late.await.unwrap().len(), 2);

    // Every LLM request had the persona the plug-in puts into the system message.
    let requests = s.openai.requests();
    assert_eq!(requests.len(), 4 * 4 + 2);
    for r in &requests {
        let system = r.body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(system.contains("friendly voice assistant"), "{system}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
