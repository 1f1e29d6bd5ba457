use super::*;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut raw = RawSettings::default();
    raw.overlay_env(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        &vars::names(),
    );
    Config::from_raw(&raw)
}

#[test]
fn defaults_are_local_and_seed_values() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.port, 4010);
    assert_eq!(c.stt, ProviderChoice::Local);
    assert_eq!(c.llm, ProviderChoice::Local);
    assert_eq!(c.tts, ProviderChoice::Local);
    assert_eq!(c.stt_silence_timeout_ms, 2500);
    assert_eq!(c.tts_min_duration_ms, 3000);
    assert_eq!(c.tts_barge_threshold_words, 5);
    assert!(c.tts_protected_phrases);
    assert_eq!(c.max_sessions, 1000);
}

#[test]
fn the_text_end_of_turn_model_is_chosen_by_name() {
    use super::TurnWordsChoice;
    assert_eq!(cfg(&[]).unwrap().turn_words_model, TurnWordsChoice::Auto);
    for (value, choice) in [
        ("auto", TurnWordsChoice::Auto),
        ("smollm2", TurnWordsChoice::SmolLm2),
        ("none", TurnWordsChoice::None),
    ] {
        let c = cfg(&[("TURN_WORDS_MODEL", value)]).unwrap();
        assert_eq!(c.turn_words_model, choice);
        assert_eq!(choice.name(), value);
    }
    let e = cfg(&[("TURN_WORDS_MODEL", "gpt")]).unwrap_err().to_string();
    assert!(
        e.contains("TURN_WORDS_MODEL") && e.contains("smollm2"),
        "{e}"
    );
}

#[test]
fn a_sessions_vad_reports_onsets_always_and_pauses_only_for_a_policy() {
    let c = cfg(&[("TURN_PAUSE_MS", "250")]).unwrap();
    let with = c.vad_config(true);
    assert!(with.onsets);
    assert_eq!(with.pause_ms, 250);
    let without = c.vad_config(false);
    assert!(
        without.onsets,
        "a reply would start over a user beginning to speak"
    );
    assert_eq!(without.pause_ms, 0);
}

#[test]
fn keys_select_cloud_providers() {
    let c = cfg(&[
        (
            "DEEPGRAM_API_KEY",
            "0123456789abcdef0123456789abcdef01234567",
        ),
        ("OPENAI_API_KEY", "sk-proj-abcdefghijklmnop"),
        (
            "ELEVENLABS_API_KEY",
            "sk_0123456789abcdef0123456789abcdef0123456789abcdef",
        ),
    ])
    .unwrap();
    assert_eq!(
        (c.stt, c.llm, c.tts),
        (
            ProviderChoice::Cloud,
            ProviderChoice::Cloud,
            ProviderChoice::Cloud
        )
    );
    assert!(!c.describe().contains("abcdefghijklmnop"));
}

#[test]
fn rejects_bad_values_naming_the_variable() {
    let cases = [
        ("PORT", "abc"),
        ("STT_SILENCE_TIMEOUT_MS", "-5"),
        ("STT_PROVIDER", "whisperx"),
        ("ALLOWED_ORIGINS", "not a url"),
        ("ALLOWED_ORIGINS", "https://a.example/path"),
        ("OPENAI_API_KEY", "sk-abc def"),
        ("OPENAI_API_KEY", "pk-abcdefghijkl"),
        ("ELEVENLABS_API_KEY", "sk-abcdefghijklmnop"),
        ("TTS_PROTECTED_PHRASES", "maybe"),
        ("LLM_TEMPERATURE", "7"),
        ("LLM_MAX_TOKENS", "0"),
        ("VAD_AGGRESSIVENESS", "9"),
        ("PROTECTED_PATTERNS", "(unclosed"),
        ("ADMIN_TOKEN", "short-admin-token"),
        ("AUTH_SECRET", "short-secret"),
        (
            "AUTH_PUBLIC_KEY",
            "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----",
        ),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("PUBLIC_URL", "ftp://voice.example.com"),
        ("START_TIMEOUT_MS", "0"),
        ("CONNECT_BURST", "0"),
        ("ADMIN_BIND", "localhost"),
        ("MAX_SESSIONS_PER_IP", "-1"),
        ("AUDIO_LEAD_MS", "60000"),
        ("PLUGIN_RECORD_MAX_MB", "0"),
        ("PLUGIN_RECORD_FILES", "1000"),
        ("PLUGIN_RECORD_TEXT", "perhaps"),
        // A path that never ends is refused, not read until memory runs out.
        ("AUTH_PUBLIC_KEY", "/dev/zero"),
    ];
    for (k, v) in cases {
        let e = cfg(&[(k, v)]).expect_err(&format!("{k}={v} should fail"));
        assert_eq!(e.variable, k, "{e}");
        assert!(
            !e.to_string().contains(v) || !k.ends_with("KEY"),
            "a key value leaked: {e}"
        );
    }
}

