//! `voice-host token`: mint a session token from `AUTH_SECRET` for development. In production
//! the app's backend mints tokens the same way (HS256 with the shared secret, or RS256/ES256 with
//! a private key whose public half is `AUTH_PUBLIC_KEY`).

use crate::admission::token::{mint_hs256, now_s, Claims};
use clap::Args;
use std::time::Duration;

/// Options of `voice-host token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The only agent profile the token may start (default: any).
    #[arg(long)]
    pub agent: Option<String>,
    /// Lifetime of the token: `90s`, `10m`, `2h` or seconds.
    #[arg(long, default_value = "10m", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Subject (the user the session is for).
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// Upper bound on the session's length in seconds.
    #[arg(long)]
    pub max_session_s: Option<u64>,
}

/// `90s`, `10m`, `2h`, `1d` or plain seconds.
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, ""), |i| s.split_at(i));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 90s, 10m or 2h, got {s:?}"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("unknown unit {unit:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("the lifetime must be at least 1s".into());
    }
    Ok(Duration::from_secs(secs))
}

/// The token for these options, signed with `secret`.
pub fn mint(secret: &str, args: &TokenArgs) -> String {
    let now = now_s();
    mint_hs256(
        secret.as_bytes(),
        &Claims {
            sub: args.sub.clone(),
            exp: now + args.ttl.as_secs(),
            nbf: Some(now),
            iat: Some(now),
            agent: args.agent.clone(),
            max_session_s: args.max_session_s,
            call_sid: None,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::token::Verifier;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_ttl("2h"), Ok(Duration::from_secs(7200)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("5y").is_err());
        assert!(parse_ttl("m").is_err());
    }

    #[test]
    fn minted_tokens_verify_with_the_same_secret() {
        let secret = "0123456789abcdef0123456789abcdef";
        let args = TokenArgs {
            agent: Some("sales".into()),
            ttl: Duration::from_secs(600),
            sub: "alice".into(),
            max_session_s: Some(120),
        };
        let claims = Verifier::new(Some(secret), None)
            .unwrap()
            .verify(&mint(secret, &args))
            .unwrap();
        assert_eq!(claims.agent.as_deref(), Some("sales"));
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.max_session_s, Some(120));
    }
}
