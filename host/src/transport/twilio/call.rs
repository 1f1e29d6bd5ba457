//! One phone call: wait for Twilio's `start`, run a session in mu-law, and bridge the two ways.
//! Nothing Twilio (or anyone pretending to be it) sends can panic the server: malformed frames
//! are logged and skipped.

use super::call_frames::CallFrames;
use super::marks::PlaybackMarks;
use super::messages::{self, ParseOutcome, StreamStart, TwilioEvent};
use super::outbound::Translator;
use crate::admission::twilio::STREAM_TOKEN_PARAMETER;
use crate::admission::Admitted;
use crate::audio::{AudioFormat, Encoding};
use crate::config::Config;
use crate::session::{driver, outbound, Outbound, StartParams};
use crate::transport::input_limits::InputLimits;
use crate::transport::protocol::close;
use crate::transport::supervise::supervise;
use crate::transport::writer;
use crate::transport::SessionEnv;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// The session parameters for a stream, or why the call cannot be served. A stream let in
/// without a session token must carry the stream token minted for its call.
fn accept_start(
    config: &Config,
    admitted: &Admitted,
    start: &StreamStart,
) -> Result<StartParams, String> {
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
    if let Some(auth) = &admitted.stream_auth {
        let token = start
            .custom_parameters
            .get(STREAM_TOKEN_PARAMETER)
            .map(String::as_str);
        auth.check_stream(token, start.call_sid.as_deref(), agent)
            .map_err(|e| e.to_string())?;
    }
    let agent = admitted.agent(agent).map_err(|code| code.to_string())?;
    let profile = config
        .agent_profile(agent)
        .ok_or_else(|| format!("no agent profile named {:?}", agent.unwrap_or_default()))?;
    Ok(StartParams {
        session_id: sid.clone(),
        input: format,
        output: format,
        agent: profile.clone(),
        // A phone call cannot come back on a new socket: nothing to resume.
        resume: None,
    })
}

/// Read until Twilio's `start`; `None` when the stream ended or never started in time.
async fn await_start(stream: &mut Stream, timeout: Duration) -> Option<StreamStart> {
    let deadline = tokio::time::Instant::now() + timeout;
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

/// Serve one admitted Twilio Media Streams connection.
pub async fn serve(socket: WebSocket, env: SessionEnv, mut admitted: Admitted) {
    let (mut sink, mut stream) = socket.split();
    let Some(stream_start) = await_start(&mut stream, admitted.limits.start_timeout).await else {
        send_close(&mut sink, close::POLICY, "no start event").await;
        return;
    };
    let start = match accept_start(&env.deps.config, &admitted, &stream_start) {
        Ok(s) => {
            if admitted.stream_auth.is_some() {
                admitted.vouched_for_by_twilio();
            }
            s
        }
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
    let input_limits = InputLimits::new(admitted.limits, start.input);

    let marks = Arc::new(Mutex::new(PlaybackMarks::new(start.output.sample_rate)));
    let mut translator = Translator::new(start.session_id.clone(), marks.clone());
    let (out_tx, out_rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
    // The session task reads Twilio's frames itself (see `call_frames`).
    let (frames, call_gone) = CallFrames::new(stream, input_limits, marks, out_tx.clone());
    let session = tokio::spawn(driver::run(
        env.deps.clone(),
        start,
        frames,
        out_tx.clone(),
        env.drain.clone(),
    ));

    // Writer: session output to Twilio.
    let mut writer = tokio::spawn(writer::run(sink, out_rx, env.force.clone(), move |out| {
        let frames = match out {
            Outbound::Audio(bytes) => translator.audio(&bytes),
            Outbound::Json(text) => translator.json(&text),
            Outbound::Close { .. } => Vec::new(),
        };
        frames
            .into_iter()
            .map(|f| Message::Text(f.into()))
            .collect()
    }));

    supervise(session, call_gone, || {
        out_tx.close(close::INTERNAL, "internal error")
    })
    .await;
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
    drop(admitted);
}
