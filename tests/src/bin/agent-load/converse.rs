//! A conversing session, as a caller would hold it: the microphone sends a 20 ms frame every
//! 20 ms (speech during a user turn, silence otherwise), a user turn every `turn_every`, and a
//! share of the replies is talked over shortly after they start. The session measures what the
//! caller would notice: speech end (the last frame with voice sent) -> first agent audio, holes
//! in the agent's audio, turns that got no answer, errors.
//!
//! One task per session drives both directions (no channels, no locks); frames are prebuilt
//! and shared, so a frame sent costs a reference count, not an allocation.

use crate::stats::{SessionRecord, STAGES};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Frame length on the wire (PCM16, 16 kHz mono).
pub const FRAME: Duration = Duration::from_millis(20);
/// Agent audio arriving this long after the client's buffer ran dry is a hole a caller hears.
const GAP: Duration = Duration::from_millis(40);
/// A barge-in starts this long after the reply's first audio: past the 3 s the default rules
/// let the agent speak before anything interrupts it (`TTS_MIN_DURATION_MS`).
const BARGE_IN_AFTER: Duration = Duration::from_millis(3500);
/// After the measured window, how long a session waits for the replies still due.
const DRAIN: Duration = Duration::from_secs(6);

/// What every conversing session shares.
pub struct Plan {
    pub url: String,
    /// The user's utterance, in 20 ms frames.
    pub speech: Arc<[Bytes]>,
    /// How many of its frames hold voice: the speech ends when the last of them is sent
    /// (the frames after it are the recording's trailing silence).
    pub voiced_frames: usize,
    pub silence: Bytes,
    pub turn_every: Duration,
    /// Share of replies the user talks over (0..=1).
    pub barge_in: f64,
    /// Output audio bytes per second (PCM16 at the rate the host confirms in `ready`).
    pub output_bytes_per_s: f64,
}

/// A small deterministic generator (xorshift64*), seeded per session, so a run is repeatable.
struct Dice(u64);

impl Dice {
    fn chance(&mut self, p: f64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (x as f64 / (1u64 << 53) as f64) < p
    }
}

/// A reply's audio as the client's player sees it: playing starts with the first audio and
/// runs at real time; audio that arrives after the buffer ran dry for more than [`GAP`] is a
/// hole the caller hears.
#[derive(Debug, Clone, Copy)]
struct Playout {
    /// When the buffered audio runs out.
    dry_at: Instant,
}

impl Playout {
    fn start(now: Instant, lasts: Duration) -> Self {
        Self {
            dry_at: now + lasts,
        }
    }

    /// Audio lasting `lasts` arrives at `now`; true when it ends a hole.
    fn push(&mut self, now: Instant, lasts: Duration) -> bool {
        let hole = now > self.dry_at + GAP;
        self.dry_at = self.dry_at.max(now) + lasts;
        hole
    }
}

/// Where the conversation stands, as the client sees it.
#[derive(Default)]
struct Turn {
    /// Next frame of the utterance being spoken.
    speaking: Option<usize>,
    /// When the last utterance's speech ended, until its final transcript names its turn.
    spoken_at: Option<Instant>,
    /// The turn the last utterance became, and when its speech ended, until its first audio.
    awaiting_audio: Option<(u64, Instant)>,
    /// The reply playing: its turn and its playout.
    playing: Option<(u64, Playout)>,
    /// The utterance now being spoken is over a reply.
    over_reply: bool,
}

/// Connects, starts the session and waits for `ready`. `Err` when any step fails.
pub async fn open(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    (),
> {
    // A browser's small read buffer, and each 20 ms frame sent at once (no Nagle delay).
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|_| ())?;
    let start = r#"{"type":"start","audio":{"encoding":"pcm16","sample_rate":16000}}"#;
    ws.send(Message::Text(start.into())).await.map_err(|_| ())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"ready\"") => return Ok(ws),
            Some(Ok(_)) => continue,
            _ => return Err(()),
        }
    }
}

