//! Soak tool for `/agent`: many sessions converse for a long time, each in a loop of a typed
//! question, a spoken barge-in over the reply, and the answer to the barge-in, while the host's
//! resident memory, open file descriptors, threads and active sessions are sampled. Writes the
//! samples as CSV and a plot (PNG), prints a Markdown table and the growth after warm-up, and
//! exits non-zero when a session failed or memory or descriptors grew past the given bounds.
//!
//! ```text
//! soak --url ws://127.0.0.1:4010/agent --metrics http://127.0.0.1:4010/metrics --pid PID \
//!      --sessions 200 --seconds 1800 --out target/soak [--sample-s 10] [--warmup-s 60]
//!      [--max-rss-growth-mib 64] [--max-fd-growth 32]
//! ```
//! Talks only to the URLs given (use a loopback host and the fake providers).

use plotters::prelude::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use voice_tests::microphone::Microphone;
use voice_tests::speech;

struct Args {
    url: String,
    metrics: String,
    pid: u32,
    sessions: usize,
    seconds: u64,
    sample_s: u64,
    warmup_s: u64,
    out: PathBuf,
    max_rss_growth_mib: f64,
    max_fd_growth: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        url: String::new(),
        metrics: String::new(),
        pid: 0,
        sessions: 200,
        seconds: 60,
        sample_s: 10,
        warmup_s: 60,
        out: PathBuf::from("target/soak"),
        max_rss_growth_mib: 64.0,
        max_fd_growth: 32.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let num = |v: String| v.parse::<f64>().map_err(|_| format!("not a number: {v}"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--metrics" => a.metrics = value()?,
            "--pid" => a.pid = num(value()?)? as u32,
            "--sessions" => a.sessions = num(value()?)? as usize,
            "--seconds" => a.seconds = num(value()?)? as u64,
            "--sample-s" => a.sample_s = num(value()?)? as u64,
            "--warmup-s" => a.warmup_s = num(value()?)? as u64,
            "--out" => a.out = PathBuf::from(value()?),
            "--max-rss-growth-mib" => a.max_rss_growth_mib = num(value()?)?,
            "--max-fd-growth" => a.max_fd_growth = num(value()?)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.url.is_empty() || a.metrics.is_empty() || a.pid == 0 {
        return Err("--url, --metrics and --pid are required".into());
    }
    if !(1..=2000).contains(&a.sessions) || a.seconds == 0 || a.sample_s == 0 {
        return Err("--sessions must be 1..=2000; --seconds and --sample-s at least 1".into());
    }
    Ok(a)
}

/// What the sessions did so far.
#[derive(Default)]
struct Counts {
    turns: AtomicU64,
    barge_ins: AtomicU64,
}

/// One sample of the host.
#[derive(Debug, Clone)]
struct Sample {
    at_s: f64,
    rss_mib: f64,
    fds: f64,
    threads: f64,
    sessions: f64,
    turns: u64,
    barge_ins: u64,
}

fn open_fds(pid: u32) -> Option<f64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64)
}

async fn active_sessions(metrics: &str) -> Option<f64> {
    let text = reqwest::get(metrics).await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("voice_sessions_active "))
        .and_then(|v| v.trim().parse().ok())
}

/// One session's conversation, until the process ends it: ask for a story, talk over it, hear
/// the answer to what was said, again.
async fn converse(url: String, counts: Arc<Counts>) {
    let mut mic = Microphone::connect(
        &url,
        serde_json::json!({"encoding": "pcm16", "sample_rate": 16000}),
    )
    .await;
    let mut story = mic.ask_after_ready("tell me a story").await;
    loop {
        // 300 ms into the story, a second of speech over it.
        mic.audio(300 * 32).await;
        mic.say(&speech::utterance(1000, 600));
        let ended = mic
            .until("the story's interrupt or end", |v| {
                (v["type"] == "interrupt" || v["type"] == "agent_done") && v["turn"] == story
            })
            .await;
        if ended["type"] == "interrupt" {
            counts.barge_ins.fetch_add(1, Ordering::Relaxed);
        }
        // The words said become a turn of their own; its answer ends.
        mic.until("the answer to the barge-in", |v| {
            v["type"] == "agent_done" && v["turn"].as_u64() > Some(story)
        })
        .await;
        counts.turns.fetch_add(2, Ordering::Relaxed);
        // Keep the client's record small over a long run.
        mic.log.clear();
        mic.send(serde_json::json!({"type": "text", "text": "tell me a story"}));
        story = mic
            .until("the next story", |v| {
                v["type"] == "agent_text" && v["turn"].as_u64() > Some(story)
            })
            .await["turn"]
            .as_u64()
            .expect("a turn number");
    }
}

