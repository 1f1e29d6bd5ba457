//! Plug-ins pulled from an OCI registry (a local `docker-registry`) instead of read from a file:
//! `voice-host plugins push` publishes a component under a tag; hosts configured with the tag
//! serve it, and when the tag moves every host rolls to the new version, with open sessions
//! switching at their next turn; a host pinned to a digest stays on it; a version whose blob does
//! not match its digest is refused while the running one keeps serving and `/readyz` says why;
//! `plugins check` reads a reference; a failed first pull stops the host from starting.
//!
//! The two versions are the reference intent analyzer and the same component with its `weather`
//! intent renamed `climate`: the prompt plug-in names the intent in the LLM's system message, so
//! which version decided a turn is visible in the request the model received.

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::{self, CloudStack};
use voice_tests::oci_registry::{sha256_digest, OciRegistry};
use voice_tests::plugins::{self, admin_with, slot_entry};

const ADMIN: &str = "oci-test-admin-token-0123456789abcdefghij";
/// Liveness bound on every wait (a poll of the admin listing, a turn, a CLI run).
const LIMIT: Duration = Duration::from_secs(30);
const REPLY: &str = "Okay.";
const REPO: &str = "voice/intent";
/// What the prompt plug-in writes into the system message when v1 (the reference analyzer)
/// decided the turn, and when v2 (the renamed intent) did.
const V1_SAYS: &str = "intent appears to be \"weather\"";
const V2_SAYS: &str = "intent appears to be \"climate\"";

/// The reference intent analyzer with its `weather` intent named `name` (seven letters, as
/// `weather`), so every offset in the component stays, and the same rules; only the decision's
/// name differs.
fn renamed_intent(bytes: &[u8], name: &str) -> Vec<u8> {
    // The intent's name is stored right before its phrases.
    plugins::patched(
        bytes,
        "weatherweather, forecast",
        &format!("{name}weather, forecast"),
    )
}

/// v1 and v2 as files under the registry's temporary directory.
fn versions(reg: &OciRegistry) -> (PathBuf, PathBuf) {
    let v1 = plugins::component("intent-keywords");
    let v2 = reg.dir().join("intent_climate.wasm");
    std::fs::write(
        &v2,
        renamed_intent(&std::fs::read(&v1).expect("read v1"), "climate"),
    )
    .unwrap();
    (v1, v2)
}

/// A version no host in this process pulls intact (the intent named `drizzle`): pulled
/// components are kept by the digest of their bytes, so a version pulled intact before would be
/// served from the host's own store however damaged the registry's copy is.
fn unseen_version(reg: &OciRegistry, v1: &Path) -> PathBuf {
    let file = reg.dir().join("intent_drizzle.wasm");
    std::fs::write(
        &file,
        renamed_intent(&std::fs::read(v1).expect("read v1"), "drizzle"),
    )
    .unwrap();
    file
}

/// Runs `voice-host ARGS` as a user would, with only `PLUGIN_OCI_INSECURE` naming the test
/// registry and a home and compiled-component cache of its own; killed if it outlives
/// [`LIMIT`].
async fn cli(reg: &OciRegistry, args: &[&str]) -> Output {
    cli_env(reg, args, &[]).await
}

