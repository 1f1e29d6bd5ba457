//! Load tool for `/agent`: opens many sessions, streams audio in real time and reports connection
//! latency, pacing lag, errors and (with `--pid`) the host's resident memory per session.
//!
//! ```text
//! agent-load --url ws://127.0.0.1:4010/agent --sessions 1000 --seconds 30 [--pid PID] [--speech]
//! ```
//! Bounded in count and time; it talks only to the URL given (use a loopback host).

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    url: String,
    sessions: usize,
    seconds: u64,
    pid: Option<u32>,
    speech: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: "ws://127.0.0.1:4010/agent".into(),
        sessions: 100,
        seconds: 20,
        pid: None,
        speech: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--sessions" => a.sessions = value()?.parse().map_err(|_| "--sessions: a number")?,
            "--seconds" => a.seconds = value()?.parse().map_err(|_| "--seconds: a number")?,
            "--pid" => a.pid = Some(value()?.parse().map_err(|_| "--pid: a number")?),
            "--speech" => a.speech = true,
            "--help" | "-h" => return Err(
                "usage: agent-load [--url URL] [--sessions N] [--seconds S] [--pid PID] [--speech]"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !(1..=5000).contains(&a.sessions) || !(1..=600).contains(&a.seconds) {
        return Err("--sessions must be 1..=5000 and --seconds 1..=600".into());
    }
    Ok(a)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[derive(Default)]
struct Totals {
    connect_ms: Mutex<Vec<f64>>,
    failed: AtomicU64,
    frames_sent: AtomicU64,
    late_frames: AtomicU64,
    messages: AtomicU64,
    errors: AtomicU64,
    audio_bytes: AtomicU64,
}

async fn session(
    url: String,
    seconds: u64,
    speech: bool,
    totals: Arc<Totals>,
    ready_barrier: Arc<tokio::sync::Barrier>,
) {
    let t0 = Instant::now();
    let ws = tokio_tungstenite::connect_async(url.as_str()).await;
    let Ok((mut ws, _)) = ws else {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        ready_barrier.wait().await;
        return;
    };
    let start = r#"{"type":"start","audio":{"encoding":"pcm16","sample_rate":16000}}"#;
    if ws.send(Message::Text(start.into())).await.is_err() {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        ready_barrier.wait().await;
        return;
    }
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => break,
            Some(Ok(_)) => continue,
            _ => {
                totals.failed.fetch_add(1, Ordering::Relaxed);
                ready_barrier.wait().await;
                return;
            }
        }
    }
    totals
        .connect_ms
        .lock()
        .await
        .push(t0.elapsed().as_secs_f64() * 1000.0);
    ready_barrier.wait().await;

    let (mut tx, mut rx) = ws.split();
    let reader_totals = totals.clone();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Text(t) => {
                    reader_totals.messages.fetch_add(1, Ordering::Relaxed);
                    if t.contains("\"error\"") {
                        reader_totals.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Message::Binary(b) => {
                    reader_totals
                        .audio_bytes
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    let frames = seconds * 50;
    let begin = tokio::time::Instant::now();
    let mut frame = vec![0u8; 640];
    for i in 0..frames {
        if speech {
            // 1.5 s of a voiced buzz every 4 s, silence otherwise.
            let t = (i % 200) as f64 / 50.0;
            let loud = t < 1.5;
            for (n, s) in frame.chunks_mut(2).enumerate() {
                let phase = (i as f64 * 320.0 + n as f64) / 16000.0;
                let v = if loud {
                    ((phase * 2.0 * std::f64::consts::PI * 140.0).sin() * 6000.0) as i16
                } else {
                    0
                };
                s.copy_from_slice(&v.to_le_bytes());
            }
        }
        let due = begin + Duration::from_millis(20 * i);
        if tokio::time::Instant::now() > due + Duration::from_millis(20) {
            totals.late_frames.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep_until(due).await;
        if tx
            .send(Message::Binary(frame.clone().into()))
            .await
            .is_err()
        {
            break;
        }
        totals.frames_sent.fetch_add(1, Ordering::Relaxed);
    }
    let _ = tx.send(Message::Text(r#"{"type":"stop"}"#.into())).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
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
    let rss_before = args.pid.and_then(rss_kib);
    let totals = Arc::new(Totals::default());
    let barrier = Arc::new(tokio::sync::Barrier::new(args.sessions + 1));
    let mut tasks = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        tasks.push(tokio::spawn(session(
            args.url.clone(),
            args.seconds,
            args.speech,
            totals.clone(),
            barrier.clone(),
        )));
        // Ramp up at 200 sessions/s so the accept queue is not the thing measured.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    barrier.wait().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_during = args.pid.and_then(rss_kib);
    for t in tasks {
        let _ = t.await;
    }
    let mut connect = totals.connect_ms.lock().await.clone();
    connect.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let ok = connect.len();
    println!(
        "sessions: {} requested, {ok} ready, {} failed",
        args.sessions,
        totals.failed.load(Ordering::Relaxed)
    );
    println!(
        "upgrade->ready ms: p50 {:.2}, p99 {:.2}, max {:.2}",
        percentile(&connect, 0.5),
        percentile(&connect, 0.99),
        connect.last().copied().unwrap_or(f64::NAN)
    );
    let sent = totals.frames_sent.load(Ordering::Relaxed);
    println!(
        "audio frames sent: {sent} ({} more than 20 ms late on the client side)",
        totals.late_frames.load(Ordering::Relaxed)
    );
    println!(
        "server messages: {}, errors: {}, agent audio bytes: {}",
        totals.messages.load(Ordering::Relaxed),
        totals.errors.load(Ordering::Relaxed),
        totals.audio_bytes.load(Ordering::Relaxed)
    );
    if let (Some(before), Some(during)) = (rss_before, rss_during) {
        let per = (during.saturating_sub(before)) as f64 / ok.max(1) as f64;
        println!(
            "host RSS KiB: before {before}, with {ok} sessions {during}, per session {per:.1}"
        );
    }
    if totals.failed.load(Ordering::Relaxed) > 0 {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    }
}
