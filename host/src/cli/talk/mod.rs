//! `voice-host talk`: a command-line client of `/agent` (protocol v1). It streams a WAV file at
//! real-time pace (and/or a typed turn), prints transcripts, the agent's text and each turn's
//! latency, and writes the agent's voice to a WAV file. The exit status makes it a smoke test:
//! 0 when the agent answered with audio, 1 when it did not, 2 when the session could not run.

mod args;
mod connection;
mod report;

pub use args::TalkArgs;
pub use report::Tally;

use crate::audio::{read_wav_mono_i16, write_wav_mono_i16, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Why a talk session could not run.
#[derive(Debug, thiserror::Error)]
pub enum TalkError {
    /// Bad options.
    #[error("{0}")]
    Usage(String),
    /// The input WAV could not be used.
    #[error("{path}: {reason}")]
    Input { path: String, reason: String },
    /// The host could not be reached or refused the session.
    #[error("{0}")]
    Connect(String),
    /// The agent audio could not be written.
    #[error("cannot write {path}: {reason}")]
    Output { path: String, reason: String },
}

/// How a talk session went.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub tally: Tally,
    /// Agent audio received, in ms.
    pub audio_ms: u64,
    /// The agent's audio file, when any audio arrived.
    pub wrote: Option<PathBuf>,
}

impl Summary {
    /// The agent answered a user turn with audio: what a smoke test wants to see.
    pub fn answered(&self) -> bool {
        self.tally.replies > 0 && self.audio_ms > 0
    }
}

/// Speech to send: 16-bit samples at `rate` Hz.
struct Speech {
    samples: Vec<i16>,
    rate: u32,
}

fn load_wav(path: &std::path::Path) -> Result<Speech, TalkError> {
    let input = |reason: String| TalkError::Input {
        path: path.display().to_string(),
        reason,
    };
    let (samples, rate) = read_wav_mono_i16(path).map_err(|e| input(format!("{e:#}")))?;
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(input(format!(
            "sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )));
    }
    if samples.is_empty() {
        return Err(input("the file holds no audio".into()));
    }
    Ok(Speech { samples, rate })
}

/// Run a talk session, printing to `out`.
pub async fn talk(args: &TalkArgs, out: &mut dyn Write) -> Result<Summary, TalkError> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&args.rate) {
        return Err(TalkError::Usage(format!(
            "--rate must be within {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE}"
        )));
    }
    if args.text.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(TalkError::Usage("--text must not be empty".into()));
    }
    let speech = args.wav.as_deref().map(load_wav).transpose()?;
    let outcome = connection::converse(args, speech, out).await?;
    let audio_ms = outcome.samples.len() as u64 * 1000 / u64::from(outcome.rate.max(1));
    let wrote = if outcome.samples.is_empty() {
        None
    } else {
        write_wav_mono_i16(&args.out, &outcome.samples, outcome.rate).map_err(|e| {
            TalkError::Output {
                path: args.out.display().to_string(),
                reason: format!("{e:#}"),
            }
        })?;
        Some(args.out.clone())
    };
    if !args.json {
        let t = &outcome.tally;
        let _ = match &wrote {
            Some(p) => writeln!(
                out,
                "{:.1} s of agent audio written to {}; {} repl{} ({} interrupted)",
                audio_ms as f64 / 1000.0,
                p.display(),
                t.replies,
                if t.replies == 1 { "y" } else { "ies" },
                t.interrupted
            ),
            None => writeln!(out, "no agent audio received"),
        };
    }
    Ok(Summary {
        tally: outcome.tally,
        audio_ms,
        wrote,
    })
}

/// Entry point of `voice-host talk`.
pub fn run(args: TalkArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("voice-host talk: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    match rt.block_on(talk(&args, &mut stdout)) {
        Ok(s) if s.answered() => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("voice-host talk: the agent did not answer with audio");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("voice-host talk: {e}");
            ExitCode::from(2)
        }
    }
}
