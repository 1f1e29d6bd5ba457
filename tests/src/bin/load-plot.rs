//! Draws the figures of a capacity sweep (the JSON lines `agent-load --json` appends, one per
//! run) against session count: speech end -> first agent audio (p50 and p99) and the host's CPU
//! in cores, one line per label (a configuration).
//!
//! ```text
//! load-plot target/capacity/capacity.jsonl target/capacity/capacity.png [TITLE]
//! ```

use plotters::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// One run: sessions, first-audio p50 and p99 (ms), host cores.
type Point = (f64, f64, f64, f64);

fn read(path: &str) -> Result<BTreeMap<String, Vec<Point>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut series: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", n + 1))?;
        let num = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
        let cores = num(&v["host_cpu_s"]) / num(&v["seconds"]);
        series
            .entry(v["label"].as_str().unwrap_or("").to_string())
            .or_default()
            .push((
                num(&v["sessions"]),
                num(&v["first_audio_ms"]["p50"]),
                num(&v["first_audio_ms"]["p99"]),
                cores,
            ));
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Ok(series)
}

fn draw(series: &BTreeMap<String, Vec<Point>>, out: &str, title: &str) -> Result<(), String> {
    voice_tests::plot::register_sans()?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let all = || series.values().flatten();
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    let max_sessions = all().map(|p| p.0).fold(10.0, f64::max) * 1.05;
    let max_ms = all().map(|p| finite(p.2)).fold(100.0, f64::max) * 1.1;
    let max_cores = all().map(|p| finite(p.3)).fold(0.5, f64::max) * 1.15;
    let root = BitMapBackend::new(out, (1000, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(e)?;
    let panels = root.split_evenly((2, 1));
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];

    let mut latency = ChartBuilder::on(&panels[0])
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_sessions, 0.0..max_ms)
        .map_err(e)?;
    latency
        .configure_mesh()
        .x_desc("conversing sessions")
        .y_desc("speech end -> first audio, ms")
        .draw()
        .map_err(e)?;
    for (i, (label, points)) in series.iter().enumerate() {
        let c = colours[i % colours.len()];
        let ok = |p: &&Point| p.1.is_finite() && p.2.is_finite();
        latency
            .draw_series(LineSeries::new(
                points.iter().filter(ok).map(|p| (p.0, p.1)),
                c.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("{label} p50"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        latency
            .draw_series(DashedLineSeries::new(
                points.iter().filter(ok).map(|p| (p.0, p.2)),
                6,
                4,
                c.stroke_width(2),
            ))
            .map_err(e)?
            .label(format!("{label} p99"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(1)));
    }
    latency
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;

    let mut cpu = ChartBuilder::on(&panels[1])
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..max_sessions, 0.0..max_cores)
        .map_err(e)?;
    cpu.configure_mesh()
        .x_desc("conversing sessions")
        .y_desc("host CPU, cores")
        .draw()
        .map_err(e)?;
    for (i, (label, points)) in series.iter().enumerate() {
        let c = colours[i % colours.len()];
        cpu.draw_series(LineSeries::new(
            points
                .iter()
                .filter(|p| p.3.is_finite())
                .map(|p| (p.0, p.3)),
            c.stroke_width(2),
        ))
        .map_err(e)?
        .label(label.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    cpu.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(input), Some(output)) = (args.first(), args.get(1)) else {
        eprintln!("usage: load-plot RUNS.jsonl OUT.png [TITLE]");
        return std::process::ExitCode::from(2);
    };
    let title = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| "capacity: latency and host CPU against sessions".into());
    match read(input).and_then(|s| draw(&s, output, &title)) {
        Ok(()) => {
            println!("wrote {output}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load-plot: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
