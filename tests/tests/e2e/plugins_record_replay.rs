//! Record and replay, end to end: a host with reference plug-ins and `PLUGIN_RECORD` set serves
//! typed turns and a spoken barge-in; the recording has one line per plug-in call with the
//! plug-in's identity, the input, the decision and the call's place in its session; and
//! `voice-host plugins replay`, run as the binary, agrees fully when it replays the recorded
//! component, and reports the disagreements (exit status 1 under `--max-disagreement 0`) when
//! the component, or its configuration, decides differently.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;
use voice_tests::metrics::metric;
use voice_tests::microphone::{is, Microphone};
use voice_tests::{plugins, speech};

const ADMIN: &str = "record-test-admin-token-0123456789abcdef";
const LIMIT: Duration = Duration::from_secs(30);
/// Liveness bound on one run of `voice-host plugins replay`.
const RUN_LIMIT: Duration = Duration::from_secs(120);
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("voice-record-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// The recording's lines once it holds at least `n` that `wanted` accepts (the writer thread
/// writes moments after the calls).
async fn recording(dir: &Path, n: usize, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    let read = || voice_tests::plugins::recorded_calls(dir);
    voice_tests::eventually("the calls in the recording", LIMIT, || {
        read().iter().filter(|l| wanted(l)).count() >= n
    })
    .await;
    read()
}

/// Runs `voice-host plugins replay` with `args` on a clean environment plus `env`.
async fn replay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let child = tokio::process::Command::new(voice_tests::binary::voice_host())
        .args(["plugins", "replay"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .envs(env.iter().copied())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(RUN_LIMIT, child)
        .await
        .expect("voice-host plugins replay ended")
        .expect("voice-host plugins replay ran")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The single line `voice-host plugins replay: <reason>` on stderr.
fn reason(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr:?}");
    assert!(
        lines[0].starts_with("voice-host plugins replay: "),
        "{stderr}"
    );
    lines[0].to_string()
}

/// A row of the replay's table.
fn row(table: &str, name: &str) -> String {
    table
        .lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| rest.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name:?} row in:\n{table}"))
}

/// A typed session with the id `id` taking `turns`, each answered in full.
async fn typed_session(addr: std::net::SocketAddr, id: &str, turns: &[&str]) {
    let mut c = AgentClient::connect(addr, None).await.expect("upgrade");
    c.send_json(json!({"type": "start", "session_id": id,
                       "audio": {"encoding": "pcm16", "sample_rate": 16000}}))
        .await;
    c.expect_type("ready", LIMIT).await;
    for (i, text) in turns.iter().enumerate() {
        c.send_json(json!({"type": "text", "text": text})).await;
        let turn = i as u64 + 1;
        let done = c
            .wait_for(LIMIT, |m| m["type"] == "agent_done" && m["turn"] == turn)
            .await
            .unwrap_or_else(|| panic!("{id}: turn {turn} unanswered: {:#?}", c.messages));
        assert_eq!(done["interrupted"], false, "{done}");
    }
    assert!(c.of_type("error").is_empty(), "{:#?}", c.of_type("error"));
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_turns_are_recorded_and_replayed() {
    let dir = scratch("typed");
    let intent = plugins::component("intent-keywords");
    let prompt = plugins::component("prompt-persona");
    let s = CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default().reply("", "Okay."),
        ElevenLabsScript::default(),
        &[
            ("INTENT_PLUGIN", path_str(&intent)),
            ("PROMPT_PLUGIN", path_str(&prompt)),
            ("PLUGIN_RECORD", path_str(&dir)),
            ("ADMIN_TOKEN", ADMIN),
        ],
    )
    .await;
    let addr = s.host.addr;
    typed_session(
        addr,
        "rec-a",
        &[
            "hello there",
            "what is the weather in paris",
            "can you repeat that",
        ],
    )
    .await;
    typed_session(addr, "rec-b", &["tell me a joke"]).await;

    // One line per call: the intent analyzer and the prompt shaper of each of the 4 turns.
    let lines = recording(&dir, 8, |_| true).await;
    assert_eq!(lines.len(), 8, "{lines:#?}");
    let (_, listing) = plugins::admin(addr, ADMIN, "GET", "/admin/plugins").await;
    for line in &lines {
        let slot = line["slot"].as_str().unwrap();
        let (name, turn_field) = match slot {
            "intent" => ("intent_keywords", &line["input"]["turn"]),
            "prompt" => ("prompt_persona", &line["input"]["turn"]),
            other => panic!("a call of slot {other}: {line}"),
        };
        assert_eq!(line["plugin"], name, "{line}");
        assert_eq!(line["version"], plugins::version(&listing, slot), "{line}");
        assert_eq!(&line["turn"], turn_field, "{line}");
        assert_eq!(line["outcome"], "plugin", "{line}");
        assert!(line["duration_us"].as_u64().is_some(), "{line}");
        assert!(line["ts_ms"].as_u64().unwrap() > 0, "{line}");
        assert!(line["instance"].as_u64().is_some(), "{line}");
        // The input carries the conversation, never the host's keys.
        let text = line.to_string();
        for key in [
            voice_tests::host::OPENAI_KEY,
            voice_tests::host::DEEPGRAM_KEY,
            voice_tests::host::ELEVENLABS_KEY,
            ADMIN,
        ] {
            assert!(!text.contains(key), "a secret in the recording: {line}");
        }
    }
    let of = |session: &str, slot: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["session"] == session && l["slot"] == slot)
            .collect()
    };
    let intents = of("rec-a", "intent");
    let turns: Vec<u64> = intents
        .iter()
        .map(|l| l["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, [1, 2, 3]);
    assert_eq!(
        intents[1]["input"]["transcript"],
        "what is the weather in paris"
    );
    assert_eq!(intents[1]["decision"]["name"], "weather");
    assert_eq!(
        intents[1]["decision"]["slots"],
        json!([["city", "paris"]]),
        "{}",
        intents[1]
    );
    assert_eq!(intents[2]["decision"]["name"], "repeat");
    let prompts = of("rec-a", "prompt");
    assert_eq!(prompts.len(), 3);
    assert_eq!(prompts[0]["input"]["user_turn"], "hello there");
    assert!(
        prompts[0]["decision"]["llm"]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("You are a friendly voice assistant"),
        "{}",
        prompts[0]
    );
    // "repeat" is answered directly with the last reply, without the model.
    assert_eq!(
        prompts[2]["decision"],
        json!({"direct": {"text": "Okay."}}),
        "{}",
        prompts[2]
    );
    assert_eq!(of("rec-b", "prompt").len(), 1);
    // Each session's calls went to one instance per slot, and the sessions' instances differ.
    let instance = |l: &Value| l["instance"].as_u64().unwrap();
    assert!(prompts.iter().all(|l| instance(l) == instance(prompts[0])));
    assert_ne!(instance(prompts[0]), instance(of("rec-b", "prompt")[0]));
    assert_eq!(metric(addr, "voice_plugin_records_total").await, 8);
    assert_eq!(metric(addr, "voice_plugin_record_dropped_total").await, 0);

    let rec = dir.join("plugin-calls.jsonl");
    let rec = path_str(&rec);
    // The same components over their own calls: full agreement.
    let out = replay(&[path_str(&prompt), rec], &[]).await;
    let table = stdout(&out);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(row(&table, "slot"), "prompt", "{table}");
    assert_eq!(row(&table, "calls"), "4 in 2 sessions", "{table}");
    assert_eq!(row(&table, "agreement"), "4 of 4 (100.0%)", "{table}");
    assert_eq!(row(&table, "faults"), "none", "{table}");
    assert!(row(&table, "call time").starts_with("p50 "), "{table}");
    let out = replay(&[path_str(&intent), rec, "--max-disagreement", "0"], &[]).await;
    let table = stdout(&out);
    assert!(out.status.success(), "{table}");
    assert_eq!(row(&table, "slot"), "intent", "{table}");
    assert_eq!(row(&table, "agreement"), "4 of 4 (100.0%)", "{table}");

    // The prompt plug-in with another persona: every turn sent to the model differs (the
    // direct "repeat" reply does not), listed with its input.
    let config = dir.join("other-persona.toml");
    std::fs::write(
        &config,
        "[plugins.prompt]\nconfig = { persona = \"You are a pirate.\" }\n",
    )
    .unwrap();
    let args = [
        "--config",
        path_str(&config),
        "plugins",
        "replay",
        path_str(&prompt),
        rec,
        "--max-disagreement",
        "0",
    ];
    let out = replay_with_global_args(&args).await;
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert_eq!(row(&table, "agreement"), "1 of 4 (25.0%)", "{table}");
    assert_eq!(row(&table, "disagreements"), "3", "{table}");
    assert!(
        table.contains("session rec-a turn 1: \"hello there\""),
        "{table}"
    );
    assert!(table.contains("You are a pirate."), "{table}");
    assert_eq!(
        reason(&out),
        "voice-host plugins replay: 3 of 4 calls disagree (75.0%), more than --max-disagreement 0%"
    );
    // A limit above the disagreement passes.
    let mut lenient = args;
    lenient[7] = "80";
    assert!(replay_with_global_args(&lenient).await.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `voice-host ARGS` (global options before the subcommand) on a clean environment.
async fn replay_with_global_args(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(voice_tests::binary::voice_host())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(RUN_LIMIT, child)
        .await
        .expect("voice-host ended")
        .expect("voice-host ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_barge_in_replays_and_another_policy_disagrees() {
    let dir = scratch("barge-in");
    let smart = plugins::component("barge-in-smart");
    let seed = plugins::component("barge-in-seed");
    let s = CloudStack::start(
        DeepgramScript::new(["please stop now"]),
        OpenAiScript::default()
            .reply("story", STORY)
            .reply("", "Okay."),
        ElevenLabsScript::default(),
        &[
            ("BARGE_IN_PLUGIN", path_str(&smart)),
            ("PLUGIN_RECORD", path_str(&dir)),
        ],
    )
    .await;
    let mut mic = Microphone::connect(
        &format!("ws://{}/agent", s.host.addr),
        json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    let story = mic.ask_after_ready("tell me a long story").await;
    mic.audio(500 * 32).await;
    // "stop" interrupts at once with the smart policy (the seed rules would wait for five
    // words and three seconds of the agent).
    mic.say(&speech::utterance(1800, 0));
    mic.until("the interrupt", is("interrupt", story)).await;
    // The barge-in's words become a turn of their own; once it is answered the barge-in is over.
    mic.until("the answer to the barge-in's words", |v| {
        v["type"] == "agent_done" && v["turn"].as_u64() > Some(story)
    })
    .await;
    let lines = recording(&dir, 1, |l| l["decision"] == "interrupt").await;
    for line in &lines {
        assert_eq!(line["slot"], "barge_in", "{line}");
        assert_eq!(line["plugin"], "barge_in_smart", "{line}");
        assert_eq!(line["turn"], story, "{line}");
        assert!(
            line["input"]["agent_spoken_ms"].as_u64().is_some(),
            "{line}"
        );
    }
    let stop = lines.iter().find(|l| l["decision"] == "interrupt").unwrap();
    let stop_words = stop["input"]["interim_text"].as_str().unwrap().to_string();
    assert!(stop_words.contains("stop"), "{stop}");
    let calls = lines.len();
    // The seed rules wait where the smart policy interrupted (or paused on wordless speech).
    let differ = lines
        .iter()
        .filter(|l| l["decision"] == "interrupt" || l["decision"] == "pause")
        .count();

    let rec = dir.join("plugin-calls.jsonl");
    let rec = path_str(&rec);
    let out = replay(&[path_str(&smart), rec, "--max-disagreement", "0"], &[]).await;
    let table = stdout(&out);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(row(&table, "slot"), "barge_in", "{table}");
    assert_eq!(
        row(&table, "agreement"),
        format!("{calls} of {calls} (100.0%)"),
        "{table}"
    );

    // The seed rules on the same events: the "stop" that interrupted is a wait for them.
    let out = replay(
        &[
            path_str(&smart),
            rec,
            "--against",
            path_str(&seed),
            "--max-disagreement",
            "0",
        ],
        &[],
    )
    .await;
    let table = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(
        row(&table, "compared with").starts_with("barge_in_seed@"),
        "{table}"
    );
    assert_eq!(row(&table, "disagreements"), differ.to_string(), "{table}");
    assert!(
        table.contains(&format!("turn {story}: {stop_words:?}")),
        "the input is shown: {table}"
    );
    assert!(table.contains("barge_in_seed@"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.trim_start().starts_with("barge_in_seed@") && l.ends_with(": \"wait\"")),
        "{table}"
    );
    assert!(
        table.lines().any(
            |l| l.trim_start().starts_with("barge_in_smart@") && l.ends_with(": \"interrupt\"")
        ),
        "{table}"
    );
    assert!(
        reason(&out).contains(&format!("{differ} of {calls} calls disagree")),
        "{}",
        reason(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_masked_recording_keeps_no_words() {
    let dir = scratch("masked");
    let intent = plugins::component("intent-keywords");
    let s = CloudStack::start(
        DeepgramScript::default(),
        OpenAiScript::default().reply("", "Okay."),
        ElevenLabsScript::default(),
        &[
            ("INTENT_PLUGIN", path_str(&intent)),
            ("PLUGIN_RECORD", path_str(&dir)),
            ("PLUGIN_RECORD_TEXT", "false"),
        ],
    )
    .await;
    typed_session(s.host.addr, "masked", &["my card number is 4111"]).await;
    let lines = recording(&dir, 1, |_| true).await;
    let text = std::fs::read_to_string(dir.join("plugin-calls.jsonl")).unwrap();
    assert!(!text.contains("4111") && !text.contains("card"), "{text}");
    assert_eq!(lines[0]["masked"], true);
    assert_eq!(
        lines[0]["input"]["transcript"],
        json!({"words": 5, "chars": 22})
    );
    let rec = dir.join("plugin-calls.jsonl");
    let out = replay(&[path_str(&intent), path_str(&rec)], &[]).await;
    let table = stdout(&out);
    assert!(out.status.success(), "{table}");
    assert!(row(&table, "masked inputs").starts_with("1 "), "{table}");
    let _ = std::fs::remove_dir_all(&dir);
}
