//! Resume tokens: 256 random bits handed to the client once; stores keep only their SHA-256.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A session's current resume token.
#[derive(Clone)]
pub struct ResumeToken {
    secret: String,
    hash: String,
}

impl std::fmt::Debug for ResumeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResumeToken(<redacted>)")
    }
}

impl ResumeToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let hash = Self::hash_of(&secret);
        Self { secret, hash }
    }

    /// What the client is told (in `ready`), and nothing else ever is.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The hex SHA-256 of the token: the owner name of the records it writes.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The owner name of a presented token.
    pub fn hash_of(token: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Whether two owner hashes are equal, in constant time.
pub(super) fn same_owner(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_only_their_hash_names_the_owner() {
        let a = ResumeToken::generate();
        let b = ResumeToken::generate();
        assert_ne!(a.secret(), b.secret());
        assert_eq!(a.secret().len(), 43, "256 bits, base64url");
        assert_eq!(ResumeToken::hash_of(a.secret()), a.hash());
        assert!(same_owner(a.hash(), &ResumeToken::hash_of(a.secret())));
        assert!(!same_owner(a.hash(), b.hash()));
        assert!(!format!("{a:?}").contains(a.secret()));
    }
}
