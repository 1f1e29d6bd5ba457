//! Hot swap through the running server: while sessions take turns, the prompt plug-in file is
//! replaced (write-then-rename) with a version that gives the model another persona, and then
//! with a broken file. No session is dropped or sees an error; a session spanning the swap has
//! its turn in flight answered by the old version and its next turns shaped by the new one; the
//! broken file is refused while the new version stays.

use serde_json::json;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::{OpenAiRequest, OpenAiScript};
use voice_tests::host::CloudStack;
use voice_tests::plugins;

const TOKEN: &str = "test-admin-token-0123456789abcdefghij";
const LONG: Duration = Duration::from_secs(30);
const REPLY: &str = "Sure. Here is a short answer.";
const OLD: &str = "You are a friendly voice assistant";
const NEW: &str = "You are a cheerful voice assistant";

/// The same plug-in built with another default persona: the text differs, its length (and so
/// every offset in the component) does not.
fn other_persona(bytes: &[u8]) -> Vec<u8> {
    plugins::patched(bytes, OLD, NEW)
}

/// A typed turn by session `who`, numbered `n`, as the model sees it.
fn question(who: &str, n: usize) -> String {
    format!("{who} question {n}")
}

async fn session(addr: std::net::SocketAddr) -> AgentClient {
    AgentClient::start_pcm16(addr).await
}

/// Sends turn `n` of `who` and waits for its reply, which must be whole.
async fn turn(c: &mut AgentClient, who: &str, n: usize) {
    c.send_json(json!({"type": "text", "text": question(who, n)}))
        .await;
    let done = c.expect_type("agent_done", LONG).await;
    assert_eq!(done["interrupted"], false, "{who}: {done}");
    assert_eq!(done["text"], REPLY, "{who}");
}

/// The session ended well: no error, still open.
async fn no_trouble(c: AgentClient, who: &str) {
    assert!(
        c.of_type("error").is_empty(),
        "{who} errors: {:?}",
        c.of_type("error")
    );
    assert!(c.closed.is_none(), "{who} was closed: {:?}", c.closed);
    c.close().await;
}

/// Session `index` taking turns until told to stop; reports each answered turn. Returns how
/// many turns it took.
async fn chatter(
    addr: std::net::SocketAddr,
    index: usize,
    answered: mpsc::UnboundedSender<usize>,
    mut stop: watch::Receiver<bool>,
) -> usize {
    let who = format!("chatter{index}");
    let mut c = session(addr).await;
    let mut n = 0;
    while n == 0 || !*stop.borrow_and_update() {
        turn(&mut c, &who, n).await;
        answered.send(index).unwrap();
        n += 1;
    }
    no_trouble(c, &who).await;
    n
}

