//! The WebSocket side of `voice-host talk`: connect, `start`, stream the speech in real time
//! while reading the server's events, and stop once the conversation has gone quiet.

use super::report::{Reporter, Tally};
use super::{Speech, TalkArgs, TalkError};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Audio is sent in frames of this length, each at its real-time due moment.
const FRAME_MS: u64 = 20;
/// The conversation is over when nothing is pending and the server said nothing for this long.
const QUIET: Duration = Duration::from_millis(1500);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What came back from the host.
pub struct Outcome {
    pub tally: Tally,
    /// The agent's voice, PCM16 at `rate`.
    pub samples: Vec<i16>,
    pub rate: u32,
}

/// The URL without credentials or query (which may carry tokens), for messages.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "the given URL".into(),
    }
}

async fn connect(url: &str) -> Result<Ws, TalkError> {
    let parsed =
        url::Url::parse(url).map_err(|e| TalkError::Usage(format!("--url {}: {e}", shown(url))))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(TalkError::Usage(format!(
            "--url must start with ws:// or wss://, not {}://",
            parsed.scheme()
        )));
    }
    let at = shown(url);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url)).await {
        Err(_) => Err(TalkError::Connect(format!(
            "{at}: no answer within {CONNECT_TIMEOUT:?}"
        ))),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let body: Value = resp
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or_default();
            let why = body["message"].as_str().unwrap_or("no reason given");
            Err(TalkError::Connect(format!(
                "{at} refused the session: HTTP {} ({why})",
                resp.status()
            )))
        }
        Ok(Err(e)) => Err(TalkError::Connect(format!("cannot connect to {at}: {e}"))),
    }
}

/// Send `start` and wait for `ready`; returns the agent audio's sample rate.
async fn start(
    ws: &mut Ws,
    args: &TalkArgs,
    input_rate: u32,
    report: &mut Reporter<'_>,
) -> Result<u32, TalkError> {
    let mut start = json!({
        "type": "start",
        "audio": {"encoding": "pcm16", "sample_rate": input_rate},
        "output": {"encoding": "pcm16", "sample_rate": args.rate},
    });
    if let Some(agent) = &args.agent {
        start["agent"] = json!(agent);
    }
    let lost = |e: tungstenite::Error| TalkError::Connect(format!("connection lost: {e}"));
    ws.send(Message::Text(start.to_string().into()))
        .await
        .map_err(lost)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => {
                return Err(TalkError::Connect(format!(
                    "the host did not answer start within {READY_TIMEOUT:?}"
                )))
            }
            Ok(None) => return Err(TalkError::Connect("the host closed the connection".into())),
            Ok(Some(Err(e))) => return Err(lost(e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Message::Text(text) = frame else {
            if let Message::Close(f) = frame {
                let reason = f.map(|f| format!("{} {}", u16::from(f.code), f.reason));
                return Err(TalkError::Connect(format!(
                    "the host closed the session: {}",
                    reason.unwrap_or_default()
                )));
            }
            continue;
        };
        let m: Value = serde_json::from_str(&text).unwrap_or_default();
        match m["type"].as_str() {
            Some("ready") => {
                report.event(&m);
                report.say(&format!(
                    "connected: session {}",
                    m["session_id"].as_str().unwrap_or("?")
                ));
                return Ok(m["output"]["sample_rate"]
                    .as_u64()
                    .and_then(|r| u32::try_from(r).ok())
                    .unwrap_or(args.rate));
            }
            Some("error") => {
                return Err(TalkError::Connect(format!(
                    "the host refused the session: {} [{}]",
                    m["message"].as_str().unwrap_or(""),
                    m["code"].as_str().unwrap_or("")
                )))
            }
            _ => report.event(&m),
        }
    }
}

/// Whether the conversation still has something in flight.
#[derive(Default)]
struct Pending {
    user_speaking: bool,
    /// An interim transcript without its final yet.
    interim: bool,
    /// The newest user turn that has not been answered (`u64::MAX` for a typed turn, whose
    /// number is not known).
    awaiting: Option<u64>,
    /// Agent text is streaming.
    replying: bool,
}

impl Pending {
    fn observe(&mut self, m: &Value) {
        let turn = m["turn"].as_u64().unwrap_or(0);
        match m["type"].as_str().unwrap_or("") {
            "vad" => self.user_speaking = m["event"] == "speech_start",
            "transcript" if m["final"] == true => {
                self.interim = false;
                self.awaiting = Some(self.awaiting.map_or(turn, |a| a.max(turn)));
            }
            "transcript" => self.interim = true,
            "agent_text" => self.replying = true,
            "agent_done" => {
                self.replying = false;
                if turn >= 1 && self.awaiting.is_some_and(|a| a == u64::MAX || turn >= a) {
                    self.awaiting = None;
                }
            }
            _ => {}
        }
    }

    fn idle(&self) -> bool {
        !self.user_speaking && !self.interim && !self.replying && self.awaiting.is_none()
    }
}

fn frames(speech: Option<&Speech>, tail_ms: u32) -> Vec<Vec<u8>> {
    let Some(s) = speech else { return Vec::new() };
    let per_frame = (s.rate as usize * FRAME_MS as usize / 1000).max(1);
    let tail = s.rate as usize * tail_ms as usize / 1000;
    let mut all = s.samples.clone();
    all.resize(all.len() + tail, 0);
    all.chunks(per_frame)
        .map(|c| c.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect()
}

/// Run the conversation: returns what the host said and sent.
pub async fn converse(
    args: &TalkArgs,
    speech: Option<Speech>,
    out: &mut dyn Write,
) -> Result<Outcome, TalkError> {
    let mut report = Reporter::new(out, args.json);
    let mut ws = connect(&args.url).await?;
    let input_rate = speech.as_ref().map_or(16_000, |s| s.rate);
    let rate = start(&mut ws, args, input_rate, &mut report).await?;
    let frames = frames(speech.as_ref(), args.tail_ms);

    let mut samples: Vec<i16> = Vec::new();
    let mut odd_byte: Option<u8> = None;
    let mut pending = Pending::default();
    let mut text = args.text.clone();
    let began = Instant::now();
    let mut next = 0usize;
    let mut input_done: Option<Instant> = None;
    let mut last_heard = Instant::now();
    let mut closed = false;
    let wait = Duration::from_secs(args.wait);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    loop {
        if next == frames.len() && input_done.is_none() {
            if let Some(t) = text.take() {
                report.say(&format!("you:   {t} (typed)"));
                let msg = json!({"type": "text", "text": t}).to_string();
                if ws.send(Message::Text(msg.into())).await.is_err() {
                    break;
                }
                pending.awaiting = Some(u64::MAX);
            }
            input_done = Some(Instant::now());
        }
        if let Some(done) = input_done {
            if pending.idle() && last_heard.elapsed() >= QUIET {
                break;
            }
            if done.elapsed() >= wait {
                report.say(&format!("stopped waiting after {}s", args.wait));
                break;
            }
        }
        let due = began + Duration::from_millis(FRAME_MS * next as u64);
        tokio::select! {
            _ = tokio::time::sleep_until(due), if next < frames.len() => {
                if ws.send(Message::Binary(frames[next].clone().into())).await.is_err() {
                    break;
                }
                next += 1;
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let m: Value = serde_json::from_str(&t).unwrap_or_default();
                    pending.observe(&m);
                    report.event(&m);
                    last_heard = Instant::now();
                }
                Some(Ok(Message::Binary(b))) => {
                    decode_pcm16(&b, &mut odd_byte, &mut samples);
                    last_heard = Instant::now();
                }
                Some(Ok(Message::Close(f))) => {
                    if let Some(f) = f.filter(|f| u16::from(f.code) != 1000) {
                        report.say(&format!("the host closed the session: {} {}", u16::from(f.code), f.reason));
                    }
                    closed = true;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    report.say(&format!("connection lost: {e}"));
                    closed = true;
                    break;
                }
                None => {
                    closed = true;
                    break;
                }
            },
            // Re-check the end conditions while nothing arrives.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = &mut ctrl_c => {
                report.say("interrupted: ending the session");
                break;
            }
        }
    }

    if !closed {
        let _ = ws
            .send(Message::Text(json!({"type": "stop"}).to_string().into()))
            .await;
        // Read to the close so the last events and audio are kept.
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, ws.next()).await {
            match frame {
                Message::Text(t) => {
                    let m: Value = serde_json::from_str(&t).unwrap_or_default();
                    report.event(&m);
                }
                Message::Binary(b) => decode_pcm16(&b, &mut odd_byte, &mut samples),
                Message::Close(_) => break,
                _ => {}
            }
        }
    }
    report.finish();
    Ok(Outcome {
        tally: report.tally.clone(),
        samples,
        rate,
    })
}

