//! Admission: who gets in, and how much. One decision before the WebSocket upgrade, for `/agent`
//! and `/twilio` alike: drain, origin, connection rate per IP, signed session token, sessions per
//! IP and in total. The server asks; the transport receives the answer ([`Admitted`]) and never
//! reaches back into the server's state.

mod carrier;
pub mod client_ip;
pub mod limits;
pub mod secret;
pub mod session_limits;
pub mod token;
pub mod twilio;

pub use carrier::{presented_token, PROTOCOL, TOKEN_PREFIX};
pub use session_limits::SessionLimits;
pub use token::{Claims, TokenError};

use crate::config::Config;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use client_ip::TrustedProxies;
use limits::{ConnectRate, IpSlot, PerIpSessions};
use serde_json::json;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use twilio::TwilioAuth;

/// Seconds a client over its concurrent-session cap is asked to wait.
const PER_IP_RETRY_AFTER_S: u64 = 5;

/// The endpoint a request opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Agent,
    Twilio,
}

/// What admission looks at.
pub struct Request<'a> {
    pub route: Route,
    /// The TCP peer.
    pub peer: IpAddr,
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
}

/// A refused request: the HTTP answer, with a JSON `error` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl Refusal {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        crate::metrics::global().sessions_rejected.inc();
        let body = Json(json!({
            "type": "error", "code": self.code, "message": self.message, "fatal": true
        }));
        let mut resp = (self.status, body).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// A session let in: its slots (released on drop), who it is and what it may do.
pub struct Admitted {
    pub client_ip: IpAddr,
    /// The verified session token, when one was presented.
    pub claims: Option<Claims>,
    pub limits: SessionLimits,
    /// Set for a Twilio stream let in without a session token: its `start` must carry the
    /// stream token the TwiML handed out.
    pub stream_auth: Option<Arc<TwilioAuth>>,
    _permit: OwnedSemaphorePermit,
    ip_slot: IpSlot,
}

impl Admitted {
    /// A Twilio stream whose `start` carried its call's stream token stops counting against
    /// its address's `MAX_SESSIONS_PER_IP`: Twilio carries many callers from a few addresses.
    pub fn vouched_for_by_twilio(&mut self) {
        self.ip_slot = IpSlot::uncounted(self.client_ip);
    }

    /// The agent profile a `start` may run: the token's `agent` when the start names none; an
    /// error code when it names another.
    pub fn agent<'a>(
        &'a self,
        requested: Option<&'a str>,
    ) -> Result<Option<&'a str>, &'static str> {
        let requested = requested.filter(|a| !a.is_empty());
        let allowed = self
            .claims
            .as_ref()
            .and_then(|c| c.agent.as_deref())
            .filter(|a| !a.is_empty());
        match (allowed, requested) {
            (Some(a), Some(r)) if a != r => Err("agent_not_allowed"),
            (Some(a), _) => Ok(Some(a)),
            (None, r) => Ok(r),
        }
    }
}

/// A verified Twilio voice webhook: where the stream connects and the token it carries.
pub struct Webhook {
    /// `host[:port]` of the `wss://` stream URL.
    pub host: String,
    pub stream_token: Option<String>,
}

/// The admission decision for the whole server.
pub struct Admission {
    allowed_origins: Vec<String>,
    proxies: TrustedProxies,
    verifier: Option<token::Verifier>,
    twilio: Option<Arc<TwilioAuth>>,
    public_url: Option<url::Url>,
    max_sessions: usize,
    capacity: Arc<Semaphore>,
    per_ip: PerIpSessions,
    rate: ConnectRate,
    limits: SessionLimits,
    closed: AtomicBool,
}

impl Admission {
    pub fn new(cfg: &Config) -> Self {
        let s = &cfg.security;
        Self {
            allowed_origins: cfg.allowed_origins.clone(),
            proxies: TrustedProxies::new(s.trusted_proxies.clone()),
            verifier: token::Verifier::new(s.auth_secret.as_deref(), s.auth_public_key.as_deref()),
            twilio: s
                .twilio_auth_token
                .as_deref()
                .map(|t| Arc::new(TwilioAuth::new(t))),
            public_url: s.public_url.clone(),
            max_sessions: cfg.max_sessions,
            capacity: Arc::new(Semaphore::new(cfg.max_sessions)),
            per_ip: PerIpSessions::new(s.max_sessions_per_ip),
            rate: ConnectRate::new(s.connect_rate_per_min, s.connect_burst),
            limits: SessionLimits::from_config(s),
            closed: AtomicBool::new(false),
        }
    }

