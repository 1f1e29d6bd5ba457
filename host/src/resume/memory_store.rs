//! Resume records in this process's memory: for a single replica, or when no Redis is set.

use super::token::same_owner;
use super::ResumeError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most records kept at once; past it, writes of new sessions are refused (and logged) until
/// some expire, so a flood of sessions cannot grow the process without bound.
const MAX_RECORDS: usize = 100_000;

struct Record {
    owner: String,
    body: String,
    expires: Instant,
}

/// Records keyed by session id.
pub struct MemoryStore {
    ttl: Duration,
    records: Mutex<HashMap<String, Record>>,
}

impl MemoryStore {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        // A panic while holding the lock cannot leave a record half-written: recover the map.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn claim(&self, id: &str, presented: &str, next: &str) -> Result<String, ResumeError> {
        let now = Instant::now();
        let mut records = self.lock();
        let Some(r) = records.get_mut(id).filter(|r| r.expires > now) else {
            return Err(ResumeError::Expired);
        };
        if !same_owner(&r.owner, presented) {
            return Err(ResumeError::BadToken);
        }
        r.owner = next.to_string();
        r.expires = now + self.ttl;
        Ok(r.body.clone())
    }

    pub fn save(&self, id: &str, owner: &str, body: String) -> bool {
        let now = Instant::now();
        let mut records = self.lock();
        match records.get_mut(id) {
            Some(r) if r.expires > now && !same_owner(&r.owner, owner) => false,
            Some(r) => {
                *r = Record {
                    owner: owner.to_string(),
                    body,
                    expires: now + self.ttl,
                };
                true
            }
            None => {
                if records.len() >= MAX_RECORDS {
                    records.retain(|_, r| r.expires > now);
                    if records.len() >= MAX_RECORDS {
                        tracing::warn!("resume store full: this session cannot be resumed");
                        return false;
                    }
                }
                records.insert(
                    id.to_string(),
                    Record {
                        owner: owner.to_string(),
                        body,
                        expires: now + self.ttl,
                    },
                );
                true
            }
        }
    }

    pub fn forget(&self, id: &str, owner: &str) {
        let mut records = self.lock();
        if records.get(id).is_some_and(|r| same_owner(&r.owner, owner)) {
            records.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_moves_ownership_so_a_token_works_once() {
        let s = MemoryStore::new(Duration::from_secs(60));
        assert!(s.save("s1", "a", "{}".into()));
        assert_eq!(s.claim("s1", "x", "b"), Err(ResumeError::BadToken));
        assert_eq!(s.claim("s1", "a", "b").as_deref(), Ok("{}"));
        assert_eq!(
            s.claim("s1", "a", "c"),
            Err(ResumeError::BadToken),
            "used twice"
        );
        assert!(
            !s.save("s1", "a", "{\"old\":1}".into()),
            "the old owner lost it"
        );
        assert!(s.save("s1", "b", "{\"new\":1}".into()));
        assert_eq!(s.claim("s2", "a", "b"), Err(ResumeError::Expired));
        s.forget("s1", "a");
        assert_eq!(s.claim("s1", "b", "c").as_deref(), Ok("{\"new\":1}"));
        s.forget("s1", "c");
        assert_eq!(s.claim("s1", "c", "d"), Err(ResumeError::Expired));
    }

    #[test]
    fn records_expire() {
        let s = MemoryStore::new(Duration::ZERO);
        assert!(s.save("s1", "a", "{}".into()));
        assert_eq!(s.claim("s1", "a", "b"), Err(ResumeError::Expired));
        assert!(
            s.save("s1", "z", "{}".into()),
            "an expired record is anyone's"
        );
    }
}
