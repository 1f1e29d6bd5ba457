//! The HTTP server: `/agent` (client protocol v1), health, readiness, metrics, admin; startup
//! from the configuration and graceful shutdown.

mod agent;
mod health;
mod state;
mod twilio;
mod web;

pub use state::AppState;

use crate::behaviour::defaults::{BargeInRules, BuiltinBehaviours};
use crate::behaviour::BehaviourSource;
use crate::config::Config;
use crate::plugins::{
    oci::OciSettings, CanaryPolicy, CanarySettings, PluginRegistry, PluginSettings, RecordSettings,
    SlotSettings,
};
use crate::session::orchestrator::OrchestratorConfig;
use crate::session::{Providers, SessionDeps};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The built-in barge-in rules from the `TTS_*` settings.
pub fn barge_in_rules(cfg: &Config) -> BargeInRules {
    BargeInRules {
        threshold_words: cfg.tts_barge_threshold_words,
        min_agent_ms: cfg.tts_min_duration_ms.min(u32::MAX as u64) as u32,
        protect_phrases: cfg.tts_protected_phrases,
    }
}

/// Plug-in runtime settings from the host configuration. The barge-in slot also receives the
/// `TTS_*` rules so the reference policies follow them.
pub fn plugin_settings(cfg: &Config) -> PluginSettings {
    let canary_policy = CanaryPolicy {
        margin: cfg.plugin_canary_margin_pct / 100.0,
        min_calls: cfg.plugin_canary_min_calls,
    };
    let slot = |s: &crate::config::SlotConfig, extra: Vec<(String, String)>| SlotSettings {
        path: s.path.clone(),
        config: extra.into_iter().chain(s.config.iter().cloned()).collect(),
        shadow: s.shadow.clone(),
        canary: s.canary.clone().map(|path| CanarySettings {
            path,
            percent: s.canary_percent,
            policy: canary_policy,
        }),
    };
    let rules = barge_in_rules(cfg);
    PluginSettings {
        intent: slot(&cfg.intent_plugin, vec![]),
        prompt: slot(&cfg.prompt_plugin, vec![]),
        barge_in: slot(
            &cfg.barge_in_plugin,
            vec![
                ("threshold_words".into(), rules.threshold_words.to_string()),
                ("min_agent_ms".into(), rules.min_agent_ms.to_string()),
                ("protect_phrases".into(), rules.protect_phrases.to_string()),
            ],
        ),
        turn: slot(&cfg.turn_plugin, vec![]),
        memory_limit_bytes: cfg.plugin_memory_mb * 1024 * 1024,
        call_deadline_ms: cfg.plugin_deadline_ms,
        session_fault_limit: cfg.plugin_session_fault_limit,
        quarantine_sessions: cfg.plugin_quarantine_sessions,
        fault_window_ms: cfg.plugin_fault_window_ms,
        quarantine_backoff_ms: cfg.plugin_quarantine_backoff_ms,
        prompt_max_tokens: cfg.llm_max_tokens,
        max_sessions: cfg.max_sessions.min(u32::MAX as usize) as u32,
        watch: cfg.plugin_watch,
        shadow_max_sessions: cfg.plugin_shadow_max_sessions,
        canary_policy,
        record: cfg.plugin_record.as_ref().map(|dir| RecordSettings {
            dir: dir.clone(),
            text: cfg.plugin_record_text,
            max_file_bytes: cfg.plugin_record_max_mb.saturating_mul(1024 * 1024),
            rotated_files: cfg.plugin_record_files,
        }),
        oci: OciSettings {
            insecure: cfg.plugin_oci_insecure.clone(),
            username: cfg.plugin_oci_username.clone(),
            password: cfg.plugin_oci_password.clone(),
            poll: std::time::Duration::from_secs(cfg.plugin_poll_s),
            ..OciSettings::default()
        },
        ..PluginSettings::default()
    }
}

/// The orchestrator settings shared by all sessions.
pub fn orchestrator_config(cfg: &Config) -> OrchestratorConfig {
    let patterns = cfg
        .protected_patterns
        .iter()
        .filter_map(|p| regex::Regex::new(p).ok())
        .collect();
    OrchestratorConfig {
        silence_timeout_ms: cfg.stt_silence_timeout_ms,
        finalize_wait_ms: cfg.stt_finalize_wait_ms,
        llm_stall_ms: cfg.llm_stall_timeout_ms.max(1),
        tts_stall_ms: cfg.tts_stall_timeout_ms.max(1),
        pause_timeout_ms: cfg.pause_timeout_ms,
        lead_ms: cfg.audio_lead_ms,
        protect_phrases: cfg.tts_protected_phrases,
        protected_patterns: Arc::new(patterns),
        memory_turns: cfg.memory_turns,
        memory_chars: cfg.memory_chars,
        vad_hangover_ms: u64::from(cfg.vad_hangover_ms),
        preemptive: cfg.preemptive_generation,
        ..OrchestratorConfig::default()
    }
}

