use super::*;
use crate::config::source::RawSettings;
use crate::config::vars;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn admission(pairs: &[(&str, &str)]) -> Admission {
    let mut raw = RawSettings::default();
    raw.overlay_env(
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        &vars::names(),
    );
    Admission::new(&Config::from_raw(&raw).expect("valid test configuration"))
}

fn token(agent: Option<&str>, exp_in: i64) -> String {
    token::mint_hs256(
        SECRET.as_bytes(),
        &Claims {
            sub: "user-1".into(),
            exp: (token::now_s() as i64 + exp_in) as u64,
            nbf: None,
            iat: None,
            agent: agent.map(str::to_string),
            max_session_s: Some(30),
            call_sid: None,
        },
    )
}

fn request<'a>(route: Route, uri: &'a Uri, headers: &'a HeaderMap) -> Request<'a> {
    Request {
        route,
        peer: "127.0.0.1".parse().unwrap(),
        headers,
        uri,
    }
}

fn admit(a: &Admission, route: Route, uri: &str, headers: &HeaderMap) -> Result<Admitted, Refusal> {
    let uri: Uri = uri.parse().unwrap();
    a.admit(&request(route, &uri, headers))
}

#[test]
fn without_auth_everyone_gets_in() {
    let a = admission(&[]);
    let ok = admit(&a, Route::Agent, "/agent", &HeaderMap::new()).unwrap();
    assert!(ok.claims.is_none());
    assert!(a.open_endpoints_warning().unwrap().contains("/agent"));
}

#[test]
fn with_auth_tokens_are_required_and_checked() {
    let a = admission(&[("AUTH_SECRET", SECRET)]);
    let h = HeaderMap::new();
    let code = |uri: &str| {
        admit(&a, Route::Agent, uri, &h)
            .err()
            .map(|r| (r.status, r.code))
    };
    assert_eq!(
        code("/agent"),
        Some((StatusCode::UNAUTHORIZED, "token_missing"))
    );
    assert_eq!(
        code("/agent?token=abc"),
        Some((StatusCode::UNAUTHORIZED, "token_malformed"))
    );
    let expired = token(None, -3600);
    assert_eq!(
        code(&format!("/agent?token={expired}")),
        Some((StatusCode::UNAUTHORIZED, "token_expired"))
    );
    let forged = token::mint_hs256(
        b"not-the-secret-not-the-secret-xx",
        &Claims {
            sub: "u".into(),
            exp: token::now_s() + 60,
            nbf: None,
            iat: None,
            agent: None,
            max_session_s: None,
            call_sid: None,
        },
    );
    assert_eq!(
        code(&format!("/agent?token={forged}")),
        Some((StatusCode::UNAUTHORIZED, "token_invalid"))
    );
    let good = admit(
        &a,
        Route::Agent,
        &format!("/agent?token={}", token(Some("sales"), 600)),
        &h,
    )
    .unwrap();
    assert_eq!(good.claims.as_ref().unwrap().sub, "user-1");
    // The token's max_session_s lowers the configured cap.
    assert_eq!(
        good.limits.max_session,
        Some(std::time::Duration::from_secs(30))
    );
    let mut by_protocol = HeaderMap::new();
    by_protocol.insert(
        "sec-websocket-protocol",
        format!("voice-host.v1, token.{}", token(None, 600))
            .parse()
            .unwrap(),
    );
    assert!(admit(&a, Route::Agent, "/agent", &by_protocol).is_ok());
    assert!(a
        .open_endpoints_warning()
        .unwrap()
        .contains("/twilio/voice"));
}

#[test]
fn a_token_limits_the_agent() {
    let a = admission(&[("AUTH_SECRET", SECRET)]);
    let h = HeaderMap::new();
    let sales = admit(
        &a,
        Route::Agent,
        &format!("/agent?token={}", token(Some("sales"), 600)),
        &h,
    )
    .unwrap();
    assert_eq!(sales.agent(None), Ok(Some("sales")));
    assert_eq!(sales.agent(Some("sales")), Ok(Some("sales")));
    assert_eq!(sales.agent(Some("support")), Err("agent_not_allowed"));
    let any = admit(
        &a,
        Route::Agent,
        &format!("/agent?token={}", token(None, 600)),
        &h,
    )
    .unwrap();
    assert_eq!(any.agent(Some("support")), Ok(Some("support")));
}

#[test]
fn twilio_streams_defer_to_the_stream_token() {
    let a = admission(&[
        ("AUTH_SECRET", SECRET),
        ("TWILIO_AUTH_TOKEN", "twilio-token"),
    ]);
    let ok = admit(&a, Route::Twilio, "/twilio", &HeaderMap::new()).unwrap();
    assert!(ok.stream_auth.is_some());
    assert!(a.open_endpoints_warning().is_none());
    // Without TWILIO_AUTH_TOKEN a stream needs a session token like /agent.
    let b = admission(&[("AUTH_SECRET", SECRET)]);
    assert_eq!(
        admit(&b, Route::Twilio, "/twilio", &HeaderMap::new())
            .err()
            .map(|r| r.code),
        Some("token_missing")
    );
}

