//! What the `voice-host` binary writes to its log about who gets in: an endpoint open to anyone
//! is warned about once at start, and a session token (valid, expired, forged or malformed, by
//! query or by subprotocol entry) never appears in the log, even at debug level, while the
//! subject it names does.

use serde_json::{json, Value};
use voice_host::admission::token::{mint_hs256, now_s, Claims};
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::{DeepgramScript, FakeDeepgram};
use voice_tests::fake_elevenlabs::{ElevenLabsScript, FakeElevenLabs};
use voice_tests::fake_openai::{FakeOpenAi, OpenAiScript};
use voice_tests::host::{DEEPGRAM_KEY, ELEVENLABS_KEY, OPENAI_KEY};
use voice_tests::host_process::{HostProcess, LIMIT};

const SECRET: &str = "logs-test-secret-0123456789abcdef";
const SUBJECT: &str = "user-7f3a";

/// The fake providers, keyed as the host is configured.
struct Providers {
    deepgram: FakeDeepgram,
    openai: FakeOpenAi,
    elevenlabs: FakeElevenLabs,
}

impl Providers {
    async fn start() -> Self {
        Self {
            deepgram: FakeDeepgram::start(DeepgramScript::new(["hello"]).with_key(DEEPGRAM_KEY))
                .await
                .unwrap(),
            openai: FakeOpenAi::start(OpenAiScript::default().with_key(OPENAI_KEY))
                .await
                .unwrap(),
            elevenlabs: FakeElevenLabs::start(ElevenLabsScript::default().with_key(ELEVENLABS_KEY))
                .await
                .unwrap(),
        }
    }

    /// A host using these providers (no plug-ins), with `extra` variables.
    async fn host(&self, extra: &[(&str, &str)]) -> HostProcess {
        let (deepgram, openai, elevenlabs) = (
            self.deepgram.url(),
            self.openai.base_url(),
            self.elevenlabs.url(),
        );
        let mut env = vec![
            ("DEEPGRAM_URL", deepgram.as_str()),
            ("DEEPGRAM_API_KEY", DEEPGRAM_KEY),
            ("OPENAI_BASE_URL", openai.as_str()),
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("ELEVENLABS_URL", elevenlabs.as_str()),
            ("ELEVENLABS_API_KEY", ELEVENLABS_KEY),
            ("INTENT_PLUGIN", "none"),
            ("PROMPT_PLUGIN", "none"),
            ("BARGE_IN_PLUGIN", "none"),
        ];
        env.extend_from_slice(extra);
        HostProcess::spawn(&env).await
    }
}

/// Log lines (JSON) at level WARN that say an endpoint is open to anyone.
fn open_warnings(log: &[String]) -> Vec<Value> {
    log.iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["level"] == "WARN"
                && v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("open to anyone"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_the_start_up_log_warns_once_that_agent_is_open() {
    let providers = Providers::start().await;
    let mut open = providers.host(&[]).await;
    let warnings = open_warnings(&open.log);
    assert_eq!(warnings.len(), 1, "one warning at start: {:#?}", open.log);
    let message = warnings[0]["fields"]["message"].as_str().unwrap();
    assert!(
        message.contains("/agent") && message.contains("AUTH_SECRET"),
        "{message}"
    );
    open.terminate();
    assert_eq!(open.exit().await.code(), Some(0));

    // With a secret, `/agent` is no longer named (only the Twilio webhook, which needs
    // TWILIO_AUTH_TOKEN to be checked).
    let mut closed = providers.host(&[("AUTH_SECRET", SECRET)]).await;
    let warnings = open_warnings(&closed.log);
    assert!(
        warnings
            .iter()
            .all(|w| !w["fields"]["message"].as_str().unwrap().contains("/agent")),
        "{warnings:#?}"
    );
    closed.terminate();
    assert_eq!(closed.exit().await.code(), Some(0));
}

fn claims(exp: u64) -> Claims {
    Claims {
        sub: SUBJECT.into(),
        exp,
        nbf: None,
        iat: None,
        agent: None,
        max_session_s: None,
        call_sid: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_tokens_never_reach_the_log_even_at_debug_level() {
    let providers = Providers::start().await;
    let mut host = providers
        .host(&[("AUTH_SECRET", SECRET), ("LOG", "debug")])
        .await;
    let addr = host.addr;
    let valid = mint_hs256(SECRET.as_bytes(), &claims(now_s() + 600));
    let by_protocol = mint_hs256(SECRET.as_bytes(), &claims(now_s() + 601));
    let expired = mint_hs256(SECRET.as_bytes(), &claims(now_s() - 3600));
    let forged = mint_hs256(b"another-secret-another-secret-xx", &claims(now_s() + 600));
    let malformed = "not.a-jwt.but-secret-looking-0123456789";
    let pcm = json!({"encoding": "pcm16", "sample_rate": 16000});

    // A whole turn with a token given by query.
    let mut c = AgentClient::connect_with(addr, &format!("/agent?token={valid}"), &[])
        .await
        .expect("admitted with ?token=")
        .start_session(pcm.clone(), None)
        .await;
    c.send_json(json!({"type": "text", "text": "what is the weather"}))
        .await;
    c.expect_type("agent_done", LIMIT).await;
    c.send_json(json!({"type": "stop"})).await;
    c.expect_close(LIMIT).await;

    // A session with the token as a subprotocol entry.
    let proto = format!("voice-host.v1, token.{by_protocol}");
    let mut c = AgentClient::connect_with(addr, "/agent", &[("sec-websocket-protocol", &proto)])
        .await
        .expect("admitted with the subprotocol entry")
        .start_session(pcm, None)
        .await;
    c.send_json(json!({"type": "stop"})).await;
    c.expect_close(LIMIT).await;

    // Refused tokens.
    for bad in [expired.as_str(), forged.as_str(), malformed] {
        let r = AgentClient::connect_with(addr, &format!("/agent?token={bad}"), &[])
            .await
            .err()
            .expect("refused");
        assert_eq!(r.status, 401, "{}", r.body);
        let proto = format!("voice-host.v1, token.{bad}");
        let r = AgentClient::connect_with(addr, "/agent", &[("sec-websocket-protocol", &proto)])
            .await
            .err()
            .expect("refused");
        assert_eq!(r.status, 401, "{}", r.body);
    }

    host.terminate();
    assert_eq!(host.exit().await.code(), Some(0));
    let log = host.whole_log().to_vec();
    // The log is the one that saw these sessions: it names their subject.
    assert!(
        log.iter()
            .any(|l| l.contains("session started") && l.contains(SUBJECT)),
        "no session log line names the subject: {log:#?}"
    );
    for (what, token) in [
        ("valid", valid.as_str()),
        ("subprotocol", by_protocol.as_str()),
        ("expired", expired.as_str()),
        ("forged", forged.as_str()),
        ("malformed", malformed),
    ] {
        // Neither the whole token nor its signature (the part that makes it usable).
        let signature = token.rsplit('.').next().unwrap();
        let leaked: Vec<&String> = log
            .iter()
            .filter(|l| l.contains(token) || l.contains(signature))
            .collect();
        assert!(leaked.is_empty(), "the {what} token is logged: {leaked:#?}");
    }
    assert!(
        log.iter().all(|l| !l.contains(SECRET)),
        "the secret is logged"
    );
}