/// Runs one session: connect, wait for everyone at `barrier`, converse for `seconds` (the first
/// turn after `offset`), then let the replies due come in.
pub async fn session(
    plan: Arc<Plan>,
    index: u64,
    offset: Duration,
    seconds: u64,
    barrier: Arc<tokio::sync::Barrier>,
) -> SessionRecord {
    let mut rec = SessionRecord::default();
    let t0 = std::time::Instant::now();
    let opened = open(&plan.url).await;
    // Upgrade to ready, not the wait for the other sessions.
    rec.connect_ms = t0.elapsed().as_secs_f64() * 1000.0;
    barrier.wait().await;
    let Ok(mut ws) = opened else {
        return rec;
    };
    rec.ready = true;

    let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ (index + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9));
    let begin = Instant::now();
    let end = begin + Duration::from_secs(seconds);
    let mut next_turn = begin + offset;
    let mut tick = tokio::time::interval_at(begin, FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut due = begin;
    let mut t = Turn::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now > due + FRAME {
                    rec.late_frames += 1;
                }
                due += FRAME;
                if now >= end + DRAIN || (now >= end && t.awaiting_audio.is_none() && t.spoken_at.is_none() && t.playing.is_none() && t.speaking.is_none()) {
                    break;
                }
                if t.speaking.is_none() && now >= next_turn && now < end {
                    t.speaking = Some(0);
                    t.over_reply = t.playing.is_some();
                    rec.turns_started += 1;
                    rec.barge_ins += u64::from(t.over_reply);
                    next_turn += plan.turn_every;
                    while next_turn <= now {
                        next_turn += plan.turn_every;
                    }
                }
                let frame = match t.speaking {
                    Some(i) => {
                        let f = plan.speech[i].clone();
                        t.speaking = (i + 1 < plan.speech.len()).then_some(i + 1);
                        if i + 1 == plan.voiced_frames.clamp(1, plan.speech.len()) {
                            t.spoken_at = Some(now);
                        }
                        f
                    }
                    None => plan.silence.clone(),
                };
                if ws.send(Message::Binary(frame)).await.is_err() {
                    rec.ended_early = true;
                    break;
                }
                rec.frames_sent += 1;
            }
            m = ws.next() => {
                let now = Instant::now();
                match m {
                    Some(Ok(Message::Binary(b))) => {
                        rec.agent_audio_bytes += b.len() as u64;
                        let lasts = Duration::from_secs_f64(b.len() as f64 / plan.output_bytes_per_s);
                        if let Some((turn, spoken)) = t.awaiting_audio.take() {
                            rec.first_audio_ms.push(now.duration_since(spoken).as_secs_f64() * 1000.0);
                            rec.turns_answered += 1;
                            t.playing = Some((turn, Playout::start(now, lasts)));
                            if dice.chance(plan.barge_in) && now + BARGE_IN_AFTER < end {
                                // Talk over this reply shortly; the regular schedule goes on after.
                                next_turn = now + BARGE_IN_AFTER;
                            }
                        } else if let Some((_, playout)) = t.playing.as_mut() {
                            rec.audio_gaps += u64::from(playout.push(now, lasts));
                        }
                    }
                    Some(Ok(Message::Text(text))) => on_text(&text, now, &mut t, &mut rec),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        rec.ended_early = now < end;
                        break;
                    }
                    Some(Ok(_)) => {}
                }
            }
        }
    }
    let _ = ws.send(Message::Text(r#"{"type":"stop"}"#.into())).await;
    rec
}

fn on_text(text: &str, _now: Instant, t: &mut Turn, rec: &mut SessionRecord) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        *rec.errors.entry("unreadable-message".into()).or_default() += 1;
        return;
    };
    let turn = v["turn"].as_u64();
    match v["type"].as_str() {
        Some("transcript") if v["final"] == true => {
            if let (Some(spoken), Some(n)) = (t.spoken_at.take(), turn) {
                t.awaiting_audio = Some((n, spoken));
            }
        }
        Some(kind @ ("agent_done" | "interrupt")) => {
            rec.interrupts += u64::from(kind == "interrupt");
            // The reply playing ended (an interrupt comes before its `agent_done`).
            if t.playing.is_some_and(|(n, _)| Some(n) == turn) {
                t.playing = None;
                rec.turns_done += 1;
            }
        }
        Some("turn_metrics") => {
            if let Some(ms) = v["host_processing_ms"].as_f64() {
                rec.host_ms.push(ms);
            }
            for stage in STAGES {
                if let Some(ms) = v[stage].as_f64() {
                    rec.stage_ms.entry(stage).or_default().push(ms);
                }
            }
        }
        Some("error") => {
            let code = v["code"].as_str().unwrap_or("unknown").to_string();
            *rec.errors.entry(code).or_default() += 1;
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_is_audio_arriving_more_than_40_ms_after_the_buffer_ran_dry() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut p = Playout::start(t0, ms(100));
        // Ahead of the player: no hole, the buffer grows to 300 ms.
        assert!(!p.push(t0 + ms(50), ms(200)));
        // Dry at 300 ms; 30 ms late is within the tolerance.
        assert!(!p.push(t0 + ms(330), ms(100)));
        // Dry at 430 ms; arriving at 500 ms is a 70 ms hole.
        assert!(p.push(t0 + ms(500), ms(100)));
        // Playing restarts from the late audio: dry at 600 ms.
        assert!(!p.push(t0 + ms(620), ms(20)));
    }

    #[test]
    fn the_dice_fall_as_often_as_asked() {
        let mut d = Dice(42);
        let hits = (0..10_000).filter(|_| d.chance(0.2)).count();
        assert!((1_800..2_200).contains(&hits), "{hits} of 10000 at 0.2");
        assert!(!(0..1000).any(|_| d.chance(0.0)));
        assert!((0..1000).all(|_| d.chance(1.0)));
    }
}