#[test]
fn per_ip_cap_uses_forwarded_addresses_only_from_trusted_proxies() {
    let a = admission(&[
        ("MAX_SESSIONS_PER_IP", "1"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ]);
    let mut one = HeaderMap::new();
    one.insert("x-forwarded-for", "198.51.100.1".parse().unwrap());
    let mut two = HeaderMap::new();
    two.insert("x-forwarded-for", "198.51.100.2".parse().unwrap());
    let first = admit(&a, Route::Agent, "/agent", &one).unwrap();
    assert_eq!(first.client_ip, "198.51.100.1".parse::<IpAddr>().unwrap());
    let refused = admit(&a, Route::Agent, "/agent", &one).err().unwrap();
    assert_eq!(
        (refused.status, refused.code),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_sessions")
    );
    assert!(refused.retry_after.is_some());
    let _second = admit(&a, Route::Agent, "/agent", &two).unwrap();
    drop(first);
    assert!(admit(&a, Route::Agent, "/agent", &one).is_ok());

    // From an untrusted peer the header is ignored: both count as the peer.
    let b = admission(&[("MAX_SESSIONS_PER_IP", "1")]);
    let _held = admit(&b, Route::Agent, "/agent", &one).unwrap();
    assert!(admit(&b, Route::Agent, "/agent", &two).is_err());
}

#[test]
fn the_connection_rate_is_limited_per_ip() {
    let a = admission(&[
        ("CONNECT_RATE_PER_MIN", "1"),
        ("CONNECT_BURST", "2"),
        ("MAX_SESSIONS_PER_IP", "0"),
    ]);
    let h = HeaderMap::new();
    assert!(admit(&a, Route::Agent, "/agent", &h).is_ok());
    assert!(admit(&a, Route::Agent, "/agent", &h).is_ok());
    let r = admit(&a, Route::Agent, "/agent", &h).err().unwrap();
    assert_eq!(
        (r.status, r.code),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(
        r.retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{r:?}"
    );
}

#[test]
fn draining_and_capacity_refuse_with_503() {
    let a = admission(&[("MAX_SESSIONS", "1")]);
    let h = HeaderMap::new();
    let held = admit(&a, Route::Agent, "/agent", &h).unwrap();
    assert_eq!(a.active_sessions(), 1);
    let r = admit(&a, Route::Agent, "/agent", &h).err().unwrap();
    assert_eq!(
        (r.status, r.code, r.retry_after),
        (StatusCode::SERVICE_UNAVAILABLE, "at_capacity", Some(1))
    );
    drop(held);
    // A refused session gave its per-IP slot back.
    assert!(admit(&a, Route::Agent, "/agent", &h).is_ok());
    a.close();
    let r = admit(&a, Route::Agent, "/agent", &h).err().unwrap();
    assert_eq!(r.code, "draining");
}

#[test]
fn twilio_webhook_needs_a_valid_signature() {
    let a = admission(&[
        ("TWILIO_AUTH_TOKEN", "twilio-token"),
        ("PUBLIC_URL", "https://voice.example.com"),
    ]);
    let uri: Uri = "/twilio/voice?agent=sales".parse().unwrap();
    let body = b"CallSid=CA0123&From=%2B15550100";
    let peer: IpAddr = "203.0.113.1".parse().unwrap();
    let params = vec![
        ("CallSid".to_string(), "CA0123".to_string()),
        ("From".to_string(), "+15550100".to_string()),
    ];
    let auth = TwilioAuth::new("twilio-token");
    let sig = auth.expected_signature(
        "https://voice.example.com/twilio/voice?agent=sales",
        &params,
    );
    let mut h = HeaderMap::new();
    assert_eq!(
        a.twilio_webhook(peer, &h, &uri, body, Some("sales"))
            .err()
            .map(|r| r.status),
        Some(StatusCode::FORBIDDEN)
    );
    h.insert(
        "x-twilio-signature",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".parse().unwrap(),
    );
    assert!(a
        .twilio_webhook(peer, &h, &uri, body, Some("sales"))
        .is_err());
    h.insert("x-twilio-signature", sig.parse().unwrap());
    let ok = a
        .twilio_webhook(peer, &h, &uri, body, Some("sales"))
        .unwrap();
    assert_eq!(ok.host, "voice.example.com");
    let t = ok.stream_token.unwrap();
    assert!(auth
        .check_stream(Some(&t), Some("CA0123"), Some("sales"))
        .is_ok());
}
