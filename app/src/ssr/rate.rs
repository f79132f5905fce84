//! Token buckets keyed by who (or what) is limited: a key may spend `burst` at once, then
//! `per_second` sustained. Used for every per-user allowance of the relay (messages, other
//! frames, typing notices) and for contact requests. In memory, per process; on a cluster,
//! the allowances that must hold for a user wherever they connect (messages, contact
//! requests) are also taken from a [`SharedBuckets`] store (Redis) by
//! [`Buckets::take_anywhere`]. A node may take several tokens at once (a lease, kept for
//! [`LEASE_FOR`]) so that a busy user costs the store one round trip per lease, not one per
//! message; a user on several nodes can then exceed the shared allowance by at most the
//! leases the other nodes still hold.
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
    /// Takes up to `want` tokens (at least one) from bucket `name`: how many it took, or
    /// `Ok(Err(wait))` when it has none.
    fn take(
        &self,
        name: String,
        per_second: f64,
        burst: f64,
        want: u32,
    ) -> BoxFuture<'_, Result<Result<u32, Duration>, String>>;
}

/// How long tokens leased from the shared store may be spent here; later they are dropped
/// (the shared bucket has refilled meanwhile).
pub const LEASE_FOR: Duration = Duration::from_secs(1);

struct Bucket {
    tokens: f64,
    at: Instant,
    /// Tokens taken from the shared store and not spent yet, and when they were taken.
    leased: u32,
    leased_at: Instant,
}

pub struct Buckets<K> {
    per_second: f64,
    burst: f64,
    map: Mutex<HashMap<K, Bucket>>,
    /// The shared store, the name of these buckets in it and the tokens to lease at once.
    shared: OnceLock<(Arc<dyn SharedBuckets>, &'static str, u32)>,
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

    /// Takes from `shared` too from now on, under `name` (a cluster node, at start), up to
    /// `lease` tokens at a time (1: every token is asked for; the limit holds exactly).
    pub fn share(&self, shared: Arc<dyn SharedBuckets>, name: &'static str, lease: u32) {
        let _ = self.shared.set((shared, name, lease.max(1)));
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
            leased: 0,
            leased_at: now,
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
        let Some((shared, name, lease)) = self.shared.get() else {
            return Ok(());
        };
        if self.spend_lease(key) {
            return Ok(());
        }
        match shared
            .take(format!("{name}:{key}"), self.per_second, self.burst, *lease)
            .await
        {
            Ok(Ok(taken)) => {
                self.keep_lease(key, taken.saturating_sub(1));
                Ok(())
            }
            Ok(Err(wait)) => Err(wait),
            Err(err) => {
                tracing::warn!(%err, "the shared rate limit is not answering");
                Ok(())
            }
        }
    }

    /// Spends a token leased from the shared store, if one is left and fresh.
    fn spend_lease(&self, key: &K) -> bool {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(key) {
            Some(b) if b.leased > 0 && b.leased_at.elapsed() < LEASE_FOR => {
                b.leased -= 1;
                true
            }
            _ => false,
        }
    }

    /// Keeps `tokens` just taken from the shared store for `key`'s next messages.
    fn keep_lease(&self, key: &K, tokens: u32) {
        if tokens == 0 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = map.get_mut(key) {
            let now = Instant::now();
            if now.duration_since(b.leased_at) >= LEASE_FOR {
                b.leased = 0;
            }
            b.leased = b.leased.saturating_add(tokens);
            b.leased_at = now;
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

    /// A shared bucket in memory that counts the round trips made to it.
    struct Store {
        tokens: Mutex<u32>,
        asked: Mutex<u32>,
    }

    impl SharedBuckets for Store {
        fn take(&self, _: String, _: f64, _: f64, want: u32) -> BoxFuture<'_, TakeAnswer> {
            Box::pin(async move {
                *self.asked.lock().unwrap() += 1;
                let mut tokens = self.tokens.lock().unwrap();
                if *tokens == 0 {
                    return Ok(Err(Duration::from_millis(50)));
                }
                let taken = want.min(*tokens);
                *tokens -= taken;
                Ok(Ok(taken))
            })
        }
    }

    type TakeAnswer = Result<Result<u32, Duration>, String>;

    fn shared(tokens: u32, lease: u32) -> (Buckets<u32>, Arc<Store>) {
        let store = Arc::new(Store {
            tokens: Mutex::new(tokens),
            asked: Mutex::new(0),
        });
        let rate = Buckets::new(1000.0, 1000.0);
        rate.share(store.clone(), "send", lease);
        (rate, store)
    }

    #[tokio::test]
    async fn a_lease_saves_round_trips_and_the_shared_bucket_still_bounds() {
        let (rate, store) = shared(12, 5);
        for _ in 0..12 {
            assert!(rate.take_anywhere(&1).await.is_ok());
        }
        // 5 + 5 + 2 tokens: three round trips for twelve messages.
        assert_eq!(*store.asked.lock().unwrap(), 3);
        // The shared bucket is empty: the thirteenth waits, whatever this node has left.
        assert_eq!(rate.take_anywhere(&1).await, Err(Duration::from_millis(50)));
    }

    #[tokio::test]
    async fn without_a_lease_every_token_is_asked_for() {
        let (rate, store) = shared(3, 1);
        for _ in 0..3 {
            assert!(rate.take_anywhere(&7).await.is_ok());
        }
        assert!(rate.take_anywhere(&7).await.is_err());
        assert_eq!(*store.asked.lock().unwrap(), 4);
    }

    #[tokio::test]
    async fn leased_tokens_expire() {
        let (rate, store) = shared(100, 10);
        assert!(rate.take_anywhere(&1).await.is_ok());
        rate.map.lock().unwrap().get_mut(&1).unwrap().leased_at -= LEASE_FOR;
        assert!(rate.take_anywhere(&1).await.is_ok());
        assert_eq!(
            *store.asked.lock().unwrap(),
            2,
            "the stale lease was not spent"
        );
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