/// The end-of-turn model sessions' turn plug-in sees (`TURN_MODEL`): loaded only when something
/// will ask it (a turn plug-in, its shadow or canary; `smart-turn` always), since it costs an
/// inference thread per `TURN_MODEL_THREADS` and ~20 ms of CPU per pause
/// ([`Config::turn_model_wanted`]).
fn turn_model(cfg: &Config, asked: bool) -> Result<Option<crate::turn::TurnModel>, StartError> {
    // The model logs its own load.
    load_wanted(
        cfg.turn_model_wanted(asked),
        "TURN_MODEL=smart-turn",
        "no end-of-turn model: the turn plug-in decides without its probability",
        || crate::turn::TurnModel::load_on(&cfg.models_dir(), cfg.turn_model_threads),
    )
}

/// The text end-of-turn model (`TURN_WORDS_MODEL`), loaded as [`turn_model`] is (it costs a
/// thread, ~90 MB of model, ~95 MB of cache and ~350 ms of CPU per user turn; see
/// [`Config::words_model_wanted`]).
fn words_model(cfg: &Config, asked: bool) -> Result<Option<crate::turn::WordsModel>, StartError> {
    load_wanted(
        cfg.words_model_wanted(asked),
        "TURN_WORDS_MODEL=smollm2",
        "no text end-of-turn model: the turn plug-in decides without the words probability",
        || crate::turn::WordsModel::load_on(&cfg.models_dir(), cfg.turn_words_threads),
    )
}

/// Loads a model as `wanted` says: a required one that fails stops the start (the error names
/// `setting`), one wanted if installed is left out with `without` in the log.
fn load_wanted<M>(
    wanted: crate::config::ModelWanted,
    setting: &str,
    without: &str,
    load: impl FnOnce() -> Result<M, crate::turn::TurnModelError>,
) -> Result<Option<M>, StartError> {
    use crate::config::ModelWanted;
    match wanted {
        ModelWanted::No(why) => {
            if let Some(why) = why {
                tracing::info!("{why}");
            }
            Ok(None)
        }
        ModelWanted::IfInstalled => match load() {
            Ok(model) => Ok(Some(model)),
            Err(e) => {
                tracing::warn!(error = %e, "{without}");
                Ok(None)
            }
        },
        ModelWanted::Required => load()
            .map(Some)
            .map_err(|e| StartError(format!("{setting}: {e}"))),
    }
}

/// The voice activity detector sessions run (`VAD_ENGINE`): Silero is loaded here, once, and a
/// missing model or runtime stops the start. Sessions build their gate from it with
/// [`Config::vad_config`].
pub fn vad_engine(cfg: &Config) -> Result<crate::audio::VadEngine, StartError> {
    use crate::audio::{SileroVad, VadEngine};
    use crate::config::VadEngineChoice;
    match cfg.vad_engine {
        VadEngineChoice::WebRtc => Ok(VadEngine::WebRtc),
        VadEngineChoice::Silero => {
            let model = SileroVad::load(&cfg.models_dir())
                .map_err(|e| StartError(format!("VAD_ENGINE=silero: {e}")))?;
            tracing::info!(model = ?model, "voice activity detection: Silero VAD v5");
            Ok(VadEngine::Silero(model))
        }
    }
}

/// Why the server could not start (reported as one line, exit status 2).
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Everything built from the configuration before the port is bound.
pub struct Prepared {
    pub state: Arc<AppState>,
    pub registry: Option<Arc<PluginRegistry>>,
}

/// Build providers and plug-ins from the configuration.
pub fn prepare(cfg: Config) -> Result<Prepared, StartError> {
    let built = crate::providers::factory::build(&cfg);
    prepare_with(cfg, built.providers, built.problems)
}

/// Like [`prepare`] with given providers (embedding and tests).
pub fn prepare_with(
    cfg: Config,
    providers: Providers,
    problems: Vec<String>,
) -> Result<Prepared, StartError> {
    let fallback = BuiltinBehaviours {
        rules: barge_in_rules(&cfg),
    };
    // With an admin token the registry runs even when the built-ins serve every slot: a shadow
    // or canary version may be started through the admin endpoint at any time.
    let any_plugin = [
        &cfg.intent_plugin,
        &cfg.prompt_plugin,
        &cfg.barge_in_plugin,
        &cfg.turn_plugin,
    ]
    .iter()
    .any(|s| s.path.is_some() || s.shadow.is_some() || s.canary.is_some())
        || cfg.admin_token.is_some();
    let (behaviours, registry): (Arc<dyn BehaviourSource>, Option<Arc<PluginRegistry>>) =
        if any_plugin {
            let registry = PluginRegistry::start(plugin_settings(&cfg), fallback)
                .map_err(|e| match e {
                    // A registry problem: the reference plug-ins are beside the point.
                    crate::plugins::PluginError::Source { .. } => StartError(format!("plug-ins: {e}")),
                    e => StartError(format!(
                        "plug-ins: {e} (scripts/build-plugins.sh builds the reference plug-ins; \
                         set INTENT_PLUGIN/PROMPT_PLUGIN/BARGE_IN_PLUGIN/TURN_PLUGIN=none for the built-in behaviour)"
                    )),
                })?;
            (registry.clone(), Some(registry))
        } else {
            if cfg.plugin_record.is_some() {
                tracing::warn!(
                    "PLUGIN_RECORD is set but no slot has a plug-in: the built-in behaviours make \
                     no plug-in calls, so nothing is recorded"
                );
            }
            (Arc::new(fallback), None)
        };
    let resume = crate::resume::ResumeStore::new(cfg.resume.redis_url.as_deref(), cfg.resume.ttl())
        .map_err(StartError)?;
    let telemetry = crate::telemetry::Telemetry::start(&cfg.telemetry)
        .map_err(|e| StartError(format!("traces: {e}")))?;
    let turn_model = turn_model(&cfg, behaviours.asks_turn())?;
    let words_model = words_model(&cfg, behaviours.asks_turn())?;
    let vad_engine = vad_engine(&cfg)?;
    let cfg = Arc::new(cfg);
    let deps = Arc::new(SessionDeps {
        telemetry,
        resume: Arc::new(resume),
        orchestrator: orchestrator_config(&cfg),
        config: cfg.clone(),
        providers,
        behaviours,
        turn_model,
        words_model,
        vad_engine,
    });
    let state = AppState::new(cfg, deps, problems, registry.clone());
    Ok(Prepared { state, registry })
}

