//! Load tool for `/agent`: opens many sessions that stream audio in real time, either listening
//! (the default) or conversing (`--converse`: a user turn every `--turn-every` seconds, a share
//! of the replies talked over), and reports what callers would notice (connect time, speech end
//! -> first agent audio, holes in the agent's audio, unanswered turns, errors) and what it cost
//! (the host's CPU per session-second and per turn, its memory per session, and the rig's own
//! CPU, so a run shows whether the rig or the host was the limit).
//!
//! ```text
//! agent-load --url ws://127.0.0.1:4010/agent --sessions 1000 --seconds 30 [--pid HOST_PID]
//!            [--rig-pid PID]... [--speech | --converse [--turn-every S] [--barge-in SHARE]
//!            [--wav FILE]] [--json FILE --label TEXT]
//! ```
//! Bounded in count and time; it talks only to the URL given (use a loopback host).

mod converse;
mod listen;
mod stats;

use bytes::Bytes;
use stats::{summary, SessionRecord, Totals};
use std::sync::Arc;
use std::time::Duration;

struct Args {
    url: String,
    sessions: usize,
    seconds: u64,
    pid: Option<u32>,
    rig_pids: Vec<u32>,
    speech: bool,
    converse: bool,
    turn_every: f64,
    barge_in: f64,
    wav: Option<String>,
    json: Option<String>,
    label: String,
}

const USAGE: &str = "usage: agent-load [--url URL] [--sessions N] [--seconds S] [--pid PID] \
    [--rig-pid PID]... [--speech | --converse [--turn-every S] [--barge-in SHARE] [--wav FILE]] \
    [--json FILE] [--label TEXT]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: "ws://127.0.0.1:4010/agent".into(),
        sessions: 100,
        seconds: 20,
        pid: None,
        rig_pids: Vec::new(),
        speech: false,
        converse: false,
        turn_every: 10.0,
        barge_in: 0.2,
        wav: None,
        json: None,
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| {
            v.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {v}"))
        };
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--sessions" => a.sessions = num(value()?)? as usize,
            "--seconds" => a.seconds = num(value()?)? as u64,
            "--pid" => a.pid = Some(num(value()?)? as u32),
            "--rig-pid" => a.rig_pids.push(num(value()?)? as u32),
            "--speech" => a.speech = true,
            "--converse" => a.converse = true,
            "--turn-every" => a.turn_every = num(value()?)?,
            "--barge-in" => a.barge_in = num(value()?)?,
            "--wav" => a.wav = Some(value()?),
            "--json" => a.json = Some(value()?),
            "--label" => a.label = value()?,
            "--help" | "-h" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if !(1..=5000).contains(&a.sessions) || !(1..=600).contains(&a.seconds) {
        return Err("--sessions must be 1..=5000 and --seconds 1..=600".into());
    }
    if !(1.0..=600.0).contains(&a.turn_every) || !(0.0..=1.0).contains(&a.barge_in) {
        return Err("--turn-every must be 1..=600 s and --barge-in 0..=1".into());
    }
    if a.speech && a.converse {
        return Err("--speech and --converse are different modes: pick one".into());
    }
    Ok(a)
}

/// CPU time (user + system) of a process so far, seconds. Linux reports clock ticks of
/// 1/100 s (USER_HZ, fixed at 100 in the kernel's user ABI).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The user's utterance as 20 ms frames, and how many of them hold its voice: the speech-end
/// instant of a turn is when the last frame with voice is sent, not the end of the silence a
/// recording may carry after it (espeak-ng writes about 0.4 s).
struct Utterance {
    frames: Vec<Bytes>,
    voiced_frames: usize,
}

/// A 16 kHz mono WAV file as an [`Utterance`].
fn wav_utterance(path: &str) -> Result<Utterance, String> {
    let mut r = hound::WavReader::open(path).map_err(|e| format!("--wav {path}: {e}"))?;
    let s = r.spec();
    if s.channels != 1 || s.sample_rate != 16_000 || s.bits_per_sample != 16 {
        return Err(format!(
            "--wav {path}: need 16 kHz mono 16-bit PCM, got {} Hz, {} channels, {} bits",
            s.sample_rate, s.channels, s.bits_per_sample
        ));
    }
    let samples: Vec<i16> = r
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--wav {path}: {e}"))?;
    let voiced_frames = voiced_frames(&samples);
    if voiced_frames == 0 {
        return Err(format!("--wav {path}: no voice in it"));
    }
    Ok(Utterance {
        frames: to_frames(&samples),
        voiced_frames,
    })
}

