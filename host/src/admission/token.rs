//! Signed session tokens (JWT): HS256 with `AUTH_SECRET`, RS256/ES256 with `AUTH_PUBLIC_KEY`.
//! The app's backend mints one per session; the host only verifies. Error values never carry the
//! token or the key.

use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 30;

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who the session is for (the app's user id); logged as the session's subject.
    pub sub: String,
    /// Expiry, seconds since the epoch (required).
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The only agent profile this token may start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Upper bound on the session's length; lowers `MAX_SESSION_MS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_s: Option<u64>,
    /// Twilio stream tokens only: the call the token was minted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sid: Option<String>,
}

/// Why a token was refused. The code goes to the client; details stay out of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Malformed,
    Expired,
    NotYetValid,
    BadSignature,
}

impl TokenError {
    /// The `code` of the 401 body.
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "token_missing",
            Self::Malformed => "token_malformed",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::BadSignature => "token_invalid",
        }
    }

    /// A message for the client: says what to fix, never echoes the token.
    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "a session token is required (?token= or the Sec-WebSocket-Protocol entry token.<JWT>)",
            Self::Malformed => "the session token is not a well-formed JWT with sub and exp",
            Self::Expired => "the session token has expired",
            Self::NotYetValid => "the session token is not valid yet",
            Self::BadSignature => "the session token's signature does not verify",
        }
    }
}

/// Verifies session tokens against the configured keys.
pub struct Verifier {
    hmac: Option<DecodingKey>,
    rsa: Option<DecodingKey>,
    ec: Option<DecodingKey>,
}

impl Verifier {
    /// `None` when no key is configured. PEM text was checked when the configuration loaded.
    pub fn new(secret: Option<&str>, public_pem: Option<&str>) -> Option<Self> {
        if secret.is_none() && public_pem.is_none() {
            return None;
        }
        let pem = public_pem.map(str::as_bytes);
        Some(Self {
            hmac: secret.and_then(|s| DecodingKey::from_secret(s.as_bytes()).ok()),
            rsa: pem.and_then(|p| DecodingKey::from_rsa_pem(p).ok()),
            ec: pem.and_then(|p| DecodingKey::from_ec_pem(p).ok()),
        })
    }

    /// Check the signature, `exp` (required), `nbf` and `sub`.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        // The algorithm comes from the header but must match a configured key of its family,
        // so an HS256 token can never be checked against a public key.
        let key = match header.alg {
            Algorithm::HS256 => self.hmac.as_ref(),
            Algorithm::RS256 => self.rsa.as_ref(),
            Algorithm::ES256 => self.ec.as_ref(),
            _ => None,
        }
        .ok_or(TokenError::BadSignature)?;
        verify_with(token, key, header.alg)
    }
}

fn verify_with(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, TokenError> {
    use jsonwebtoken::errors::ErrorKind;
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.leeway = LEEWAY_S;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "sub"]);
    let data = decode::<Claims>(token, key, &validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenError::BadSignature,
        _ => TokenError::Malformed,
    })?;
    if data.claims.sub.trim().is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(data.claims)
}

/// Verify an HS256 token with `secret` (Twilio stream tokens use a derived key).
pub fn verify_hs256(secret: &[u8], token: &str) -> Result<Claims, TokenError> {
    let key = DecodingKey::from_secret(secret).map_err(|_| TokenError::BadSignature)?;
    verify_with(token, &key, Algorithm::HS256)
}

