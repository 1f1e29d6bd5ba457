//! Resume records in Redis, shared by every replica. Each operation is one Lua script, so the
//! owner check and the write are atomic. A value is `<owner hash (64 hex)>\n<snapshot JSON>`,
//! under `voice:resume:<session id>`, with a TTL of `RESUME_TTL_S`.

use super::ResumeError;
use redis::aio::ConnectionManager;
use redis::Script;
use std::time::Duration;
use tokio::sync::OnceCell;

const KEY_PREFIX: &str = "voice:resume:";
/// A store that does not answer in this time is treated as unavailable: a resume must not hold
/// a client's `start`, nor a save a session's end, for longer.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if not cur then return {0, ''} end
if string.sub(cur, 1, 64) ~= ARGV[1] then return {1, ''} end
local body = string.sub(cur, 66)
redis.call('SET', KEYS[1], ARGV[2] .. '\n' .. body, 'EX', ARGV[3])
return {2, body}
";

const SAVE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 64) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. ARGV[2], 'EX', ARGV[3])
return 1
";

const FORGET: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 64) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// A lazily connected, self-reconnecting Redis client.
pub struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    ttl_s: u64,
    claim: Script,
    save: Script,
    forget: Script,
}

impl RedisStore {
    /// Checks the URL; connects on first use.
    pub fn new(url: &str, ttl: Duration) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        Ok(Self {
            client,
            conn: OnceCell::new(),
            ttl_s: ttl.as_secs().max(1),
            claim: Script::new(CLAIM),
            save: Script::new(SAVE),
            forget: Script::new(FORGET),
        })
    }

    async fn conn(&self) -> Option<ConnectionManager> {
        let made = tokio::time::timeout(
            OP_TIMEOUT,
            self.conn
                .get_or_try_init(|| self.client.get_connection_manager()),
        )
        .await;
        match made {
            Ok(Ok(c)) => Some(c.clone()),
            Ok(Err(e)) => {
                tracing::warn!(kind = ?e.kind(), "resume store: cannot connect to Redis");
                None
            }
            Err(_) => {
                tracing::warn!("resume store: connecting to Redis timed out");
                None
            }
        }
    }

    /// Runs `script` with one key, bounded by [`OP_TIMEOUT`].
    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        id: &str,
        args: &[&str],
    ) -> Option<T> {
        let mut conn = self.conn().await?;
        let mut call = script.key(format!("{KEY_PREFIX}{id}"));
        for a in args {
            call.arg(*a);
        }
        match tokio::time::timeout(OP_TIMEOUT, call.invoke_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(kind = ?e.kind(), "resume store: Redis command failed");
                None
            }
            Err(_) => {
                tracing::warn!("resume store: Redis did not answer in time");
                None
            }
        }
    }

    pub async fn claim(
        &self,
        id: &str,
        presented: &str,
        next: &str,
    ) -> Result<String, ResumeError> {
        let ttl = self.ttl_s.to_string();
        let (status, body): (i64, String) = self
            .run(&self.claim, id, &[presented, next, &ttl])
            .await
            .ok_or(ResumeError::Unavailable)?;
        match status {
            2 => Ok(body),
            1 => Err(ResumeError::BadToken),
            _ => Err(ResumeError::Expired),
        }
    }

    pub async fn save(&self, id: &str, owner: &str, body: &str) -> bool {
        let ttl = self.ttl_s.to_string();
        self.run::<i64>(&self.save, id, &[owner, body, &ttl])
            .await
            .is_some_and(|v| v == 1)
    }

    pub async fn forget(&self, id: &str, owner: &str) {
        let _ = self.run::<i64>(&self.forget, id, &[owner]).await;
    }
}
