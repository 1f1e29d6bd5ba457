//! One phone call: wait for Twilio's `start`, run a session in mu-law, and bridge the two ways.
//! Nothing Twilio (or anyone pretending to be it) sends can panic the server: malformed frames
//! are logged and skipped.

use super::inbound::inbound;
use super::marks::PlaybackMarks;
use super::messages::{self, ParseOutcome, StreamStart, TwilioEvent};
use super::outbound::Translator;
use crate::audio::{AudioFormat, Encoding};
use crate::server::AppState;
use crate::session::{driver, outbound, Outbound, StartParams};
use crate::transport::protocol::close;
use crate::transport::writer;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit};

/// How long Twilio may take to send `start` after connecting.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const INBOUND_CAPACITY: usize = 64;

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

async fn send_close(sink: &mut Sink, code: u16, reason: &str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_string()),
        })))
        .await;
}

/// The session parameters for a stream, or why the call cannot be served.
fn accept_start(state: &AppState, start: &StreamStart) -> Result<StartParams, String> {
    let sid = &start.stream_sid;
    if sid.is_empty() || sid.len() > 128 || !sid.chars().all(|c| c.is_ascii_graphic()) {
        return Err("streamSid must be 1-128 printable ASCII characters".into());
    }
    let rate = match &start.media_format {
        None => 8000,
        Some(f) if f.encoding == "audio/x-mulaw" && f.channels == 1 => f.sample_rate,
        Some(f) => {
            return Err(format!(
                "unsupported media format {} with {} channels",
                f.encoding, f.channels
            ))
        }
    };
    let format = AudioFormat {
        encoding: Encoding::Mulaw,
        sample_rate: rate,
    };
    format.validate()?;
    let agent = start.custom_parameters.get("agent").map(String::as_str);
    let profile = state
        .config
        .agent_profile(agent)
        .ok_or_else(|| format!("no agent profile named {:?}", agent.unwrap_or_default()))?;
    Ok(StartParams {
        session_id: sid.clone(),
        input: format,
        output: format,
        agent: profile.clone(),
    })
}

/// Read until Twilio's `start`; `None` when the stream ended or never started in time.
async fn await_start(stream: &mut Stream) -> Option<StreamStart> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                tracing::warn!("twilio stream sent no start in time");
                return None;
            }
            Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(text) => match messages::parse(&text) {
                ParseOutcome::Event(TwilioEvent::Start { start }) => return Some(start),
                ParseOutcome::Event(TwilioEvent::Stop {}) => return None,
                ParseOutcome::Event(_) | ParseOutcome::Ignored(_) => {}
                ParseOutcome::Invalid(why) => tracing::debug!(%why, "twilio frame skipped"),
            },
            Message::Close(_) => return None,
            Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// Serve one Twilio Media Streams connection.
pub async fn serve(socket: WebSocket, state: Arc<AppState>, permit: OwnedSemaphorePermit) {
    let (mut sink, mut stream) = socket.split();
    let Some(stream_start) = await_start(&mut stream).await else {
        send_close(&mut sink, close::POLICY, "no start event").await;
        return;
    };
    let start = match accept_start(&state, &stream_start) {
        Ok(s) => s,
        Err(why) => {
            tracing::warn!(%why, "twilio stream refused");
            send_close(&mut sink, close::POLICY, "stream refused").await;
            return;
        }
    };
    let span = tracing::info_span!("call", id = %start.session_id);
    let _enter = span.enter();
    tracing::info!(
        call = stream_start.call_sid.as_deref().unwrap_or(""),
        rate = start.input.sample_rate,
        "call started"
    );
    let metrics = crate::metrics::global();
    metrics.sessions_total.inc();
    metrics.sessions_active.inc();

    let marks = Arc::new(Mutex::new(PlaybackMarks::new(start.output.sample_rate)));
    let mut translator = Translator::new(start.session_id.clone(), marks.clone());
    let (in_tx, in_rx) = mpsc::channel(INBOUND_CAPACITY);
    let (out_tx, out_rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
    let mut session = tokio::spawn(driver::run(
        state.deps.clone(),
        start,
        in_rx,
        out_tx.clone(),
        state.drain_signal(),
    ));

    // Writer: session output to Twilio.
    let mut writer = tokio::spawn(writer::run(
        sink,
        out_rx,
        state.force_signal(),
        move |out| {
            let frames = match out {
                Outbound::Audio(bytes) => translator.audio(&bytes),
                Outbound::Json(text) => translator.json(&text),
                Outbound::Close { .. } => Vec::new(),
            };
            frames
                .into_iter()
                .map(|f| Message::Text(f.into()))
                .collect()
        },
    ));

    // Reader: Twilio events to the session.
    let reader = async move {
        while let Some(Ok(frame)) = stream.next().await {
            let item = match frame {
                Message::Text(text) => inbound(&text, &marks),
                Message::Close(_) => break,
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) => None,
            };
            if let Some(item) = item {
                if in_tx.send(item).await.is_err() {
                    break;
                }
            }
        }
        // Dropping `in_tx` tells the session the call ended.
    };

    tokio::select! {
        _ = reader => {
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
            session.abort();
        }
        result = &mut session => {
            if result.as_ref().is_err_and(|e| e.is_panic()) {
                metrics.session_panics.inc();
                tracing::error!("session task panicked");
                out_tx.close(close::INTERNAL, "internal error");
            }
        }
    }
    drop(out_tx);
    // The slot is held until the socket is gone (see `transport::v1`).
    if tokio::time::timeout(2 * writer::SEND_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
        let _ = writer.await;
    }
    metrics.sessions_active.dec();
    tracing::info!("call ended");
    drop(permit);
}