/// Frames up to and including the last one whose RMS is within 40 dB of the loudest frame's
/// (voice, including its quiet fade-out; digital silence and a recording's noise floor are
/// further down). 0 when every frame is silent.
fn voiced_frames(samples: &[i16]) -> usize {
    let rms: Vec<f64> = samples
        .chunks(320)
        .map(|c| (c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 320.0).sqrt())
        .collect();
    let loudest = rms.iter().copied().fold(0.0, f64::max);
    if loudest < 1.0 {
        return 0;
    }
    rms.iter()
        .rposition(|&r| r >= loudest / 100.0)
        .map_or(0, |i| i + 1)
}

fn to_frames(samples: &[i16]) -> Vec<Bytes> {
    samples
        .chunks(320)
        .map(|c| {
            let mut b: Vec<u8> = c.iter().flat_map(|s| s.to_le_bytes()).collect();
            b.resize(640, 0);
            Bytes::from(b)
        })
        .collect()
}

/// Frames of the listening mode: silence, or with `--speech` a 4 s cycle of 1.5 s of a voiced
/// buzz and silence.
fn listening_frames(speech: bool) -> Vec<Bytes> {
    if !speech {
        return vec![Bytes::from(vec![0u8; 640])];
    }
    let mut cycle = voice_tests::speech::voiced(1500);
    cycle.extend(voice_tests::speech::silence(2500));
    to_frames(&cycle)
}

/// The CPU of the host and of the rig over the measured window.
struct Cpu {
    host: Option<f64>,
    rig: f64,
}

fn cpu_now(args: &Args) -> Cpu {
    let host = args.pid.and_then(|p| cpu_seconds(&p.to_string()));
    let rig = args
        .rig_pids
        .iter()
        .filter_map(|p| cpu_seconds(&p.to_string()))
        .sum::<f64>()
        + cpu_seconds("self").unwrap_or(0.0);
    Cpu { host, rig }
}

/// "p50 x, p95 x, p99 x, max x" of a [`summary`], with `decimals` places.
fn percentiles(s: &[f64; 4], decimals: usize) -> String {
    format!(
        "p50 {:.*}, p95 {:.*}, p99 {:.*}, max {:.*}",
        decimals, s[0], decimals, s[1], decimals, s[2], decimals, s[3]
    )
}

/// The host's memory at one moment, in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss: Option<f64>,
    pss: Option<f64>,
}

impl Memory {
    fn of(pid: Option<u32>) -> Self {
        Self {
            rss: pid.and_then(|p| voice_tests::procfs::status(p, "VmRSS:")),
            pss: pid.and_then(|p| voice_tests::procfs::smaps_rollup(p, "Pss:")),
        }
    }
}

