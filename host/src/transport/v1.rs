//! Client protocol v1 over a WebSocket: the `start` handshake, then frames to and from the
//! session task. Nothing a client sends can panic the server or affect another session: frames
//! are validated here and a session's panic is contained in its own task.

use super::client_frames::ClientFrames;
use super::env::SessionEnv;
use super::input_limits::InputLimits;
use super::protocol::{close, ClientMessage, ResumeRequest, ServerMessage, MAX_TEXT_FRAME_BYTES};
use super::resume_start;
use super::supervise::supervise;
use super::writer;
use crate::admission::Admitted;
use crate::audio::AudioFormat;
use crate::config::Config;
use crate::resume::ResumeToken;
use crate::session::{driver, outbound, Outbound, OutboundTx, SessionResume, StartParams};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};

type Sink = SplitSink<WebSocket, Message>;

async fn send_json(sink: &mut Sink, m: &ServerMessage) -> bool {
    sink.send(Message::Text(m.to_json().into())).await.is_ok()
}

async fn send_close(sink: &mut Sink, code: u16, reason: &str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_string()),
        })))
        .await;
}

/// Check a `start` message and turn it into session parameters. The agent profile must be one
/// the session's token allows.
fn accept_start(
    config: &Config,
    admitted: &Admitted,
    msg: ClientMessage,
) -> Result<(StartParams, Option<ResumeRequest>), Box<ServerMessage>> {
    let ClientMessage::Start {
        audio,
        output,
        session_id,
        agent,
        resume,
    } = msg
    else {
        return Err(Box::new(ServerMessage::error(
            "not_started",
            "the first message must be {\"type\":\"start\",...}",
            false,
        )));
    };
    audio.validate().map_err(|e| {
        Box::new(ServerMessage::error(
            "bad_audio_format",
            format!("audio: {e}"),
            false,
        ))
    })?;
    let output: AudioFormat = output.unwrap_or(audio);
    output.validate().map_err(|e| {
        Box::new(ServerMessage::error(
            "bad_audio_format",
            format!("output: {e}"),
            false,
        ))
    })?;
    let session_id = match session_id {
        Some(id)
            if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_graphic()) =>
        {
            return Err(Box::new(ServerMessage::error(
                "bad_session_id",
                "session_id must be 1-128 printable ASCII characters",
                false,
            )))
        }
        Some(id) => id,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let agent = admitted
        .agent(agent.as_deref())
        .map_err(|code| {
            Box::new(ServerMessage::error(
                code,
                "this session's token does not allow that agent",
                false,
            ))
        })?
        .map(str::to_string);
    let agent_name = agent.clone();
    let profile = config.agent_profile(agent.as_deref()).ok_or_else(|| {
        Box::new(ServerMessage::error(
            "unknown_agent",
            format!("no agent profile named {:?}", agent.unwrap_or_default()),
            false,
        ))
    })?;
    let session_resume = config.resume.enabled().then(|| SessionResume {
        token: ResumeToken::generate(),
        restored: None,
        agent: agent_name,
    });
    Ok((
        StartParams {
            session_id,
            input: audio,
            output,
            agent: profile.clone(),
            resume: session_resume,
        },
        resume,
    ))
}

/// Tells the client of a session that panicked: `internal`, then 1011.
fn report_panic(out: &OutboundTx) {
    let _ = out.json(
        ServerMessage::error("internal", "internal error; the session ended", true).to_json(),
    );
    out.close(close::INTERNAL, "internal error");
}

