//! Limits every node counts in the same place: the login and registration throttle's
//! windows (see `app::ssr::throttle`) and the per-user token buckets for messages and
//! contact requests (see `app::ssr::rate`). `<prefix>:thr:<name>` counts attempts and
//! expires with its window; `<prefix>:known:<user>\n<address>` marks a familiar sign-in
//! address; `<prefix>:bucket:<name>` holds a bucket's tokens and time, on Redis's clock.
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use app::ssr::rate::SharedBuckets;
use app::ssr::throttle::{BoxFuture, SharedWindows};
use fred::prelude::{Error, Expiration, KeysInterface};
use fred::types::scripts::Script;

use super::Cluster;

/// KEYS: the windows. ARGV: limit and window (ms) of each, in turn. Answers 0 when one
/// attempt was counted in every window, else the ms until the fullest one has room (and
/// counts nothing).
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local wait = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= tonumber(ARGV[2 * i - 1]) then
    local left = redis.call('PTTL', key)
    if left < 1 then left = 1 end
    if left > wait then wait = left end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
end
return 0",
    )
});

/// KEYS: windows. ARGV: `whole` or `one`. Forgets them, or gives one attempt back to each.
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "for _, key in ipairs(KEYS) do
  if ARGV[1] == 'whole' then redis.call('DEL', key)
  elseif tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0",
    )
});

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl SharedWindows for Cluster {
    fn reserve(
        &self,
        keys: Vec<(String, u32, Duration)>,
    ) -> BoxFuture<'_, Result<Option<Duration>, String>> {
        Box::pin(async move {
            let names: Vec<String> = keys
                .iter()
                .map(|(name, _, _)| self.key(&format!("thr:{name}")))
                .collect();
            let args: Vec<String> = keys
                .iter()
                .flat_map(|(_, limit, window)| [limit.to_string(), ms(*window).to_string()])
                .collect();
            let wait: u64 = RESERVE
                .evalsha_with_reload(self.client(), names, args)
                .await
                .map_err(|e: Error| e.to_string())?;
            Ok((wait > 0).then(|| Duration::from_millis(wait)))
        })
    }

    fn give_back(&self, names: Vec<String>, whole: bool) {
        let keys: Vec<String> = names
            .iter()
            .map(|name| self.key(&format!("thr:{name}")))
            .collect();
        let client = self.client().clone();
        tokio::spawn(async move {
            let mode = if whole { "whole" } else { "one" };
            if let Err(err) = GIVE_BACK
                .evalsha_with_reload::<i64, _, _>(&client, keys, vec![mode])
                .await
            {
                tracing::warn!(%err, "could not give a throttle attempt back");
            }
        });
    }

    fn known(&self, pair: String) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let n: i64 = self
                .client()
                .exists(self.key(&format!("known:{pair}")))
                .await
                .map_err(|e: Error| e.to_string())?;
            Ok(n == 1)
        })
    }

    fn remember(&self, pair: String, for_: Duration) {
        let key = self.key(&format!("known:{pair}"));
        let client = self.client().clone();
        let px = i64::try_from(ms(for_)).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            let set: Result<(), Error> = client
                .set(key, "1", Some(Expiration::PX(px)), None, false)
                .await;
            if let Err(err) = set {
                tracing::warn!(%err, "could not remember a sign-in address");
            }
        });
    }
}

/// The throttle's shared store, for [`app::ssr::throttle::Throttle::share`].
pub fn windows(cluster: &Arc<Cluster>) -> Arc<dyn SharedWindows> {
    cluster.clone()
}

/// KEYS: the bucket. ARGV: tokens per second, burst, tokens wanted. Takes as many as it
/// has, up to those wanted, and answers how many (> 0); with none, answers minus the ms
/// until there is one.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        "local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local answer
if tokens >= 1 then
  answer = math.min(tonumber(ARGV[3]), math.floor(tokens))
  tokens = tokens - answer
else
  answer = -math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return answer",
    )
});

impl SharedBuckets for Cluster {
    fn take(
        &self,
        name: String,
        per_second: f64,
        burst: f64,
        want: u32,
    ) -> BoxFuture<'_, Result<Result<u32, Duration>, String>> {
        Box::pin(async move {
            let answer: i64 = TAKE
                .evalsha_with_reload(
                    self.client(),
                    vec![self.key(&format!("bucket:{name}"))],
                    vec![
                        per_second.to_string(),
                        burst.to_string(),
                        want.max(1).to_string(),
                    ],
                )
                .await
                .map_err(|e: Error| e.to_string())?;
            Ok(match u32::try_from(answer) {
                Ok(taken) if taken > 0 => Ok(taken),
                _ => Err(Duration::from_millis(answer.unsigned_abs().max(1))),
            })
        })
    }
}

/// The shared store of per-user buckets, for [`app::ssr::rate::Buckets::share`].
pub fn buckets(cluster: &Arc<Cluster>) -> Arc<dyn SharedBuckets> {
    cluster.clone()
}
