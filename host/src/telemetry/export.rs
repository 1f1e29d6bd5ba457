//! The OTLP span exporter for the configured transport. HTTP uses a blocking reqwest client,
//! which the SDK's batch processor drives from its own thread; gRPC uses tonic, whose channel
//! lives on the tokio runtime.

use crate::config::telemetry::OtlpProtocol;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};

/// An exporter sending spans to `endpoint` (the full traces URL for HTTP, the collector's
/// address for gRPC).
pub fn span_exporter(endpoint: &str, protocol: OtlpProtocol) -> Result<SpanExporter, String> {
    let built = match protocol {
        OtlpProtocol::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build(),
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => SpanExporter::builder()
            .with_http()
            .with_protocol(match protocol {
                OtlpProtocol::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            })
            .with_endpoint(endpoint)
            .build(),
    };
    built.map_err(|e| format!("OTLP exporter ({}): {e}", protocol.as_str()))
}
