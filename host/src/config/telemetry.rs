//! OpenTelemetry settings: where traces go (`OTEL_EXPORTER_OTLP_*`, the standard variables) and
//! whether transcripts may appear in them. Tracing is off unless an endpoint is set.

use super::reader::Reader;
use super::source::{err, ConfigError};

/// The OTLP transports the specification names for `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (the specification's default).
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
    /// `grpc`.
    Grpc,
}

impl OtlpProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::HttpJson => "http/json",
            OtlpProtocol::Grpc => "grpc",
        }
    }
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`, `OTEL_RECORD_TEXT`.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Where spans are sent: the traces URL itself (for HTTP, `/v1/traces` already added to
    /// a base endpoint, as the specification says). `None`: tracing is off.
    pub traces_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` as given (the base every signal's URL is built from).
    pub base_endpoint: Option<String>,
    pub protocol: OtlpProtocol,
    pub service_name: String,
    /// Transcripts and reply text as span attributes (otherwise only their lengths).
    pub record_text: bool,
}

impl TelemetryConfig {
    pub(super) fn read(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let protocol = match r
            .str_or("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .trim()
        {
            "http/protobuf" => OtlpProtocol::HttpProtobuf,
            "http/json" => OtlpProtocol::HttpJson,
            "grpc" => OtlpProtocol::Grpc,
            _ => {
                return Err(err(
                    "OTEL_EXPORTER_OTLP_PROTOCOL",
                    "expected http/protobuf, http/json or grpc",
                ))
            }
        };
        let url = |name: &str| -> Result<Option<String>, ConfigError> {
            match r.opt(name) {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u)),
                Some(_) => Err(err(name, "expected an http:// or https:// URL")),
                None => Ok(None),
            }
        };
        let base = url("OTEL_EXPORTER_OTLP_ENDPOINT")?;
        let traces_endpoint = match url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")? {
            Some(signal) => Some(signal),
            None => base.clone().map(|b| match protocol {
                OtlpProtocol::Grpc => b,
                _ => format!("{}/v1/traces", b.trim_end_matches('/')),
            }),
        };
        Ok(Self {
            traces_endpoint,
            base_endpoint: base,
            protocol,
            service_name: r.str_or("OTEL_SERVICE_NAME", "voice-host"),
            record_text: r.boolean("OTEL_RECORD_TEXT", false)?,
        })
    }

    /// The traces URL without any user name or password in it (for logs and `voice-host config`).
    pub fn traces_endpoint_shown(&self) -> Option<String> {
        self.traces_endpoint.as_deref().map(without_credentials)
    }

    /// Settings as shown by `voice-host config`.
    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                self.base_endpoint
                    .as_deref()
                    .map(without_credentials)
                    .unwrap_or_default(),
            ),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                self.traces_endpoint_shown()
                    .unwrap_or_else(|| "(unset: tracing off)".into()),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", self.protocol.as_str().into()),
            ("OTEL_SERVICE_NAME", self.service_name.clone()),
            ("OTEL_RECORD_TEXT", self.record_text.to_string()),
        ]
    }
}

/// `url` with its user info (`user:password@`) replaced by `***@`.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_password(None);
            let _ = u.set_username("***");
            u.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(not a URL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::without_credentials;

    #[test]
    fn credentials_in_an_endpoint_are_not_shown() {
        let shown = without_credentials("https://team:s3cret@otlp.example.com/v1/traces");
        assert!(
            !shown.contains("s3cret") && !shown.contains("team"),
            "{shown}"
        );
        assert_eq!(
            without_credentials("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
    }
}