    /// Admit or refuse a session. Cheap checks come first, so a flood costs little; the token
    /// is verified after the rate check so a flood of bad tokens cannot burn CPU.
    pub fn admit(&self, req: &Request<'_>) -> Result<Admitted, Refusal> {
        if self.is_closed() {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "the server is shutting down",
            )
            .retry_after(5));
        }
        self.check_origin(req.headers)?;
        let client_ip = self.proxies.client_ip(req.peer, req.headers);
        // Twilio carries many callers from a few media-server addresses: with TWILIO_AUTH_TOKEN
        // its streams must show their call's stream token at `start` instead (a socket without
        // one still holds a per-address slot until then, at most START_TIMEOUT_MS).
        let rate_limited = !(req.route == Route::Twilio && self.twilio.is_some());
        let rate = if rate_limited {
            self.rate.check(client_ip)
        } else {
            Ok(())
        };
        if let Err(wait) = rate {
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many new connections from this address",
            )
            .retry_after(limits::retry_after_secs(wait)));
        }
        let (claims, stream_auth) = self.authenticate(req)?;
        // A Twilio stream with a verified session token is a call the app let in.
        let vouched = req.route == Route::Twilio && claims.is_some();
        let ip_slot = if vouched {
            Some(IpSlot::uncounted(client_ip))
        } else {
            self.per_ip.try_acquire(client_ip)
        };
        let ip_slot = ip_slot.ok_or_else(|| {
            Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sessions",
                "this address has too many sessions open",
            )
            .retry_after(PER_IP_RETRY_AFTER_S)
        })?;
        let permit = self.capacity.clone().try_acquire_owned().map_err(|_| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "at_capacity",
                "the server is at capacity",
            )
            .retry_after(1)
        })?;
        let limits = self
            .limits
            .capped(claims.as_ref().and_then(|c| c.max_session_s));
        Ok(Admitted {
            client_ip,
            claims,
            limits,
            stream_auth,
            _permit: permit,
            ip_slot,
        })
    }

    /// A foreign `Origin` is refused; requests without one (native clients, Twilio) pass.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        if self.allowed_origins.is_empty() {
            return Ok(());
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let allowed = origin
            .to_str()
            .is_ok_and(|o| self.allowed_origins.iter().any(|a| a == o));
        if allowed {
            Ok(())
        } else {
            Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this origin may not open sessions",
            ))
        }
    }

    /// The verified claims, and for a Twilio stream without a session token, the check its
    /// `start` must pass.
    #[allow(clippy::type_complexity)]
    fn authenticate(
        &self,
        req: &Request<'_>,
    ) -> Result<(Option<Claims>, Option<Arc<TwilioAuth>>), Refusal> {
        let presented = presented_token(req.uri, req.headers);
        let unauthorized =
            |e: TokenError| Refusal::new(StatusCode::UNAUTHORIZED, e.code(), e.message());
        match (&self.verifier, presented, req.route) {
            (Some(v), Some(t), _) => v.verify(&t).map(|c| (Some(c), None)).map_err(unauthorized),
            // Twilio cannot add a token to the stream URL; its stream token comes in `start`.
            (_, None, Route::Twilio) if self.twilio.is_some() => Ok((None, self.twilio.clone())),
            (Some(_), None, _) => Err(unauthorized(TokenError::Missing)),
            (None, _, Route::Twilio) => Ok((None, self.twilio.clone())),
            (None, _, Route::Agent) => Ok((None, None)),
        }
    }

    /// Check a Twilio voice webhook (`X-Twilio-Signature` when `TWILIO_AUTH_TOKEN` is set) and
    /// mint the stream token for its call.
    pub fn twilio_webhook(
        &self,
        peer: IpAddr,
        headers: &HeaderMap,
        uri: &Uri,
        body: &[u8],
        agent: Option<&str>,
    ) -> Result<Webhook, Refusal> {
        let base = twilio::public_base(self.public_url.as_ref(), &self.proxies, peer, headers)
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "bad_host",
                    "a valid Host header is needed to build the stream URL",
                )
            })?;
        let host = base
            .split_once("://")
            .map_or(base.as_str(), |(_, h)| h)
            .to_string();
        let Some(auth) = &self.twilio else {
            return Ok(Webhook {
                host,
                stream_token: None,
            });
        };
        let params: Vec<(String, String)> = url::form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let signature = headers
            .get("x-twilio-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let url = twilio::signed_url(&base, uri);
        if signature.is_empty() || !auth.signature_valid(&url, &params, signature) {
            tracing::warn!(%url, "twilio webhook refused: bad or missing signature");
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "bad_signature",
                "X-Twilio-Signature is missing or does not match",
            ));
        }
        let call_sid = params
            .iter()
            .find(|(k, _)| k == "CallSid")
            .map(|(_, v)| v.as_str())
            .filter(|s| {
                !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric())
            })
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "bad_call_sid",
                    "CallSid is missing or malformed",
                )
            })?;
        Ok(Webhook {
            host,
            stream_token: Some(auth.mint_stream_token(call_sid, agent)),
        })
    }

    /// The start-up warning about endpoints open to anyone, if any are.
    pub fn open_endpoints_warning(&self) -> Option<String> {
        let mut open = Vec::new();
        if self.verifier.is_none() {
            open.push("/agent");
        }
        if self.twilio.is_none() && self.verifier.is_none() {
            open.push("/twilio and /twilio/voice");
        } else if self.twilio.is_none() {
            open.push("/twilio/voice");
        }
        (!open.is_empty()).then(|| {
            format!(
                "{} open to anyone who can reach this port: set AUTH_SECRET or AUTH_PUBLIC_KEY \
                 (and TWILIO_AUTH_TOKEN for phone calls) on a public deployment",
                open.join(" and ")
            )
        })
    }

    /// Stop admitting sessions (drain).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Sessions holding a slot now.
    pub fn active_sessions(&self) -> usize {
        self.max_sessions - self.capacity.available_permits()
    }

    pub fn at_capacity(&self) -> bool {
        self.capacity.available_permits() == 0
    }

    /// Resolves when no session holds a slot.
    pub async fn all_sessions_ended(&self) {
        let all = self.max_sessions.min(u32::MAX as usize) as u32;
        if let Ok(permits) = self.capacity.acquire_many(all).await {
            drop(permits);
        }
    }
}

#[cfg(test)]
mod tests;