/// Serve one admitted `/agent` connection.
pub async fn serve(socket: WebSocket, env: SessionEnv, admitted: Admitted) {
    let (mut sink, mut stream) = socket.split();

    // Handshake: wait for a valid `start`.
    let deadline = tokio::time::Instant::now() + admitted.limits.start_timeout;
    let start = loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                send_json(
                    &mut sink,
                    &ServerMessage::error("start_timeout", "no start message received", true),
                )
                .await;
                send_close(&mut sink, close::POLICY, "no start message").await;
                return;
            }
            Ok(None) | Ok(Some(Err(_))) => return,
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(text) => {
                if text.len() > MAX_TEXT_FRAME_BYTES {
                    send_json(
                        &mut sink,
                        &ServerMessage::error("frame_too_large", "text frame too large", false),
                    )
                    .await;
                    continue;
                }
                match ClientMessage::parse(&text) {
                    Ok(m) => match accept_start(&env.deps.config, &admitted, m) {
                        Ok(p) => break p,
                        Err(e) => {
                            send_json(&mut sink, &e).await;
                        }
                    },
                    Err(e) => {
                        send_json(&mut sink, &ServerMessage::error(e.code, e.message, false)).await;
                    }
                }
            }
            Message::Binary(_) => {
                send_json(
                    &mut sink,
                    &ServerMessage::error("not_started", "send start before audio", false),
                )
                .await;
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    };

    let (mut start, resume_request) = start;
    let resume_refused = match &resume_request {
        Some(request) => resume_start::apply(&env.deps, &admitted, &mut start, request)
            .await
            .err(),
        None => None,
    };
    let session_id = start.session_id.clone();
    let ready = ServerMessage::Ready {
        session_id: session_id.clone(),
        output: start.output,
        protocol: 1,
        resume_token: start.resume.as_ref().map(|r| r.token.secret().to_string()),
        resumed: start.resume.as_ref().is_some_and(|r| r.restored.is_some()),
    };
    if !send_json(&mut sink, &ready).await {
        return;
    }
    if let Some(e) = resume_refused {
        crate::metrics::global().resumes_refused.inc();
        send_json(
            &mut sink,
            &ServerMessage::error(e.code(), e.message(), false),
        )
        .await;
    } else if resume_request.is_some() {
        crate::metrics::global().resumes.inc();
    }
    let span = tracing::info_span!("session", id = %session_id);
    let _enter = span.enter();
    let subject = admitted.claims.as_ref().map(|c| c.sub.as_str());
    tracing::info!(input = ?start.input, output = ?start.output, subject, "session started");
    let input_limits = InputLimits::new(admitted.limits, start.input);
    let metrics = crate::metrics::global();
    metrics.sessions_total.inc();
    metrics.sessions_active.inc();

    let (out_tx, out_rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
    // The session task reads the client's frames itself (see `client_frames`).
    let (frames, client_gone) = ClientFrames::new(stream, input_limits, out_tx.clone());
    let session = tokio::spawn(driver::run(
        env.deps.clone(),
        start,
        frames,
        out_tx.clone(),
        env.drain.clone(),
    ));

    // Writer: session output to the socket.
    let mut writer = tokio::spawn(writer::run(
        sink,
        out_rx,
        env.force.clone(),
        |out| match out {
            Outbound::Json(text) => vec![Message::Text(text.into())],
            Outbound::Audio(bytes) => vec![Message::Binary(bytes.into())],
            Outbound::Close { .. } => Vec::new(),
        },
    ));

    supervise(session, client_gone, || report_panic(&out_tx)).await;
    drop(out_tx);
    // The slot is held until the socket is gone: the writer finishes its close (bounded by the
    // send timeout) or is stopped, and with it the connection.
    if tokio::time::timeout(2 * writer::SEND_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
        let _ = writer.await;
    }
    metrics.sessions_active.dec();
    tracing::info!("session ended");
    drop(admitted);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No client input is known to panic a session; the catch is checked here with a task
    /// that does.
    #[tokio::test]
    async fn a_session_that_panics_ends_with_internal_and_1011() {
        let (tx, mut rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
        let before = crate::metrics::global().session_panics.get();
        let session = tokio::spawn(async { panic!("a fault inside the session") });
        supervise(session, std::future::pending::<()>(), || report_panic(&tx)).await;
        let Some(Outbound::Json(text)) = rx.recv().await else {
            panic!("no error event")
        };
        let error: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["code"], "internal");
        assert_eq!(error["fatal"], true);
        assert!(matches!(
            rx.recv().await,
            Some(Outbound::Close { code: 1011, .. })
        ));
        assert!(crate::metrics::global().session_panics.get() > before);
    }

    #[tokio::test]
    async fn a_session_that_panics_while_winding_down_is_still_reported() {
        let (tx, mut rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
        // The client has left; the session faults on its way out.
        let session = tokio::spawn(async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            panic!("a fault while winding down")
        });
        supervise(session, std::future::ready(()), || report_panic(&tx)).await;
        drop(tx);
        let Some(Outbound::Json(text)) = rx.recv().await else {
            panic!("no error event")
        };
        assert!(text.contains("\"internal\""), "{text}");
    }

    #[tokio::test]
    async fn a_session_that_ends_normally_is_not_reported() {
        let (tx, mut rx) = outbound::channel(outbound::MAX_QUEUED_AUDIO_MS);
        supervise(tokio::spawn(async {}), std::future::pending::<()>(), || {
            report_panic(&tx)
        })
        .await;
        drop(tx);
        assert_eq!(rx.recv().await, None, "no error and no close of its own");
    }
}
