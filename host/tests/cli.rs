//! The `voice-host` binary: fail-fast configuration, help and `config`. (Draining on SIGTERM
//! needs providers to talk to: `tests/tests/e2e/sigterm.rs` runs the binary against the fakes.)

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_voice-host");

/// Cloud providers pointed at a closed local port: nothing is contacted at startup.
fn base_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("BIND", "127.0.0.1")
        .env("PORT", "0")
        .env("DEEPGRAM_URL", "ws://127.0.0.1:9")
        .env(
            "DEEPGRAM_API_KEY",
            "0123456789abcdef0123456789abcdef01234567",
        )
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .env("ELEVENLABS_URL", "http://127.0.0.1:9")
        .env(
            "ELEVENLABS_API_KEY",
            "sk_0123456789abcdef0123456789abcdef0123456789abcdef",
        )
        .env("INTENT_PLUGIN", "none")
        .env("PROMPT_PLUGIN", "none")
        .env("BARGE_IN_PLUGIN", "none")
}

/// Liveness bound on one run: a command that hangs (a start that never fails) fails the test.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

fn run_with(pairs: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    base_env(&mut cmd);
    for (k, v) in pairs {
        cmd.env(k, v);
    }
    let child = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run voice-host");
    let pid = child.id();
    // Output is collected on a thread of its own so that the wait has a deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(out) => out.expect("wait for voice-host"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("voice-host {args:?} did not finish within {LIMIT:?}");
        }
    }
}

#[test]
fn invalid_configuration_exits_2_with_one_line_naming_the_variable() {
    let cases = [
        ("PORT", "eighty"),
        ("STT_SILENCE_TIMEOUT_MS", "-1"),
        ("LLM_PROVIDER", "skynet"),
        ("ALLOWED_ORIGINS", "ftp://x"),
        ("ELEVENLABS_API_KEY", "sk-looks-like-openai-0000"),
        ("DEEPGRAM_API_KEY", "abc def"),
        ("BARGE_IN_PLUGIN", "/nonexistent/policy.wasm"),
        ("VAD_ENGINE", "cobra"),
    ];
    for (var, value) in cases {
        let out = run_with(&[(var, value)], &[]);
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}: {stderr}");
        assert!(
            lines[0].contains(var)
                || (var == "BARGE_IN_PLUGIN" && lines[0].contains("policy.wasm")),
            "{var}: {stderr}"
        );
        if var.ends_with("API_KEY") {
            assert!(!stderr.contains(value), "the key leaked: {stderr}");
        }
    }
}

#[test]
fn silero_vad_without_its_model_or_runtime_exits_2_with_one_line_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("vh-cli-silero-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let models = dir.to_str().unwrap();
    let start = |engine: &str| {
        let out = run_with(&[("VAD_ENGINE", engine), ("MODELS_DIR", models)], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    // The model is missing, then (with a model file in place) the runtime.
    let (code, stderr) = start("silero");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("VAD_ENGINE=silero"), "{stderr}");
    assert!(stderr.contains("silero_vad.onnx"), "{stderr}");
    assert!(stderr.contains("voice-host models install"), "{stderr}");
    std::fs::create_dir_all(dir.join("silero-vad")).unwrap();
    std::fs::write(dir.join("silero-vad/silero_vad.onnx"), b"not a model").unwrap();
    let (code, stderr) = start("silero");
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("libonnxruntime"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_documents_every_variable() {
    let out = run_with(&[], &["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for v in voice_host::config::vars::VARS {
        assert!(help.contains(v.name), "--help misses {}", v.name);
    }
}

#[test]
fn config_command_redacts_secrets() {
    let key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789";
    let out = run_with(
        &[
            ("OPENAI_API_KEY", key),
            ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        ],
        &["config"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OPENAI_API_KEY=sk-proj-...6789"), "{text}");
    assert!(!text.contains(key));
    assert!(text.contains("LLM_PROVIDER=openai"));
    assert!(text.contains("STT_PROVIDER=deepgram"));
}

#[test]
fn token_command_prints_a_token_the_host_accepts_for_that_agent_and_lifetime() {
    let secret = "cli-test-secret-0123456789abcdef0123";
    let before = voice_host::admission::token::now_s();
    let out = run_with(
        &[("AUTH_SECRET", secret)],
        &[
            "token", "--agent", "sales", "--ttl", "10m", "--sub", "dev-1",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "the token alone: {stdout:?}");
    let claims = voice_host::admission::token::verify_hs256(secret.as_bytes(), token)
        .expect("verifies with AUTH_SECRET");
    assert_eq!(claims.agent.as_deref(), Some("sales"));
    assert_eq!(claims.sub, "dev-1");
    let after = voice_host::admission::token::now_s();
    assert!(
        (before + 600..=after + 600).contains(&claims.exp),
        "exp {} for a 10m token minted between {before} and {after}",
        claims.exp
    );
    assert!(
        voice_host::admission::token::verify_hs256(b"another-secret-another-secret-xx", token)
            .is_err()
    );

    // Without a secret there is nothing to sign with: a one-line reason and a failure.
    let out = run_with(&[], &["token"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("AUTH_SECRET"), "{stderr}");
    assert!(out.stdout.is_empty());
}
