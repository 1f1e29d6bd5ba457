//! Session resume: a client whose connection drops reconnects, to this replica or another, and
//! keeps its conversation.
//!
//! `ready` hands the client a `resume_token`; a later `start` with
//! `"resume":{"session_id":...,"token":...}` within `RESUME_TTL_S` claims the session's
//! [`Snapshot`] (its conversation memory, agent profile and turn counter; never audio). A claim
//! rotates the token, so a token works once and two clients cannot both take one conversation.
//!
//! Every record names its owner, the hash of the token of the connection that writes it; a write
//! by any other owner is refused. So a connection that is still half-open after its client
//! resumed elsewhere cannot overwrite the conversation it lost.
//!
//! Records live in Redis when `REDIS_URL` is set (shared by every replica), in this process's
//! memory otherwise. Both expire after `RESUME_TTL_S` without a write.

mod memory_store;
mod redis_store;
mod saver;
mod token;

pub use saver::Saver;
pub use token::ResumeToken;

use crate::behaviour::ChatMessage;
use memory_store::MemoryStore;
use redis_store::RedisStore;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What survives a dropped connection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The agent profile the session runs (`None`: the default one).
    pub agent: Option<String>,
    /// The number the next turn gets, so turn numbers go on where they stopped.
    pub next_turn: u32,
    /// The conversation memory, oldest first.
    pub memory: Vec<ChatMessage>,
}

/// Why a resume was refused; the client gets a fresh session and this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeError {
    /// No such session, or its record expired (`RESUME_TTL_S`).
    Expired,
    /// The token is not this session's (wrong, or already used).
    BadToken,
    /// The store could not be reached.
    Unavailable,
}

impl ResumeError {
    /// The `error` code a client receives.
    pub fn code(self) -> &'static str {
        match self {
            Self::Expired => "resume_expired",
            Self::BadToken => "resume_rejected",
            Self::Unavailable => "resume_unavailable",
        }
    }

    /// The `error` message a client receives.
    pub fn message(self) -> &'static str {
        match self {
            Self::Expired => "no session to resume (unknown, or expired): a new session started",
            Self::BadToken => {
                "the resume token is not this session's (wrong or already used): a new session started"
            }
            Self::Unavailable => "resume is unavailable right now: a new session started",
        }
    }
}

/// Where records live.
pub enum ResumeStore {
    Memory(MemoryStore),
    /// Boxed: the Redis client is much larger than the map.
    Redis(Box<RedisStore>),
}

impl ResumeStore {
    /// Redis at `redis_url` when given (connected lazily and re-connected as needed), process
    /// memory otherwise.
    pub fn new(redis_url: Option<&str>, ttl: Duration) -> Result<Self, String> {
        match redis_url {
            Some(url) => Ok(Self::Redis(Box::new(RedisStore::new(url, ttl)?))),
            None => Ok(Self::Memory(MemoryStore::new(ttl))),
        }
    }

    /// Claims session `session_id` with `token`: on success its snapshot, with ownership moved
    /// to `next` (the token the resumed connection hands out).
    pub async fn claim(
        &self,
        session_id: &str,
        token: &str,
        next: &ResumeToken,
    ) -> Result<Snapshot, ResumeError> {
        let presented = ResumeToken::hash_of(token);
        let record = match self {
            Self::Memory(s) => s.claim(session_id, &presented, next.hash()),
            Self::Redis(s) => s.claim(session_id, &presented, next.hash()).await,
        }?;
        serde_json::from_str(&record).map_err(|e| {
            tracing::warn!(error = %e, "unreadable resume record");
            ResumeError::Expired
        })
    }

    /// Writes `snapshot` as `owner`'s; false when another owner holds the record or the store
    /// failed (logged).
    pub async fn save(&self, session_id: &str, owner: &str, snapshot: &Snapshot) -> bool {
        let record = match serde_json::to_string(snapshot) {
            Ok(r) => r,
            Err(_) => return false,
        };
        match self {
            Self::Memory(s) => s.save(session_id, owner, record),
            Self::Redis(s) => s.save(session_id, owner, &record).await,
        }
    }

    /// Deletes the record if `owner` holds it (the client ended the session on purpose).
    pub async fn forget(&self, session_id: &str, owner: &str) {
        match self {
            Self::Memory(s) => s.forget(session_id, owner),
            Self::Redis(s) => s.forget(session_id, owner).await,
        }
    }
}