/// The persona each of `who`'s turns was shaped with, in order: `OLD`, `NEW` or the system
/// message itself when it has neither.
fn personas(requests: &[OpenAiRequest], who: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| {
            let messages = r.body["messages"].as_array().expect("messages");
            let last = messages.last().expect("a user turn");
            last["content"]
                .as_str()
                .is_some_and(|t| t.starts_with(&format!("{who} question")))
        })
        .map(|r| {
            let system = r.body["messages"][0]["content"]
                .as_str()
                .unwrap_or_default();
            [OLD, NEW]
                .into_iter()
                .find(|p| system.starts_with(p))
                .unwrap_or(system)
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_plugins_under_load_drops_no_session() {
    let dir = std::env::temp_dir().join(format!("voice-host-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prompt.wasm");
    let original = std::fs::read(plugins::component("prompt-persona")).unwrap();
    plugins::install(&file, &original);
    let file_str = file.to_str().unwrap().to_string();
    let s = CloudStack::start(
        DeepgramScript::new(["hello"]),
        OpenAiScript::default().reply("question", REPLY),
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
    let (status, before) = plugins::admin(addr, TOKEN, "GET", "/admin/plugins").await;
    assert_eq!(status, 200, "{before}");
    let v1 = plugins::version(&before, "prompt");

    // Sessions mid-conversation: each has had a turn answered before the swap.
    const CHATTERS: usize = 3;
    let (answered_tx, mut answered) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = watch::channel(false);
    let chatters: Vec<_> = (0..CHATTERS)
        .map(|i| tokio::spawn(chatter(addr, i, answered_tx.clone(), stop_rx.clone())))
        .collect();
    let mut seen = [0usize; CHATTERS];
    while seen.contains(&0) {
        seen[answered.recv().await.expect("a chatter's turn")] += 1;
    }

    // The spanning session: a turn, then a turn whose reply is streaming during the swap.
    let mut span = session(addr).await;
    turn(&mut span, "span", 0).await;
    span.send_json(json!({"type": "text", "text": question("span", 1)}))
        .await;
    span.expect_type("agent_text", LONG).await;

    // A new version: accepted and served.
    plugins::install(&file, &other_persona(&original));
    let (status, after) = plugins::admin(addr, TOKEN, "POST", "/admin/plugins/reload").await;
    assert_eq!(status, 200, "{after}");
    let (_, listed) = plugins::admin(addr, TOKEN, "GET", "/admin/plugins").await;
    let v2 = plugins::version(&listed, "prompt");
    assert_ne!(v1, v2, "the new version is loaded");
    // Turns answered from here on may have begun before the reload; the one after began later.
    while answered.try_recv().is_ok() {}

    // The turn in flight ends normally; the next one is shaped by the new version.
    let done = span.expect_type("agent_done", LONG).await;
    assert_eq!(done["interrupted"], false, "{done}");
    assert_eq!(done["text"], REPLY);
    turn(&mut span, "span", 2).await;

    // A broken file: refused, the new version stays and keeps serving.
    plugins::install(&file, &original[..original.len() / 2]);
    let (status, refused) = plugins::admin(addr, TOKEN, "POST", "/admin/plugins/reload").await;
    assert_eq!(status, 422, "{refused}");
    let (_, listed) = plugins::admin(addr, TOKEN, "GET", "/admin/plugins").await;
    assert_eq!(
        plugins::version(&listed, "prompt"),
        v2,
        "a broken file never replaces a working version"
    );
    turn(&mut span, "span", 3).await;
    no_trouble(span, "span").await;

    // A session started after the swaps has the new version from its first turn.
    let mut late = session(addr).await;
    turn(&mut late, "late", 0).await;
    no_trouble(late, "late").await;

    // Each chatter has begun (and finished) a turn after the swap before it is stopped.
    let mut since = [0usize; CHATTERS];
    while since.iter().any(|&n| n < 2) {
        since[answered.recv().await.expect("a chatter's turn")] += 1;
    }
    stop_tx.send(true).unwrap();
    let mut chatter_turns = Vec::new();
    for c in chatters {
        chatter_turns.push(c.await.expect("chatter task"));
    }

    let requests = s.openai.requests();
    assert_eq!(
        personas(&requests, "span"),
        [OLD, OLD, NEW, NEW],
        "before the swap, in flight during it, after it, after the refused file"
    );
    assert_eq!(personas(&requests, "late"), [NEW]);
    for (i, turns) in chatter_turns.iter().enumerate() {
        let seen = personas(&requests, &format!("chatter{i}"));
        assert_eq!(seen.len(), *turns, "one request per turn");
        // Old until the session's first turn boundary after the swap, then new for good.
        let switched = seen.iter().position(|p| p == NEW).unwrap_or(seen.len());
        assert!(
            switched >= 1 && switched < seen.len(),
            "chatter{i} spans the swap: {seen:?}"
        );
        assert!(
            seen[..switched].iter().all(|p| p == OLD) && seen[switched..].iter().all(|p| p == NEW),
            "chatter{i}: {seen:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