/// Mint an HS256 token (development tokens and Twilio stream tokens).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> String {
    // Encoding plain claims with a non-empty HMAC key cannot fail.
    EncodingKey::from_secret(secret)
        .and_then(|key| encode(&Header::new(Algorithm::HS256), claims, &key))
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "user-1".into(),
            exp,
            nbf: None,
            iat: None,
            agent: Some("sales".into()),
            max_session_s: Some(60),
            call_sid: None,
        }
    }

    fn verifier() -> Verifier {
        Verifier::new(Some(SECRET), None).unwrap()
    }

    #[test]
    fn a_fresh_token_verifies_with_its_claims() {
        let c = claims(now_s() + 600);
        let t = mint_hs256(SECRET.as_bytes(), &c);
        assert_eq!(verifier().verify(&t), Ok(c));
    }

    #[test]
    fn refusals_are_classified() {
        let v = verifier();
        let expired = mint_hs256(SECRET.as_bytes(), &claims(now_s() - 2 * LEEWAY_S));
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        let mut early = claims(now_s() + 600);
        early.nbf = Some(now_s() + 10 * LEEWAY_S);
        let early = mint_hs256(SECRET.as_bytes(), &early);
        assert_eq!(v.verify(&early), Err(TokenError::NotYetValid));
        let other = mint_hs256(b"another-secret-another-secret-xx", &claims(now_s() + 600));
        assert_eq!(v.verify(&other), Err(TokenError::BadSignature));
        assert_eq!(v.verify("not.a.jwt"), Err(TokenError::Malformed));
        assert_eq!(v.verify(""), Err(TokenError::Malformed));
        let mut nosub = claims(now_s() + 600);
        nosub.sub = " ".into();
        let nosub = mint_hs256(SECRET.as_bytes(), &nosub);
        assert_eq!(v.verify(&nosub), Err(TokenError::Malformed));
    }

    #[test]
    fn exp_is_required() {
        #[derive(Serialize)]
        struct NoExp {
            sub: &'static str,
        }
        let t = encode(
            &Header::new(Algorithm::HS256),
            &NoExp { sub: "u" },
            &EncodingKey::from_secret(SECRET.as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(verifier().verify(&t), Err(TokenError::Malformed));
    }

    #[test]
    fn an_hs256_token_is_not_checked_against_a_public_key_only_setup() {
        // No HMAC key configured: an HS256 token (e.g. signed with the public key's text) fails.
        let v = Verifier {
            hmac: None,
            rsa: None,
            ec: None,
        };
        let t = mint_hs256(SECRET.as_bytes(), &claims(now_s() + 600));
        assert_eq!(v.verify(&t), Err(TokenError::BadSignature));
    }

    /// RSA key pairs made for these tests only (`openssl genpkey -algorithm RSA`).
    const RSA_PRIVATE: &str = include_str!("testdata/rsa-private.pem");
    const RSA_PUBLIC: &str = include_str!("testdata/rsa-public.pem");
    const RSA_OTHER_PRIVATE: &str = include_str!("testdata/rsa-other-private.pem");

    fn mint_rs256(private_pem: &str, claims: &Claims) -> String {
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
    }

    #[test]
    fn rs256_tokens_verify_against_the_configured_public_key_only() {
        let v = Verifier::new(None, Some(RSA_PUBLIC)).unwrap();
        let c = claims(now_s() + 600);
        assert_eq!(v.verify(&mint_rs256(RSA_PRIVATE, &c)), Ok(c));
        let expired = mint_rs256(RSA_PRIVATE, &claims(now_s() - 2 * LEEWAY_S));
        assert_eq!(v.verify(&expired), Err(TokenError::Expired));
        let other = mint_rs256(RSA_OTHER_PRIVATE, &claims(now_s() + 600));
        assert_eq!(v.verify(&other), Err(TokenError::BadSignature));
        // Algorithm confusion: an HS256 token keyed with the (public) PEM text is refused.
        let confused = mint_hs256(RSA_PUBLIC.as_bytes(), &claims(now_s() + 600));
        assert_eq!(v.verify(&confused), Err(TokenError::BadSignature));
        // An HS256 secret beside the public key does not make RS256 tokens of other keys pass.
        let both = Verifier::new(Some(SECRET), Some(RSA_PUBLIC)).unwrap();
        assert_eq!(both.verify(&other), Err(TokenError::BadSignature));
        assert!(both
            .verify(&mint_hs256(SECRET.as_bytes(), &claims(now_s() + 600)))
            .is_ok());
    }

    #[test]
    fn messages_never_contain_the_token() {
        let t = mint_hs256(SECRET.as_bytes(), &claims(now_s() - 1000));
        let e = verifier().verify(&t).unwrap_err();
        assert!(!e.message().contains(&t));
        assert!(!format!("{e:?}").contains(&t));
    }
}
