//! OpenTelemetry traces: one trace per session, a span per turn, and under it what the turn
//! waited on (the final transcript, each plug-in call, the LLM, text-to-speech, playout and
//! barge-in decisions).
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set: then sessions hold
//! no tracer at all and the audio path does not change. When on, a session records plain
//! timestamps as events pass (`session_trace.rs`) and builds a turn's spans once, when the turn
//! ends, with their real start and end times; the SDK's batch processor exports them from its own
//! thread, so a slow or absent collector never delays a session (spans past its queue are
//! dropped).

mod export;
mod session_trace;

pub use session_trace::SessionTrace;

use crate::config::telemetry::TelemetryConfig;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::sync::Arc;

/// The process's trace pipeline: a tracer provider with a batch exporter.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    record_text: bool,
}

impl Telemetry {
    /// Builds the pipeline when an endpoint is configured (`Ok(None)`: tracing is off). Call it
    /// inside the tokio runtime: the gRPC exporter's channel runs on it.
    pub fn start(cfg: &TelemetryConfig) -> Result<Option<Arc<Self>>, String> {
        let Some(endpoint) = &cfg.traces_endpoint else {
            return Ok(None);
        };
        let exporter = export::span_exporter(endpoint, cfg.protocol)?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(cfg.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("voice-host");
        tracing::info!(
            endpoint = cfg.traces_endpoint_shown().unwrap_or_default(),
            protocol = cfg.protocol.as_str(),
            "exporting traces over OTLP"
        );
        Ok(Some(Arc::new(Self {
            provider,
            tracer,
            record_text: cfg.record_text,
        })))
    }

    /// A new session's trace (its root span starts now).
    pub fn session(&self, session_id: &str) -> SessionTrace {
        SessionTrace::new(self.tracer.clone(), session_id, self.record_text)
    }

    /// Exports what is queued and stops the exporter (at the end of a drain). Blocking work,
    /// moved off the async workers; the gRPC exporter still needs the runtime running.
    pub async fn shutdown(self: &Arc<Self>) {
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || me.provider.shutdown()).await;
        match done {
            Ok(Ok(())) => tracing::debug!("trace exporter stopped"),
            Ok(Err(e)) => tracing::warn!(error = %e, "trace exporter did not stop cleanly"),
            Err(e) => tracing::warn!(error = %e, "trace exporter shutdown failed"),
        }
    }
}
