//! A listening session: the microphone streams for the whole run and the user never takes a
//! turn (silence), or, with `--speech`, a voiced buzz of 1.5 s every 4 s whose replies are
//! counted but not timed (see `converse` for a timed conversation).

use crate::converse::{open, FRAME};
use crate::stats::SessionRecord;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Runs one listening session for `seconds` after everyone is ready at `barrier`.
pub async fn session(
    url: String,
    seconds: u64,
    frames: Arc<[Bytes]>,
    barrier: Arc<tokio::sync::Barrier>,
) -> SessionRecord {
    let mut rec = SessionRecord::default();
    let t0 = std::time::Instant::now();
    let opened = open(&url).await;
    // Upgrade to ready, not the wait for the other sessions.
    rec.connect_ms = t0.elapsed().as_secs_f64() * 1000.0;
    barrier.wait().await;
    let Ok(ws) = opened else {
        return rec;
    };
    rec.ready = true;
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let (mut audio, mut errors) = (0u64, 0u64);
        while let Some(Ok(m)) = rx.next().await {
            match m {
                Message::Text(t) if t.contains("\"error\"") => errors += 1,
                Message::Binary(b) => audio += b.len() as u64,
                Message::Close(_) => break,
                _ => {}
            }
        }
        (audio, errors)
    });
    let begin = tokio::time::Instant::now();
    for i in 0..seconds * 50 {
        let due = begin + FRAME * i as u32;
        if tokio::time::Instant::now() > due + FRAME {
            rec.late_frames += 1;
        }
        tokio::time::sleep_until(due).await;
        let frame = frames[i as usize % frames.len()].clone();
        if tx.send(Message::Binary(frame)).await.is_err() {
            rec.ended_early = true;
            break;
        }
        rec.frames_sent += 1;
    }
    let _ = tx.send(Message::Text(r#"{"type":"stop"}"#.into())).await;
    if let Ok(Ok((audio, errors))) = tokio::time::timeout(Duration::from_secs(5), reader).await {
        rec.agent_audio_bytes = audio;
        if errors > 0 {
            rec.errors.insert("error".into(), errors);
        }
    }
    rec
}