#[test]
fn compatible_endpoints_take_any_key_or_none() {
    let c = cfg(&[
        ("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1"),
        ("OPENAI_API_KEY", "local-key"),
    ])
    .unwrap();
    assert_eq!(c.llm, ProviderChoice::Cloud);
    let c = cfg(&[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")]).unwrap();
    assert_eq!(c.llm, ProviderChoice::Cloud);
    assert!(c.openai_api_key.is_none());
}

#[test]
fn file_settings_are_overridden_by_environment() {
    let mut raw = RawSettings::from_toml(
        r#"
        port = 5000
        greeting = "hi"
        protected_patterns = ["(?i)code"]
        [agent]
        system_prompt = "be a pirate"
        [agents.support]
        greeting = "support here"
        [plugins.intent]
        path = "none"
        [plugins.barge_in]
        path = "x.wasm"
        config = { threshold_words = 3 }
        "#,
    )
    .unwrap();
    raw.overlay_env([("PORT".to_string(), "6000".to_string())], &vars::names());
    let c = Config::from_raw(&raw).unwrap();
    assert_eq!(c.port, 6000);
    assert_eq!(c.agent.system_prompt, "be a pirate");
    assert_eq!(c.agent.greeting.as_deref(), Some("hi"));
    assert_eq!(
        c.agent_profile(Some("support"))
            .unwrap()
            .greeting
            .as_deref(),
        Some("support here")
    );
    assert!(c.agent_profile(Some("nope")).is_none());
    assert_eq!(c.protected_patterns, vec!["(?i)code".to_string()]);
    assert_eq!(c.intent_plugin.path, None);
    assert_eq!(c.barge_in_plugin.path, Some(PathBuf::from("x.wasm")));
    assert_eq!(
        c.barge_in_plugin.config,
        vec![("threshold_words".into(), "3".into())]
    );
}

#[test]
fn security_secrets_are_redacted() {
    let secret = "a-very-long-auth-secret-0123456789abcdef";
    let twilio = "twilio-auth-token-0123456789";
    let c = cfg(&[
        ("AUTH_SECRET", secret),
        ("TWILIO_AUTH_TOKEN", twilio),
        ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
    ])
    .unwrap();
    let shown = c.describe();
    assert!(
        !shown.contains(secret) && !shown.contains(twilio),
        "{shown}"
    );
    assert!(shown.contains("AUTH_SECRET=(set)"), "{shown}");
    assert!(
        shown.contains("TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1/32"),
        "{shown}"
    );
    let debug = format!("{c:?}");
    assert!(!debug.contains(secret) && !debug.contains(twilio));
    assert!(c.secrets().contains(&secret));
    assert!(c.security.auth_required());
    assert_eq!(c.security.start_timeout_ms, 5000);
}

#[test]
fn recording_is_set_under_plugins_or_by_its_variables() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.plugin_record, None);
    assert!(c.plugin_record_text);
    assert_eq!((c.plugin_record_max_mb, c.plugin_record_files), (64, 3));
    let raw = RawSettings::from_toml(
        r#"
        [plugins]
        record = "/var/lib/voice/calls"
        record_text = false
        record_max_mb = 8
        [plugins.barge_in]
        path = "x.wasm"
        "#,
    )
    .unwrap();
    let c = Config::from_raw(&raw).unwrap();
    assert_eq!(c.plugin_record, Some(PathBuf::from("/var/lib/voice/calls")));
    assert!(!c.plugin_record_text);
    assert_eq!(c.plugin_record_max_mb, 8);
    assert_eq!(c.barge_in_plugin.path, Some(PathBuf::from("x.wasm")));
    assert!(c
        .describe()
        .contains("PLUGIN_RECORD=/var/lib/voice/calls\n"));
    let e = RawSettings::from_toml("[plugins]\nrecord = [1]").unwrap_err();
    assert_eq!(e.variable, "plugins.record", "{e}");
}

