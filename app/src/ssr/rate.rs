//! Token buckets keyed by who (or what) is limited: a key may spend `burst` at once, then
//! `per_second` sustained. Used for every per-user allowance of the relay (messages, other
//! frames, typing notices) and for contact requests. In memory, per process; on a cluster,
//! the allowances that must hold for a user wherever they connect (messages, contact
//! requests) are also taken from a [`SharedBuckets`] store (Redis) by
//! [`Buckets::take_anywhere`].
//!
//! The map is bounded: past [`Buckets::MAX_KEYS`] keys, the full buckets (keys idle long
//! enough to have earned everything back, which therefore need no entry) are dropped.
use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::throttle::BoxFuture;

/// Token buckets kept where every server process takes from them (a cluster's Redis).
/// Errors are messages for the log; the process's own bucket then decides alone.
pub trait SharedBuckets: Send + Sync {
    /// Takes one token from bucket `name`; `Ok(Err(wait))` when it has none.
    fn take(
        &self,
        name: String,
        per_second: f64,
        burst: f64,
    ) -> BoxFuture<'_, Result<Result<(), Duration>, String>>;
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub struct Buckets<K> {
    per_second: f64,
    burst: f64,
    map: Mutex<HashMap<K, Bucket>>,
    /// The shared store and the name of these buckets in it, once set.
    shared: OnceLock<(Arc<dyn SharedBuckets>, &'static str)>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    /// Above this many keys, idle ones are forgotten.
    pub const MAX_KEYS: usize = 100_000;

    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: burst.max(1.0),
            map: Mutex::new(HashMap::new()),
            shared: OnceLock::new(),
        }
    }

    /// Takes from `shared` too from now on, under `name` (a cluster node, at start).
    pub fn share(&self, shared: Arc<dyn SharedBuckets>, name: &'static str) {
        let _ = self.shared.set((shared, name));
    }

    /// Takes one token for `key`. When there is none: how long until there is.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= Self::MAX_KEYS && !map.contains_key(key) {
            let (rate, burst) = (self.per_second, self.burst);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// Takes one token for `key` here and, when shared, in the shared store: both must
    /// have one. When the store cannot say, this process's bucket decides.
    pub async fn take_anywhere(&self, key: &K) -> Result<(), Duration>
    where
        K: Display,
    {
        self.take(key)?;
        let Some((shared, name)) = self.shared.get() else {
            return Ok(());
        };
        match shared
            .take(format!("{name}:{key}"), self.per_second, self.burst)
            .await
        {
            Ok(taken) => taken,
            Err(err) => {
                tracing::warn!(%err, "the shared rate limit is not answering");
                Ok(())
            }
        }
    }

    /// Whether `key` may spend a token now (and spends it).
    pub fn allow(&self, key: &K) -> bool {
        self.take(key).is_ok()
    }

    /// How many keys are tracked (for tests of the bound).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let rate = Buckets::new(1000.0, 5.0);
        assert_eq!((0..5).filter(|_| rate.allow(&1u32)).count(), 5);
        let wait = rate.take(&1).expect_err("the burst is spent");
        assert!(wait <= Duration::from_millis(1), "{wait:?}");
        std::thread::sleep(Duration::from_millis(5));
        assert!(rate.allow(&1), "tokens come back at the sustained rate");
        assert!(rate.allow(&2), "each key has its own bucket");
    }

    #[test]
    fn the_wait_says_when_a_token_is_back() {
        let rate = Buckets::new(0.5, 1.0);
        assert!(rate.allow(&"typing"));
        let wait = rate.take(&"typing").expect_err("empty");
        assert!(wait > Duration::from_millis(1900) && wait <= Duration::from_secs(2));
    }

    #[test]
    fn idle_keys_are_forgotten_past_the_bound() {
        let rate = Buckets::new(1_000_000.0, 1.0);
        for i in 0..Buckets::<u32>::MAX_KEYS as u32 {
            rate.allow(&i);
        }
        std::thread::sleep(Duration::from_millis(2));
        rate.allow(&u32::MAX);
        assert!(
            rate.len() < 10,
            "refilled buckets were dropped: {}",
            rate.len()
        );
    }
}