fn sum(records: &[SessionRecord], f: impl Fn(&SessionRecord) -> u64) -> u64 {
    records.iter().map(f).sum()
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("agent-load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let speech = match &args.wav {
        Some(path) => match wav_utterance(path) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("agent-load: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        // Long enough for five interim words (the default barge-in threshold) from the fake.
        None => {
            let frames = to_frames(&voice_tests::speech::voiced(1600));
            Utterance {
                voiced_frames: frames.len(),
                frames,
            }
        }
    };
    if args.converse {
        println!(
            "utterance: {:.2} s of voice in {:.2} s of audio; speech end is when its last voiced frame is sent",
            speech.voiced_frames as f64 * 0.02,
            speech.frames.len() as f64 * 0.02
        );
    }
    let memory_before = Memory::of(args.pid);
    let totals = Arc::new(Totals::default());
    let barrier = Arc::new(tokio::sync::Barrier::new(args.sessions + 1));
    let plan = Arc::new(converse::Plan {
        url: args.url.clone(),
        speech: speech.frames.into(),
        voiced_frames: speech.voiced_frames,
        silence: Bytes::from(vec![0u8; 640]),
        turn_every: Duration::from_secs_f64(args.turn_every),
        barge_in: args.barge_in,
        output_bytes_per_s: 32_000.0,
    });
    let listening: Arc<[Bytes]> = listening_frames(args.speech).into();
    let mut tasks = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let (totals, barrier) = (totals.clone(), barrier.clone());
        if args.converse {
            // Spread the first turns over one turn interval.
            let offset = Duration::from_secs_f64(args.turn_every * i as f64 / args.sessions as f64);
            let plan = plan.clone();
            let seconds = args.seconds;
            tasks.push(tokio::spawn(async move {
                totals.add(converse::session(plan, i as u64, offset, seconds, barrier).await);
            }));
        } else {
            let (url, frames, seconds) = (args.url.clone(), listening.clone(), args.seconds);
            tasks.push(tokio::spawn(async move {
                totals.add(listen::session(url, seconds, frames, barrier).await);
            }));
        }
        // Ramp up at 200 sessions/s so the accept queue is not the thing measured.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    barrier.wait().await;
    let cpu_start = cpu_now(&args);
    let window = Duration::from_secs(args.seconds);
    tokio::time::sleep(window.min(Duration::from_secs(2))).await;
    let memory_during = Memory::of(args.pid);
    tokio::time::sleep(window.saturating_sub(Duration::from_secs(2))).await;
    let cpu_end = cpu_now(&args);
    for t in tasks {
        let _ = t.await;
    }
    let records = totals.take();
    report(
        &args,
        &records,
        (cpu_start, cpu_end),
        (memory_before, memory_during),
    )
}

fn report(
    args: &Args,
    records: &[SessionRecord],
    (cpu_start, cpu_end): (Cpu, Cpu),
    (memory_before, memory_during): (Memory, Memory),
) -> std::process::ExitCode {
    let ready: Vec<&SessionRecord> = records.iter().filter(|r| r.ready).collect();
    let failed = args.sessions - ready.len();
    let connect = summary(&ready.iter().map(|r| r.connect_ms).collect::<Vec<_>>());
    let first_audio = summary(
        &records
            .iter()
            .flat_map(|r| r.first_audio_ms.iter().copied())
            .collect::<Vec<_>>(),
    );
    let host_turn = summary(
        &records
            .iter()
            .flat_map(|r| r.host_ms.iter().copied())
            .collect::<Vec<_>>(),
    );
    // Each `turn_metrics` stage, from the host's end of speech: (name, summary).
    let stage_summaries: Vec<(&str, [f64; 4])> = stats::STAGES
        .iter()
        .map(|stage| {
            let all: Vec<f64> = records
                .iter()
                .flat_map(|r| r.stage_ms.get(stage).into_iter().flatten().copied())
                .collect();
            (stage.trim_end_matches("_ms"), summary(&all))
        })
        .collect();
    let started = sum(records, |r| r.turns_started);
    let answered = sum(records, |r| r.turns_answered);
    let done = sum(records, |r| r.turns_done);
    let gaps = sum(records, |r| r.audio_gaps);
    let ended_early = records.iter().filter(|r| r.ended_early).count();
    let mut errors = std::collections::BTreeMap::<String, u64>::new();
    for r in records {
        for (code, n) in &r.errors {
            *errors.entry(code.clone()).or_default() += n;
        }
    }
    let session_seconds = ready.len() as f64 * args.seconds as f64;
    let host_cpu = cpu_start.host.zip(cpu_end.host).map(|(a, b)| b - a);
    let rig_cpu = cpu_end.rig - cpu_start.rig;

    println!(
        "sessions: {} requested, {} ready, {failed} failed, {ended_early} ended early",
        args.sessions,
        ready.len()
    );
    println!(
        "upgrade->ready ms: p50 {:.2}, p99 {:.2}, max {:.2}",
        connect[0], connect[2], connect[3]
    );
    println!(
        "audio frames sent: {} ({} more than 20 ms late on the client side)",
        sum(records, |r| r.frames_sent),
        sum(records, |r| r.late_frames)
    );
    println!(
        "agent audio bytes: {}, errors: {errors:?}",
        sum(records, |r| r.agent_audio_bytes)
    );
    if args.converse {
        println!(
            "turns: {started} started, {answered} answered, {done} ended; {} spoken over a reply, {} interrupts",
            sum(records, |r| r.barge_ins),
            sum(records, |r| r.interrupts)
        );
        println!(
            "speech end -> first agent audio ms (client): {}",
            percentiles(&first_audio, 1)
        );
        println!(
            "host time per turn ms (turn_metrics): {}",
            percentiles(&host_turn, 2)
        );
        let stages: Vec<String> = stage_summaries
            .iter()
            .map(|(stage, s)| format!("{stage} {:.0}/{:.0}", s[0], s[2]))
            .collect();
        println!(
            "host stages from speech end, p50/p99 ms: {}",
            stages.join(", ")
        );
        println!("holes > 40 ms in the agent's audio: {gaps}");
    }
    let wall = args.seconds as f64;
    if let Some(host) = host_cpu {
        print!(
            "host CPU: {host:.2} s in {wall} s ({:.2} cores), {:.3} ms per session-second",
            host / wall,
            host * 1000.0 / session_seconds.max(1.0)
        );
        if args.converse && started > 0 {
            print!(", {:.2} ms per turn", host * 1000.0 / started as f64);
        }
        println!();
    }
    println!(
        "rig CPU (agent-load + --rig-pid): {rig_cpu:.2} s ({:.2} cores)",
        rig_cpu / wall
    );
    let per_session = |before: Option<f64>, during: Option<f64>| {
        before
            .zip(during)
            .map(|(b, d)| (d - b).max(0.0) / ready.len().max(1) as f64)
    };
    let rss_per_session = per_session(memory_before.rss, memory_during.rss);
    let pss_per_session = per_session(memory_before.pss, memory_during.pss);
    if let (Some(b), Some(d), Some(per)) = (memory_before.rss, memory_during.rss, rss_per_session) {
        print!(
            "host RSS KiB: before {b}, with {} sessions {d}, per session {per:.1}",
            ready.len()
        );
        match pss_per_session {
            // Shared pages (plug-in memory images mapped into every instance) counted once.
            Some(pss) => println!("; proportional (PSS) per session {pss:.1}"),
            None => println!(),
        }
    }
    if let Some(path) = &args.json {
        let line = serde_json::json!({
            "label": args.label,
            "mode": if args.converse { "converse" } else if args.speech { "speech" } else { "listen" },
            "sessions": args.sessions,
            "ready": ready.len(),
            "seconds": args.seconds,
            "turn_every_s": args.turn_every,
            "barge_in": args.barge_in,
            "connect_ms": {"p50": connect[0], "p99": connect[2]},
            "turns": {"started": started, "answered": answered, "ended": done},
            "barge_ins": sum(records, |r| r.barge_ins),
            "interrupts": sum(records, |r| r.interrupts),
            "first_audio_ms": {"p50": first_audio[0], "p95": first_audio[1], "p99": first_audio[2], "max": first_audio[3]},
            "host_turn_ms": {"p50": host_turn[0], "p95": host_turn[1], "p99": host_turn[2]},
            "stages_ms": stage_summaries
                .iter()
                .map(|(stage, s)| (stage.to_string(), serde_json::json!({"p50": s[0], "p95": s[1], "p99": s[2]})))
                .collect::<serde_json::Map<_, _>>(),
            "audio_gaps": gaps,
            "errors": errors,
            "ended_early": ended_early,
            "host_cpu_s": host_cpu,
            "rig_cpu_s": rig_cpu,
            "rss_per_session_kib": rss_per_session,
            "pss_per_session_kib": pss_per_session,
        });
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| {
                use std::io::Write;
                writeln!(f, "{line}")
            });
        if let Err(e) = appended {
            eprintln!("agent-load: cannot write {path}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    if failed > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_voice_ends_at_its_last_loud_frame_not_at_the_trailing_silence() {
        let mut samples = vec![0i16; 320 * 3];
        samples.extend(voice_tests::speech::voiced(400));
        // A fade-out 30 dB under the peak is still voice; a noise floor 60 dB under it is not.
        let peak = samples.iter().map(|s| s.unsigned_abs()).max().unwrap() as f64;
        samples
            .extend((0..320).map(|i| ((peak / 31.6) * if i % 2 == 0 { 1.0 } else { -1.0 }) as i16));
        samples.extend((0..320 * 10).map(|i| if i % 2 == 0 { 8 } else { -8 }));
        assert_eq!(voiced_frames(&samples), 3 + 20 + 1);
        assert_eq!(voiced_frames(&vec![0; 3200]), 0);
    }
}