/// [`cli`] with more environment variables (`env`).
async fn cli_env(reg: &OciRegistry, args: &[&str], env: &[(&str, &str)]) -> Output {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let home = reg.dir().join(format!(
        "cli-{}",
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&home).unwrap();
    let run = tokio::process::Command::new(voice_tests::binary::voice_host())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("PLUGIN_OCI_INSECURE", &reg.addr)
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("voice-host {args:?} did not end"))
        .expect("voice-host runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The failed run's single line of reason on stderr.
fn one_line_reason(what: &str, out: &Output) -> String {
    assert!(!out.status.success(), "{what} succeeded: {out:?}");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: one line on stderr: {stderr:?}");
    lines[0].to_string()
}

/// A version published with `plugins push`.
struct Pushed {
    /// `oci://127.0.0.1:PORT/voice/intent@sha256:<hex>`, as the CLI printed it.
    pinned: String,
    /// `sha256:<hex>`, the manifest's digest.
    digest: String,
}

/// `voice-host plugins push FILE REFERENCE`: succeeds and prints the pinned reference, whose
/// digest is the one the registry now has for the tag.
async fn push(reg: &OciRegistry, file: &Path, reference: &str) -> Pushed {
    let out = cli(reg, &["plugins", "push", file.to_str().unwrap(), reference]).await;
    assert!(
        out.status.success(),
        "plugins push {reference}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    let pinned = stdout
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .find(|w| w.starts_with("oci://") && w.contains("@sha256:"))
        .unwrap_or_else(|| panic!("no pinned reference in: {stdout}"))
        .to_string();
    let (repo_ref, hex) = pinned.split_once("@sha256:").unwrap();
    assert!(
        hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()),
        "{pinned}"
    );
    let digest = format!("sha256:{hex}");
    let (repo, tag) = reference
        .strip_prefix(&format!("oci://{}/", reg.addr))
        .and_then(|r| r.rsplit_once(':'))
        .expect("a tagged reference of the test registry");
    assert_eq!(repo_ref, reg.reference(repo), "{stdout}");
    assert_eq!(
        reg.manifest_digest(repo, tag).await,
        digest,
        "the tag points at the printed digest"
    );
    let manifest = reg.manifest(repo, tag).await.expect("the pushed manifest");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    let world = manifest["annotations"]["dev.voice-host.plugin.world"]
        .as_str()
        .unwrap_or_default();
    assert!(world.contains("intent-analyzer"), "{manifest}");
    Pushed { pinned, digest }
}

/// Settings of a host whose intent slot is `reference`, polled every second, with the prompt
/// plug-in that names the intent to the model.
fn oci_settings(reg: &OciRegistry, reference: &str) -> Vec<(String, String)> {
    let prompt = plugins::component("prompt-persona");
    [
        ("INTENT_PLUGIN", reference),
        ("PROMPT_PLUGIN", prompt.to_str().unwrap()),
        ("PLUGIN_POLL_S", "1"),
        ("PLUGIN_OCI_INSECURE", &reg.addr),
        ("ADMIN_TOKEN", ADMIN),
        // A loaded test machine must not turn a healthy call into a deadline fault.
        ("PLUGIN_DEADLINE_MS", "500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn pairs(settings: &[(String, String)]) -> Vec<(&str, &str)> {
    settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

async fn stack(settings: &[(String, String)]) -> CloudStack {
    CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default().reply("", REPLY),
        ElevenLabsScript::default(),
        &pairs(settings),
    )
    .await
}

async fn session(addr: SocketAddr) -> AgentClient {
    AgentClient::start_pcm16(addr).await
}

/// Turn `n` of session `who`: a weather question, answered whole. Returns the system message
/// of the LLM request it made (the fake serves every host, so the question names the session).
async fn turn(s: &CloudStack, c: &mut AgentClient, who: &str, n: usize) -> String {
    let question = format!("{who} turn {n}: what is the weather in paris");
    c.send_json(json!({"type": "text", "text": question})).await;
    let done = c.expect_type("agent_done", LIMIT).await;
    assert_eq!(done["interrupted"], false, "{who}: {done}");
    assert_eq!(done["text"], REPLY, "{who}: {done}");
    let requests = s.openai.requests();
    let request = requests
        .iter()
        .find(|r| {
            r.body["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["content"] == question.as_str())
        })
        .unwrap_or_else(|| panic!("{who}: no LLM request for turn {n}"));
    request.body["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Takes turn `n` on `c` and checks the intent the prompt plug-in passed to the model.
async fn decided_by(s: &CloudStack, c: &mut AgentClient, who: &str, n: usize, says: &str) {
    let system = turn(s, c, who, n).await;
    assert!(system.contains(says), "{who} turn {n}: {system}");
}

/// The session saw no error and is still open.
async fn no_trouble(c: AgentClient, who: &str) {
    assert!(
        c.of_type("error").is_empty(),
        "{who}: {:?}",
        c.of_type("error")
    );
    assert!(c.closed.is_none(), "{who} was closed: {:?}", c.closed);
    c.close().await;
}

/// The intent slot of the host at `addr`, from `GET /admin/plugins`.
async fn intent_slot(addr: SocketAddr) -> Value {
    let (status, body) = admin_with(addr, ADMIN, "GET", "/admin/plugins", None).await;
    assert_eq!(status, 200, "{body}");
    slot_entry(&body, "intent").clone()
}

/// Polls the intent slot of the host at `addr` until `done` holds; returns it.
async fn wait_for_slot(addr: SocketAddr, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let entry = intent_slot(addr).await;
        if done(&entry) {
            return entry;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {entry}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` of the host at `addr`, which must be 200 (ready): the lines of its body that
/// mention an `oci://` reference.
async fn ready_with_oci_lines(addr: SocketAddr) -> Vec<String> {
    let resp = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .expect("readyz");
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("a JSON body");
    assert_eq!(status, 200, "{body}");
    let mut lines = Vec::new();
    strings_with(&body, "oci://", &mut lines);
    lines.into_iter().map(str::to_string).collect()
}

/// Every string in `v` that contains `needle`.
fn strings_with<'a>(v: &'a Value, needle: &str, found: &mut Vec<&'a str>) {
    match v {
        Value::String(s) if s.contains(needle) => found.push(s),
        Value::Array(items) => items.iter().for_each(|i| strings_with(i, needle, found)),
        Value::Object(map) => map.values().for_each(|i| strings_with(i, needle, found)),
        _ => {}
    }
}

/// Prepares (without serving) a host whose intent slot is `intent`, reaching the registry over
/// plain HTTP, with `extra` settings.
async fn prepare(
    reg: &OciRegistry,
    intent: &str,
    extra: &[(&str, &str)],
) -> Result<voice_host::server::Prepared, voice_host::server::StartError> {
    let mut pairs = vec![
        ("DEEPGRAM_API_KEY", host::DEEPGRAM_KEY),
        ("OPENAI_API_KEY", host::OPENAI_KEY),
        ("ELEVENLABS_API_KEY", host::ELEVENLABS_KEY),
        ("INTENT_PLUGIN", intent),
        ("PLUGIN_OCI_INSECURE", reg.addr.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let cfg = host::config(&pairs);
    tokio::task::spawn_blocking(move || voice_host::server::prepare(cfg))
        .await
        .expect("prepare ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_rolls_every_host_and_its_open_sessions() {
    let Some(reg) = OciRegistry::start().await else {
        return;
    };
    let (v1_file, v2_file) = versions(&reg);
    let live = reg.reference("voice/intent:live");
    let v1 = push(&reg, &v1_file, &live).await;

    let settings = oci_settings(&reg, &live);
    let s = stack(&settings).await;
    let other = s.another_host(&pairs(&settings)).await;
    let hosts = [("first", s.host.addr), ("second", other.addr)];

    // Both serve v1: its decision reaches the model, the listing names the tag and its digest.
    let mut sessions = Vec::new();
    for (who, addr) in hosts {
        let mut c = session(addr).await;
        decided_by(&s, &mut c, who, 1, V1_SAYS).await;
        sessions.push(c);

        let (_, listing) = admin_with(addr, ADMIN, "GET", "/admin/plugins", None).await;
        let intent = slot_entry(&listing, "intent");
        assert_eq!(intent["source"], live.as_str(), "{who}: {intent}");
        assert_eq!(intent["digest"], v1.digest.as_str(), "{who}: {intent}");
        let prompt = slot_entry(&listing, "prompt");
        assert_eq!(prompt["source"], Value::Null, "a file: {prompt}");
        assert_eq!(prompt["digest"], Value::Null, "a file: {prompt}");
    }

    // The tag moves: both hosts pull v2 on their own.
    let v2 = push(&reg, &v2_file, &live).await;
    assert_ne!(v1.digest, v2.digest);
    for (who, addr) in hosts {
        let entry = wait_for_slot(addr, &format!("{who} host on v2"), |e| {
            e["digest"] == v2.digest.as_str()
        })
        .await;
        assert_eq!(entry["source"], live.as_str(), "{who}: {entry}");
        assert_eq!(entry["last_error"], Value::Null, "{who}: {entry}");
    }

    // The sessions opened before the move take their next turn with v2.
    for ((who, _), mut c) in hosts.into_iter().zip(sessions) {
        decided_by(&s, &mut c, who, 2, V2_SAYS).await;
        no_trouble(c, who).await;
    }
    // So does a new one.
    let mut late = session(other.addr).await;
    decided_by(&s, &mut late, "late", 1, V2_SAYS).await;
    no_trouble(late, "late").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_digest_stays_put_and_a_corrupt_blob_is_refused() {
    let Some(reg) = OciRegistry::start().await else {
        return;
    };
    let (v1_file, _) = versions(&reg);
    let v2_file = unseen_version(&reg, &v1_file);
    let live = reg.reference("voice/intent:live");
    let v1 = push(&reg, &v1_file, &live).await;

    // One host pinned to v1's digest, one following the tag.
    let s = stack(&oci_settings(&reg, &v1.pinned)).await;
    let pinned = s.host.addr;
    let tagged_host = s.another_host(&pairs(&oci_settings(&reg, &live))).await;
    let tagged = tagged_host.addr;
    let mut on_pinned = session(pinned).await;
    let mut on_tagged = session(tagged).await;
    decided_by(&s, &mut on_pinned, "pinned", 1, V1_SAYS).await;
    decided_by(&s, &mut on_tagged, "tagged", 1, V1_SAYS).await;
    let entry = intent_slot(pinned).await;
    assert_eq!(entry["source"], v1.pinned.as_str(), "{entry}");
    assert_eq!(entry["digest"], v1.digest.as_str(), "{entry}");

    // v2 is published under another tag, its layer damaged in the registry's storage, then the
    // followed tag is moved to it. The registry serves the damaged bytes under the layer's
    // digest, before and after the second push.
    push(&reg, &v2_file, &reg.reference("voice/intent:staging")).await;
    let layer = reg.manifest_layer_digest(REPO, "staging").await;
    let good = sha256_digest(&std::fs::read(&v2_file).unwrap());
    assert_eq!(layer, good, "the layer is the component");
    reg.corrupt_blob(&layer);
    assert_ne!(sha256_digest(&reg.blob(REPO, &layer).await), layer);
    let moved = push(&reg, &v2_file, &live).await;
    assert_eq!(reg.manifest_layer_digest(REPO, "live").await, layer);
    let served = reg.blob(REPO, &layer).await;
    assert_ne!(
        sha256_digest(&served),
        layer,
        "pushing again did not repair the blob"
    );
    assert_ne!(moved.digest, v1.digest);

    // The tagged host refuses the new version and says why; v1 keeps serving.
    let entry = wait_for_slot(tagged, "the damaged version refused", |e| {
        e["last_error"].is_string()
    })
    .await;
    assert_eq!(entry["digest"], v1.digest.as_str(), "{entry}");
    assert_eq!(entry["source"], live.as_str(), "{entry}");
    let why = entry["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        why.contains("digest") && why.contains("match"),
        "names the digest mismatch: {why}"
    );
    decided_by(&s, &mut on_tagged, "tagged", 2, V1_SAYS).await;
    let lines = ready_with_oci_lines(tagged).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("intent") && l.contains(live.as_str())),
        "/readyz names the slot and the reference: {lines:?}"
    );

    // The pinned host never moved, and has nothing to report.
    let entry = intent_slot(pinned).await;
    assert_eq!(entry["digest"], v1.digest.as_str(), "{entry}");
    assert_eq!(entry["last_error"], Value::Null, "{entry}");
    decided_by(&s, &mut on_pinned, "pinned", 2, V1_SAYS).await;
    let lines = ready_with_oci_lines(pinned).await;
    assert!(lines.is_empty(), "{lines:?}");

    no_trouble(on_pinned, "pinned").await;
    no_trouble(on_tagged, "tagged").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_checks_a_reference_and_refuses_what_it_cannot_use() {
    let Some(reg) = OciRegistry::start().await else {
        return;
    };
    let (v1_file, _) = versions(&reg);
    let live = reg.reference("voice/intent:live");
    push(&reg, &v1_file, &live).await;

    let out = cli(&reg, &["plugins", "check", &live]).await;
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report = text(&out.stdout);
    assert!(report.contains("fits slot intent "), "{report}");

    // A tag nobody pushed.
    let nothing = reg.reference("voice/nothing:here");
    let out = cli(&reg, &["plugins", "check", &nothing]).await;
    one_line_reason("plugins check of a missing tag", &out);

    // A damaged artifact (a fresh cache, so nothing checked before is reused).
    reg.corrupt_blob(&reg.manifest_layer_digest(REPO, "live").await);
    let out = cli(&reg, &["plugins", "check", &live]).await;
    one_line_reason("plugins check of a damaged artifact", &out);

    // A file that is not a component is not published.
    let junk = reg.dir().join("not-a-component.wasm");
    std::fs::write(&junk, b"this is not a wasm component").unwrap();
    let broken = reg.reference("voice/broken:live");
    let out = cli(&reg, &["plugins", "push", junk.to_str().unwrap(), &broken]).await;
    assert!(!out.status.success(), "{out:?}");
    assert!(!text(&out.stderr).trim().is_empty(), "says why: {out:?}");
    assert_eq!(reg.manifest("voice/broken", "live").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_first_pull_fails_does_not_start() {
    let Some(reg) = OciRegistry::start().await else {
        return;
    };
    let (v1_file, _) = versions(&reg);
    let live = reg.reference("voice/intent:live");
    push(&reg, &v1_file, &live).await;
    let missing = reg.reference("voice/intent:never-pushed");

    // The same registry, a pushed tag: the host starts.
    if let Err(e) = prepare(&reg, &live, &[]).await {
        panic!("the host did not start on {live}: {e}");
    }

    // A tag nobody pushed, and nothing pulled before: it does not, and says why.
    let Err(e) = prepare(&reg, &missing, &[]).await else {
        panic!("the host prepared with {missing}, which does not exist");
    };
    assert!(e.0.contains(&missing), "names the reference: {}", e.0);
}

/// The password of the private registry, and its bcrypt hash (cost 5) as htpasswd stores it.
const PASSWORD: &str = "registry-test-password-0123";
const PASSWORD_BCRYPT: &str = "$2b$05$jg2MT27nSp5Et57e9hsJG.HsD/fCe9Re./Lny0pjvu4P.5/XB4Q6i";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_registry_is_reached_with_its_credentials_and_they_stay_secret() {
    let Some(reg) = OciRegistry::start_with_login("ci", PASSWORD_BCRYPT).await else {
        return;
    };
    let (v1_file, _) = versions(&reg);
    let v1 = v1_file.to_str().unwrap();
    let live = reg.reference("voice/private:live");
    let login = [
        ("PLUGIN_OCI_USERNAME", "ci"),
        ("PLUGIN_OCI_PASSWORD", PASSWORD),
    ];

    // Anonymous: refused, with one line that says so.
    let out = cli(&reg, &["plugins", "push", v1, &live]).await;
    let reason = one_line_reason("an anonymous push", &out).to_lowercase();
    assert!(
        reason.contains("unauthorized") || reason.contains("401"),
        "{reason}"
    );
    // Logged in: published; the password appears nowhere in what the command printed.
    let out = cli_env(&reg, &["plugins", "push", v1, &live], &login).await;
    let printed = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{printed}");
    assert!(!printed.contains(PASSWORD), "{printed}");
    let other = reg.reference("voice/private:other");
    let out = cli_env(&reg, &["plugins", "push", v1, &other], &login).await;
    assert!(out.status.success(), "{out:?}");

    // A host with the credentials pulls and serves it.
    let mut settings = oci_settings(&reg, &live);
    settings.extend(login.map(|(k, v)| (k.to_string(), v.to_string())));
    let s = stack(&settings).await;
    let mut c = session(s.host.addr).await;
    decided_by(&s, &mut c, "private", 1, V1_SAYS).await;
    assert_eq!(intent_slot(s.host.addr).await["source"], live.as_str());
    no_trouble(c, "private").await;

    // With a wrong password (and a reference it never pulled, so no earlier copy), a host does
    // not start, and its reason does not carry the password.
    let wrong = "not-the-registry-password-0123";
    let login = [
        ("PLUGIN_OCI_USERNAME", "ci"),
        ("PLUGIN_OCI_PASSWORD", wrong),
    ];
    let Err(e) = prepare(&reg, &other, &login).await else {
        panic!("a host started on {other} with a wrong password");
    };
    assert!(e.0.contains(&other), "names the reference: {}", e.0);
    assert!(!e.0.contains(wrong), "{}", e.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restarting_while_its_registry_is_down_starts_with_its_last_copy() {
    let Some(reg) = OciRegistry::start().await else {
        return;
    };
    let (v1_file, _) = versions(&reg);
    // A repository of its own: what a host pulled is remembered on disk by reference, and
    // another run may get the same port.
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let live = reg.reference(&format!(
        "voice/restart-{}-{unique}:live",
        std::process::id()
    ));
    let v1 = push(&reg, &v1_file, &live).await;
    let settings = oci_settings(&reg, &live);
    let s = stack(&settings).await;
    assert_eq!(intent_slot(s.host.addr).await["digest"], v1.digest.as_str());

    drop(reg);
    // A replica starting now cannot reach the registry: it serves the copy pulled before and
    // says why it may be stale.
    let again = s.another_host(&pairs(&settings)).await;
    let entry = intent_slot(again.addr).await;
    assert_eq!(entry["digest"], v1.digest.as_str(), "{entry}");
    let lines = ready_with_oci_lines(again.addr).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains("cannot update from") && l.contains(live.as_str())),
        "{lines:?}"
    );
    let mut c = session(again.addr).await;
    decided_by(&s, &mut c, "restarted", 1, V1_SAYS).await;
    no_trouble(c, "restarted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_and_a_shadow_are_pulled_from_the_registry_through_the_admin_endpoint() {
    let Some(reg) = OciRegistry::start().await else {
        return;
    };
    let (v1_file, v2_file) = versions(&reg);
    let live = reg.reference("voice/intent:live");
    let candidate = reg.reference("voice/intent:candidate");
    push(&reg, &v1_file, &live).await;
    push(&reg, &v2_file, &candidate).await;
    let s = stack(&oci_settings(&reg, &live)).await;
    let addr = s.host.addr;

    // A reference that does not exist is refused with its reason; nothing changes.
    let missing = reg.reference("voice/intent:missing");
    let (status, body) = admin_with(
        addr,
        ADMIN,
        "PUT",
        "/admin/plugins/intent/canary",
        Some(json!({ "path": missing, "percent": 100 })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains(&missing), "{body}");
    assert_eq!(intent_slot(addr).await["canary"], Value::Null);

    // The candidate as a shadow: pulled, loaded, counted, never heard.
    let (status, body) = admin_with(
        addr,
        ADMIN,
        "PUT",
        "/admin/plugins/intent/shadow",
        Some(json!({ "path": candidate })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        slot_entry(&body, "intent")["shadow"]["plugin"],
        "intent_climate",
        "{body}"
    );
    let mut shadowed = session(addr).await;
    decided_by(&s, &mut shadowed, "shadowed", 1, V1_SAYS).await;
    no_trouble(shadowed, "shadowed").await;

    // The candidate as a canary for every new session: it decides their turns.
    let (status, body) = admin_with(
        addr,
        ADMIN,
        "PUT",
        "/admin/plugins/intent/canary",
        Some(json!({ "path": candidate, "percent": 100 })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        slot_entry(&body, "intent")["canary"]["plugin"],
        "intent_climate",
        "{body}"
    );
    let mut on_canary = session(addr).await;
    decided_by(&s, &mut on_canary, "canary", 1, V2_SAYS).await;
    no_trouble(on_canary, "canary").await;
}