/// Append little-endian 16-bit samples, carrying a byte split across frames.
fn decode_pcm16(bytes: &[u8], carry: &mut Option<u8>, out: &mut Vec<i16>) {
    let mut rest = bytes;
    if let Some(lo) = carry.take() {
        match rest.split_first() {
            Some((hi, tail)) => {
                out.push(i16::from_le_bytes([lo, *hi]));
                rest = tail;
            }
            None => {
                *carry = Some(lo);
                return;
            }
        }
    }
    let mut pairs = rest.chunks_exact(2);
    out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
    *carry = pairs.remainder().first().copied();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_secrets() {
        assert_eq!(
            shown("wss://user:pw@voice.example.com/agent?token=abc"),
            "wss://voice.example.com/agent"
        );
        assert_eq!(shown("not a url"), "the given URL");
    }

    #[test]
    fn pcm16_survives_odd_frame_splits() {
        let samples: Vec<i16> = vec![1, -2, 300, -32768, 32767];
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut out = Vec::new();
        let mut carry = None;
        for part in [&bytes[..3], &bytes[3..4], &bytes[4..7], &bytes[7..]] {
            decode_pcm16(part, &mut carry, &mut out);
        }
        assert_eq!(out, samples);
        assert_eq!(carry, None);
    }

    #[test]
    fn speech_is_framed_in_20_ms_with_a_silent_tail() {
        let s = Speech {
            samples: vec![7; 8000],
            rate: 8000,
        };
        let f = frames(Some(&s), 100);
        assert_eq!(f.len(), 55, "1 s + 100 ms in 20 ms frames");
        assert!(f.iter().all(|x| x.len() == 320));
        assert_eq!(&f[0][..2], &7i16.to_le_bytes());
        assert!(f[54].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_turn_is_pending_until_its_reply_is_done() {
        let mut p = Pending::default();
        assert!(p.idle());
        p.observe(&json!({"type":"transcript","turn":1,"text":"hi","final":false}));
        assert!(!p.idle());
        p.observe(&json!({"type":"transcript","turn":1,"text":"hi","final":true}));
        assert!(!p.idle());
        p.observe(&json!({"type":"agent_text","turn":1,"delta":"Hello"}));
        p.observe(&json!({"type":"transcript","turn":2,"text":"wait","final":true}));
        // The interrupted reply to turn 1 ends; turn 2 still needs its answer.
        p.observe(&json!({"type":"agent_done","turn":1,"text":"","interrupted":true}));
        assert!(!p.idle());
        p.observe(&json!({"type":"agent_done","turn":2,"text":"Sure.","interrupted":false}));
        assert!(p.idle());
    }
}