/// The router of all endpoints; the admin routes too unless `ADMIN_BIND` gives them their own
/// listener. Serve it with `into_make_service_with_connect_info::<SocketAddr>()`: admission
/// needs the peer address.
pub fn router(prepared: &Prepared) -> Router {
    let state = prepared.state.clone();
    let app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/agent", get(agent::upgrade))
        .route("/twilio", get(twilio::upgrade))
        .route("/twilio/voice", axum::routing::post(twilio::voice))
        .merge(web::routes())
        .with_state(state.clone());
    match (state.config.security.admin_bind, admin_router(prepared)) {
        (None, Some(admin)) => app.merge(admin),
        _ => app,
    }
}

/// The admin routes, when plug-ins are loaded.
fn admin_router(prepared: &Prepared) -> Option<Router> {
    prepared.registry.as_ref().map(|registry| {
        crate::plugins::admin_routes(registry.clone(), prepared.state.config.admin_token.clone())
    })
}

/// A running server (for embedding and tests).
pub struct ServerHandle {
    pub addr: SocketAddr,
    /// The admin listener's address when `ADMIN_BIND` is set.
    pub admin_addr: Option<SocketAddr>,
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Start serving on `listener` (e.g. 127.0.0.1:0), and the admin routes on `ADMIN_BIND`
    /// when it is set.
    pub fn spawn(prepared: Prepared, listener: TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let app = router(&prepared);
        let state = prepared.state.clone();
        if let Some(warning) = state.admission.open_endpoints_warning() {
            tracing::warn!("{warning}");
        }
        let admin = match (state.config.security.admin_bind, admin_router(&prepared)) {
            (Some(bind), Some(admin)) => {
                // Bound here, synchronously, so a busy ADMIN_BIND fails the start.
                let l = std::net::TcpListener::bind(bind)?;
                l.set_nonblocking(true)?;
                let l = TcpListener::from_std(l)?;
                Some((l.local_addr()?, l, admin))
            }
            _ => None,
        };
        let admin_addr = admin.as_ref().map(|(a, _, _)| *a);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let drain_state = state.clone();
        let telemetry = state.deps.telemetry.clone();
        let task = tokio::spawn(async move {
            let admin_task = admin.map(|(_, l, r)| {
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(l, r).await {
                        tracing::error!(error = %e, "admin listener failed");
                    }
                })
            });
            let shutdown = async move {
                let _ = stop_rx.await;
                drain(&drain_state).await;
            };
            // Agent audio goes out in 20 ms frames: Nagle's algorithm would hold each back
            // until the previous one is acknowledged.
            let listener = listener.tap_io(|tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::debug!(error = %e, "TCP_NODELAY not set on a connection");
                }
            });
            if let Err(e) = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
            {
                tracing::error!(error = %e, "server failed");
            }
            if let Some(t) = admin_task {
                t.abort();
            }
            // Every session has ended: their last spans are queued; send them.
            if let Some(telemetry) = &telemetry {
                telemetry.shutdown().await;
            }
        });
        Ok(Self {
            addr,
            admin_addr,
            state,
            stop: Some(stop_tx),
            task,
        })
    }

    /// Begin a graceful shutdown and wait for it to complete.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = self.task.await;
    }

    /// Begin a graceful shutdown without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Wait for the server to finish.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Stop accepting sessions, let turns in flight finish up to the drain timeout, then close the
/// rest with 1001.
pub async fn drain(state: &AppState) {
    state.begin_drain();
    let timeout = Duration::from_millis(state.config.drain_timeout_ms);
    if tokio::time::timeout(timeout, state.all_sessions_ended())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = state.active_sessions(),
            "drain timeout: closing remaining sessions"
        );
        state.force_close();
        let _ = tokio::time::timeout(Duration::from_secs(2), state.all_sessions_ended()).await;
    }
    tracing::info!("all sessions closed");
}

/// Resolve on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Watches for the forced close at the end of a drain.
pub type ForceClose = watch::Receiver<bool>;