/// One measured quantity of a sample.
type Measure = fn(&Sample) -> f64;

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// How much a measure grew over the steady samples: the median of their last third less the
/// median of their first third. A single sample lands anywhere in the load's own swing (the
/// provider connections open at that instant: about 150 descriptors with 200 sessions), so
/// comparing two samples fails a run that does not grow; a leak moves the whole third.
fn growth(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let third = (values.len() / 3).max(1);
    let median = |part: &[f64]| {
        let mut v = part.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    median(&values[values.len() - third..]) - median(&values[..third])
}

/// Draws resident memory and descriptors over time.
fn plot(samples: &[Sample], path: &std::path::Path, title: &str) -> Result<(), String> {
    voice_tests::plot::register_sans()?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(e)?;
    let panels = root.split_evenly((2, 1));
    let end = samples.last().map_or(1.0, |s| s.at_s.max(1.0)) / 60.0;
    let series: [(&str, Measure, RGBColor); 2] = [
        ("resident memory (MiB)", |s| s.rss_mib, BLUE),
        ("open file descriptors", |s| s.fds, RED),
    ];
    for (panel, (label, value, colour)) in panels.iter().zip(series) {
        let top = samples.iter().map(value).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_desc(label)
            .draw()
            .map_err(e)?;
        chart
            .draw_series(LineSeries::new(
                samples.iter().map(|s| (s.at_s / 60.0, value(s))),
                colour.stroke_width(2),
            ))
            .map_err(e)?;
    }
    root.present().map_err(e)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let counts = Arc::new(Counts::default());
    let sessions: Vec<_> = (0..args.sessions)
        .map(|_| tokio::spawn(converse(args.url.clone(), counts.clone())))
        .collect();
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.sample_s));
    println!("| min | RSS MiB | fds | threads | sessions | turns | barge-ins |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    loop {
        tick.tick().await;
        let at = started.elapsed().as_secs_f64();
        let s = Sample {
            at_s: at,
            rss_mib: voice_tests::procfs::status(args.pid, "VmRSS:").unwrap_or(f64::NAN) / 1024.0,
            fds: open_fds(args.pid).unwrap_or(f64::NAN),
            threads: voice_tests::procfs::status(args.pid, "Threads:").unwrap_or(f64::NAN),
            sessions: active_sessions(&args.metrics).await.unwrap_or(f64::NAN),
            turns: counts.turns.load(Ordering::Relaxed),
            barge_ins: counts.barge_ins.load(Ordering::Relaxed),
        };
        println!(
            "| {:.1} | {:.1} | {} | {} | {} | {} | {} |",
            s.at_s / 60.0,
            s.rss_mib,
            s.fds,
            s.threads,
            s.sessions,
            s.turns,
            s.barge_ins
        );
        samples.push(s);
        if at >= args.seconds as f64 {
            break;
        }
    }
    let failed = sessions.iter().filter(|t| t.is_finished()).count();
    for t in &sessions {
        t.abort();
    }

    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_s >= args.warmup_s as f64)
        .collect();
    let per_min = |f: Measure| {
        slope(
            &steady
                .iter()
                .map(|s| (s.at_s / 60.0, f(s)))
                .collect::<Vec<_>>(),
        )
    };
    let grew = |f: Measure| growth(&steady.iter().map(|s| f(s)).collect::<Vec<_>>());
    let (rss_slope, fd_slope) = (per_min(|s| s.rss_mib), per_min(|s| s.fds));
    let (rss_growth, fd_growth) = (grew(|s| s.rss_mib), grew(|s| s.fds));
    println!(
        "\nafter {} s of warm-up: resident memory {rss_growth:+.1} MiB ({rss_slope:+.2} MiB/min), \
         descriptors {fd_growth:+.0} ({fd_slope:+.2}/min); {} turns, {} barge-ins, {failed} \
         sessions failed",
        args.warmup_s,
        counts.turns.load(Ordering::Relaxed),
        counts.barge_ins.load(Ordering::Relaxed),
    );

    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("soak: cannot create {}: {e}", args.out.display());
        return std::process::ExitCode::FAILURE;
    }
    let csv: String =
        std::iter::once("seconds,rss_mib,fds,threads,sessions,turns,barge_ins\n".to_string())
            .chain(samples.iter().map(|s| {
                format!(
                    "{:.0},{:.1},{},{},{},{},{}\n",
                    s.at_s, s.rss_mib, s.fds, s.threads, s.sessions, s.turns, s.barge_ins
                )
            }))
            .collect();
    let _ = std::fs::write(args.out.join("soak.csv"), csv);
    let title = format!(
        "{} sessions, {} min: memory {rss_slope:+.2} MiB/min, descriptors {fd_slope:+.2}/min after warm-up",
        args.sessions,
        args.seconds / 60
    );
    if let Err(e) = plot(&samples, &args.out.join("soak.png"), &title) {
        eprintln!("soak: no plot: {e}");
        return std::process::ExitCode::FAILURE;
    }
    println!("wrote {}", args.out.join("soak.png").display());

    let mut ok = true;
    if failed > 0 {
        eprintln!("soak: {failed} sessions failed");
        ok = false;
    }
    if rss_growth > args.max_rss_growth_mib {
        eprintln!(
            "soak: resident memory grew {rss_growth:.1} MiB after warm-up (bound {} MiB)",
            args.max_rss_growth_mib
        );
        ok = false;
    }
    if fd_growth > args.max_fd_growth {
        eprintln!(
            "soak: descriptors grew by {fd_growth:.0} after warm-up (bound {})",
            args.max_fd_growth
        );
        ok = false;
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::growth;

    /// The descriptors of a 5-minute run of 200 sessions (2026-12-06) after its warm-up: a swing
    /// of 190 around a flat level, which its first and last samples alone call +58.
    const FLAT: [f64; 28] = [
        749., 785., 812., 722., 710., 795., 770., 812., 721., 625., 749., 753., 812., 721., 702.,
        778., 735., 812., 721., 662., 721., 807., 812., 721., 768., 812., 758., 807.,
    ];

    #[test]
    fn a_swing_without_a_trend_is_no_growth() {
        assert!(FLAT[FLAT.len() - 1] - FLAT[0] > 32.0, "the premise");
        let g = growth(&FLAT);
        assert!(g.abs() < 32.0, "{g}");
    }

    #[test]
    fn a_leak_under_the_swing_is_growth() {
        // Four descriptors more at each 10 s sample, under the same swing.
        let leaking: Vec<f64> = FLAT
            .iter()
            .enumerate()
            .map(|(i, v)| v + 4.0 * i as f64)
            .collect();
        let g = growth(&leaking);
        assert!(g > 64.0, "{g}");
        assert_eq!(growth(&[700.0]), 0.0);
    }
}
