//! Process-level chaos: the providers' process (the three fakes, run as the `fake-providers`
//! binary) is killed with SIGKILL in the middle of a reply, then started again on the same
//! ports. The session stays open, the broken reply ends as interrupted with an `error`, and the
//! next turns, typed and spoken, work once the providers are back.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use voice_tests::microphone::{is, Microphone};
use voice_tests::speech;

/// About nine seconds of the fake voice (60 ms a character): long enough to be cut.
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted the ships \
that passed his rock, and every night he wrote their names in a thick blue book.";
const SPOKEN: &str = "hello again";
/// Agent audio bytes a millisecond (PCM16 at 16 kHz).
const BYTES_PER_MS: usize = 32;

/// The fake providers as a process of their own.
struct Providers {
    child: Child,
    /// The variables that point voice-host at them (`DEEPGRAM_URL`, keys, ...).
    env: Vec<(String, String)>,
}

impl Providers {
    /// Starts them on `ports` (flag, port) when given (a restart), else on free ports.
    fn start(ports: &[(&'static str, u16)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-providers"));
        cmd.args(["--reply", &format!("story={STORY}"), "--utterance", SPOKEN]);
        for (flag, port) in ports {
            cmd.args([*flag, &port.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fake-providers");
        let mut env = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some((k, v)) = line
                .strip_prefix("export ")
                .and_then(|kv| kv.split_once('='))
            {
                env.push((k.to_string(), v.to_string()));
            }
            if env.len() == 6 {
                break;
            }
        }
        assert_eq!(env.len(), 6, "fake-providers printed its environment");
        // Keep reading: a closed pipe would fail its next print.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, env }
    }

    fn var(&self, name: &str) -> &str {
        &self.env.iter().find(|(k, _)| k == name).expect(name).1
    }

    /// The ports they listen on, as the flags that would start them there again.
    fn ports(&self) -> Vec<(&'static str, u16)> {
        [
            ("--deepgram-port", "DEEPGRAM_URL"),
            ("--openai-port", "OPENAI_BASE_URL"),
            ("--elevenlabs-port", "ELEVENLABS_URL"),
        ]
        .into_iter()
        .map(|(flag, var)| {
            let url = self.var(var);
            let authority = url.split("://").nth(1).expect("a URL");
            let host_port = authority.split('/').next().unwrap();
            let port = host_port
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .expect("a port");
            (flag, port)
        })
        .collect()
    }

    /// SIGKILL, as a crashed or evicted process goes.
    fn kill(mut self) {
        self.child.kill().expect("kill fake-providers");
        self.child.wait().expect("reap fake-providers");
    }
}

impl Drop for Providers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn errors(mic: &Microphone) -> Vec<&Value> {
    mic.of_type("error")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_killed_mid_reply_and_restarted_leave_the_session_working() {
    let providers = Providers::start(&[]);
    let host = voice_tests::host::start(voice_tests::host::config(&providers.env)).await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", host.addr),
        json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    mic.until("ready", |v| v["type"] == "ready").await;

    // A reply is playing when the providers' process dies.
    mic.send(json!({"type": "text", "text": "tell me a story"}));
    let story = mic.until("the story", |v| v["type"] == "agent_text").await["turn"]
        .as_u64()
        .unwrap();
    mic.audio(500 * BYTES_PER_MS).await;
    let ports = providers.ports();
    providers.kill();
    let done = mic.until("the story's end", is("agent_done", story)).await;
    assert_eq!(done["interrupted"], true, "{done}");
    let heard = done["text"].as_str().unwrap();
    assert!(
        STORY.starts_with(heard) && heard.len() < STORY.len(),
        "only what was heard is kept: {heard:?}"
    );
    let broken = errors(&mic);
    assert!(
        !broken.is_empty() && broken.iter().all(|e| e["fatal"] == false),
        "the client is told, and the session goes on: {broken:?}"
    );
    eprintln!("errors while the providers were down: {broken:?}");

    // Back on the same ports: the next typed turn is answered in full.
    let _providers = Providers::start(&ports);
    let before = mic.audio_bytes;
    mic.send(json!({"type": "text", "text": "tell me a story"}));
    let next = mic
        .until("the next reply's end", |v| {
            v["type"] == "agent_done" && v["turn"].as_u64() > Some(story)
        })
        .await;
    assert_eq!(next["interrupted"], false, "{next}");
    assert_eq!(next["text"], STORY);
    assert!(mic.audio_bytes - before > 5000 * BYTES_PER_MS);

    // And speech is transcribed again: the recogniser's stream came back too.
    mic.say(&speech::utterance(800, 1500));
    let heard = mic
        .until("a spoken turn", |v| {
            v["type"] == "transcript"
                && v["final"] == true
                && v["turn"].as_u64() > next["turn"].as_u64()
        })
        .await;
    assert_eq!(heard["text"], SPOKEN);
    let fatal: Vec<&Value> = errors(&mic)
        .into_iter()
        .filter(|e| e["fatal"] == true)
        .collect();
    assert!(fatal.is_empty(), "{fatal:?}");
}