#[test]
fn shadow_and_canary_versions_are_set_per_slot_in_the_file_or_by_variables() {
    let c = cfg(&[]).unwrap();
    assert_eq!(
        (
            c.intent_plugin.shadow.clone(),
            c.intent_plugin.canary.clone()
        ),
        (None, None)
    );
    assert_eq!(c.intent_plugin.canary_percent, 10);
    assert_eq!(c.plugin_canary_margin_pct, 5.0);
    let raw = RawSettings::from_toml(
        r#"
        [plugins]
        canary_min_calls = 50
        [plugins.barge_in]
        path = "live.wasm"
        shadow = "next.wasm"
        canary = "candidate.wasm"
        canary_percent = 25
        "#,
    )
    .unwrap();
    let c = Config::from_raw(&raw).unwrap();
    assert_eq!(c.barge_in_plugin.shadow, Some(PathBuf::from("next.wasm")));
    assert_eq!(
        c.barge_in_plugin.canary,
        Some(PathBuf::from("candidate.wasm"))
    );
    assert_eq!(c.barge_in_plugin.canary_percent, 25);
    assert_eq!(c.plugin_canary_min_calls, 50);
    assert!(c.describe().contains("BARGE_IN_PLUGIN_CANARY_PERCENT=25\n"));
    let c = cfg(&[
        ("PROMPT_PLUGIN_CANARY", "p.wasm"),
        ("PROMPT_PLUGIN_CANARY_PERCENT", "100"),
    ])
    .unwrap();
    assert_eq!(c.prompt_plugin.canary, Some(PathBuf::from("p.wasm")));
    assert_eq!(c.prompt_plugin.canary_percent, 100);
    let e = cfg(&[("INTENT_PLUGIN_CANARY_PERCENT", "101")]).unwrap_err();
    assert_eq!(e.variable, "INTENT_PLUGIN_CANARY_PERCENT", "{e}");
    let e = cfg(&[("PLUGIN_CANARY_MARGIN_PCT", "-1")]).unwrap_err();
    assert_eq!(e.variable, "PLUGIN_CANARY_MARGIN_PCT", "{e}");
    let e = RawSettings::from_toml("[plugins.intent]\ncanary_pct = 5").unwrap_err();
    assert_eq!(e.variable, "plugins.intent.canary_pct", "{e}");
}

#[test]
fn plugin_none_selects_builtin() {
    let c = cfg(&[("BARGE_IN_PLUGIN", "none")]).unwrap();
    assert!(c.barge_in_plugin.path.is_none());
    assert!(c
        .intent_plugin
        .path
        .unwrap()
        .ends_with("intent_keywords.wasm"));
}

#[test]
fn the_end_of_turn_models_load_only_for_a_turn_plug_in_and_the_text_one_not_beside_the_offline_llm()
{
    use super::ModelWanted::{IfInstalled, No, Required};
    let cloud = [("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")];
    let cloud_cfg = |extra: &[(&str, &str)]| cfg(&[&cloud[..], extra].concat()).unwrap();
    // No turn plug-in asks: neither loads under `auto`.
    let c = cloud_cfg(&[]);
    assert_eq!(c.turn_model_wanted(false), No(None));
    assert_eq!(c.words_model_wanted(false), No(None));
    // A turn plug-in with a cloud LLM: both when installed.
    assert_eq!(c.turn_model_wanted(true), IfInstalled);
    assert_eq!(c.words_model_wanted(true), IfInstalled);
    // The offline LLM (the default): the audio model, not the text one, saying why.
    let offline = cfg(&[]).unwrap();
    assert_eq!(offline.turn_model_wanted(true), IfInstalled);
    let No(Some(why)) = offline.words_model_wanted(true) else {
        panic!("{:?}", offline.words_model_wanted(true));
    };
    assert!(why.contains("TURN_WORDS_MODEL=smollm2"), "{why}");
    // Named, they are required whatever asks (the host refuses to start without them).
    let named = cfg(&[
        ("TURN_MODEL", "smart-turn"),
        ("TURN_WORDS_MODEL", "smollm2"),
    ])
    .unwrap();
    assert_eq!(named.turn_model_wanted(false), Required);
    assert_eq!(named.words_model_wanted(false), Required);
    let off = cloud_cfg(&[("TURN_MODEL", "none"), ("TURN_WORDS_MODEL", "none")]);
    assert_eq!(off.turn_model_wanted(true), No(None));
    assert_eq!(off.words_model_wanted(true), No(None));
}

#[test]
fn the_audio_model_runs_on_one_to_sixteen_threads() {
    assert_eq!(cfg(&[]).unwrap().turn_model_threads, 1);
    let c = cfg(&[("TURN_MODEL_THREADS", "3")]).unwrap();
    assert_eq!(c.turn_model_threads, 3);
    for bad in ["0", "17", "-1", "many"] {
        let e = cfg(&[("TURN_MODEL_THREADS", bad)]).unwrap_err().to_string();
        assert!(e.contains("TURN_MODEL_THREADS"), "{bad}: {e}");
    }
}

#[test]
fn the_text_model_reads_on_one_to_sixteen_threads() {
    assert_eq!(cfg(&[]).unwrap().turn_words_threads, 1);
    let c = cfg(&[("TURN_WORDS_THREADS", "4")]).unwrap();
    assert_eq!(c.turn_words_threads, 4);
    for bad in ["0", "17", "two"] {
        let e = cfg(&[("TURN_WORDS_THREADS", bad)]).unwrap_err().to_string();
        assert!(e.contains("TURN_WORDS_THREADS"), "{bad}: {e}");
    }
}
