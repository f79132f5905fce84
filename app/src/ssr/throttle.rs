//! Slows down password guessing and mass account creation. Every attempt that would run the
//! slow password hash first reserves a place in a fixed window for each key it counts
//! against, atomically, before hashing: attempts in flight count, so fifty guesses sent at
//! once are refused beyond the allowance instead of all being evaluated. A reservation that
//! ends in success is given back where success should clear the count; one that ends without
//! a verdict (the hash queue was full, the database failed) is given back entirely.
//!
//! Login keys, so that a stranger cannot lock a user out while a guesser stays stopped:
//! - the username from one address (`LOGIN_MAX_FAILURES`): what stops a guesser;
//! - the address alone (`LOGIN_MAX_FAILURES_PER_IP`): one address trying many usernames;
//! - the username from anywhere (`LOGIN_MAX_FAILURES_PER_ACCOUNT`): guessing spread over many
//!   addresses. Addresses this account has signed in from before are exempt from this one,
//!   so such an attack does not lock the owner out of their usual devices.
//!
//! Registration counts per address (`REGISTER_MAX_PER_IP` per `REGISTER_WINDOW_SECS`), and a
//! wrong current password in a password change per account. IPv6 addresses count by their
//! /64 network (one host usually holds the whole /64). Usernames are only keys once valid,
//! and the map of keys is bounded, so neither long names nor many addresses can grow it
//! without limit. In memory and per process (a restart forgets, which is acceptable for a
//! brake: the passwords themselves are argon2id), or, on a cluster, in a [`SharedWindows`]
//! store that every node counts in (Redis), so a second node does not double what a guesser
//! gets; while that store cannot be reached, each node counts on its own.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::ApiError;

/// Most keys tracked; beyond it expired windows are dropped, then the oldest.
const MAX_KEYS: usize = 100_000;
/// How long a successful sign-in from an address exempts it from the account-wide limit.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);

/// The allowances, from the server configuration.
#[derive(Debug, Clone)]
pub struct Limits {
    pub per_user_and_address: u32,
    pub per_address: u32,
    pub per_account: u32,
    pub window: Duration,
    pub registrations_per_address: u32,
    pub registration_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_user_and_address: 5,
            per_address: 20,
            per_account: 50,
            window: Duration::from_secs(15 * 60),
            registrations_per_address: 10,
            registration_window: Duration::from_secs(3600),
        }
    }
}

struct Window {
    count: u32,
    started: Instant,
}

#[derive(Default)]
struct State {
    windows: HashMap<String, Window>,
    /// `username \n address` pairs that signed in successfully, and when.
    known: HashMap<String, Instant>,
}

pub struct Throttle {
    state: Mutex<State>,
    limits: Limits,
    /// Where every node of a cluster counts, once set.
    shared: OnceLock<Arc<dyn SharedWindows>>,
}

/// A future a [`SharedWindows`] store answers with.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Fixed windows kept where every server process counts (a cluster's Redis). Errors are
/// messages for the log; the throttle then counts in this process only.
pub trait SharedWindows: Send + Sync {
    /// Counts one attempt against each `(name, limit, window)` unless one of them is out
    /// of allowance: then nothing is counted and the answer is how long until it has room.
    fn reserve(
        &self,
        keys: Vec<(String, u32, Duration)>,
    ) -> BoxFuture<'_, Result<Option<Duration>, String>>;
    /// Gives one attempt back to each of `names` (`whole`: forgets them entirely). Never
    /// waits.
    fn give_back(&self, names: Vec<String>, whole: bool);
    /// Whether `pair` (`username \n address`) signed in within `for_`.
    fn known(&self, pair: String) -> BoxFuture<'_, Result<bool, String>>;
    /// Records that `pair` signed in, for `for_`. Never waits.
    fn remember(&self, pair: String, for_: Duration);
}

/// One key an attempt counts against: its name, allowance and window.
struct Key {
    name: String,
    limit: u32,
    window: Duration,
    /// Given back when the attempt succeeds.
    cleared_by_success: bool,
}

/// A reserved attempt. Say how it ended with [`Attempt::failed`] or [`Attempt::succeeded`];
/// dropped without either, it is given back whole.
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    keys: Vec<Key>,
    /// Remembered as a known sign-in address on success.
    known: Option<String>,
    settled: bool,
    /// Counted in the shared store (else in this process).
    shared: bool,
}

impl Attempt<'_> {
    /// The attempt failed: it stays counted.
    pub fn failed(mut self) {
        self.settled = true;
    }

    /// The attempt succeeded: keys that success clears are given back.
    pub fn succeeded(mut self) {
        self.settled = true;
        if self.shared
            && let Some(shared) = self.throttle.shared.get()
        {
            let clear: Vec<String> = self
                .keys
                .iter()
                .filter(|k| k.cleared_by_success)
                .map(|k| k.name.clone())
                .collect();
            if !clear.is_empty() {
                shared.give_back(clear, true);
            }
            if let Some(known) = self.known.take() {
                shared.remember(known, KNOWN_FOR);
            }
            return;
        }
        let mut state = self.throttle.lock();
        for key in self.keys.iter().filter(|k| k.cleared_by_success) {
            state.windows.remove(&key.name);
        }
        if let Some(known) = self.known.take() {
            let now = Instant::now();
            if state.known.len() >= MAX_KEYS {
                state
                    .known
                    .retain(|_, at| now.duration_since(*at) < KNOWN_FOR);
                if state.known.len() >= MAX_KEYS {
                    state.known.clear();
                }
            }
            state.known.insert(known, now);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if self.shared
            && let Some(shared) = self.throttle.shared.get()
        {
            shared.give_back(self.keys.iter().map(|k| k.name.clone()).collect(), false);
            return;
        }
        let mut state = self.throttle.lock();
        for key in &self.keys {
            if let Some(w) = state.windows.get_mut(&key.name) {
                w.count = w.count.saturating_sub(1);
            }
        }
    }
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Self {
            state: Mutex::new(State::default()),
            limits,
            shared: OnceLock::new(),
        }
    }

    /// Counts in `shared` from now on (a cluster node, at start).
    pub fn share(&self, shared: Arc<dyn SharedWindows>) {
        let _ = self.shared.set(shared);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves a login attempt for `username` (already normalised; `None` when it cannot
    /// name an account, which then counts against the address only) from `address`.
    pub async fn login(
        &self,
        username: Option<&str>,
        address: &str,
    ) -> Result<Attempt<'_>, ApiError> {
        let l = &self.limits;
        let address = address_key(address);
        let mut keys = vec![Key {
            name: format!("ip:{address}"),
            limit: l.per_address,
            window: l.window,
            cleared_by_success: false,
        }];
        let mut known = None;
        if let Some(user) = username {
            keys.push(Key {
                name: format!("u:{user}\n{address}"),
                limit: l.per_user_and_address,
                window: l.window,
                cleared_by_success: true,
            });
            let pair = format!("{user}\n{address}");
            let familiar = self.familiar(&pair).await;
            if !familiar {
                keys.push(Key {
                    name: format!("u:{user}"),
                    limit: l.per_account,
                    window: l.window,
                    cleared_by_success: false,
                });
            }
            known = Some(pair);
        }
        self.reserve(keys, known).await
    }

    /// Whether `pair` signed in within [`KNOWN_FOR`], wherever it is recorded.
    async fn familiar(&self, pair: &str) -> bool {
        if let Some(shared) = self.shared.get() {
            match shared.known(pair.to_owned()).await {
                Ok(known) => return known,
                Err(err) => tracing::warn!(%err, "the shared throttle is not answering"),
            }
        }
        self.lock()
            .known
            .get(pair)
            .is_some_and(|at| at.elapsed() < KNOWN_FOR)
    }

    /// Reserves an account creation from `address`; it stays counted either way.
    pub async fn register(&self, address: &str) -> Result<Attempt<'_>, ApiError> {
        let key = Key {
            name: format!("reg:{}", address_key(address)),
            limit: self.limits.registrations_per_address,
            window: self.limits.registration_window,
            cleared_by_success: false,
        };
        self.reserve(vec![key], None).await
    }

    /// Reserves a check of `user`'s current password (a password change).
    pub async fn password_check(&self, user: Uuid) -> Result<Attempt<'_>, ApiError> {
        let key = Key {
            name: format!("pw:{user}"),
            limit: self.limits.per_user_and_address,
            window: self.limits.window,
            cleared_by_success: true,
        };
        self.reserve(vec![key], None).await
    }

    async fn reserve(
        &self,
        keys: Vec<Key>,
        known: Option<String>,
    ) -> Result<Attempt<'_>, ApiError> {
        if let Some(shared) = self.shared.get() {
            let windows = keys
                .iter()
                .map(|k| (k.name.clone(), k.limit, k.window))
                .collect();
            match shared.reserve(windows).await {
                Ok(None) => {
                    return Ok(Attempt {
                        throttle: self,
                        keys,
                        known,
                        settled: false,
                        shared: true,
                    });
                }
                Ok(Some(wait)) => return Err(ApiError::too_many(wait.as_secs() + 1)),
                Err(err) => tracing::warn!(%err, "the shared throttle is not answering"),
            }
        }
        self.reserve_here(keys, known)
    }

    /// [`Throttle::reserve`] in this process's memory.
    fn reserve_here(&self, keys: Vec<Key>, known: Option<String>) -> Result<Attempt<'_>, ApiError> {
        let now = Instant::now();
        let mut state = self.lock();
        // Refused if any key is out of allowance; the longest wait is the one to report.
        let mut wait: Option<Duration> = None;
        for key in &keys {
            if let Some(w) = state.windows.get(&key.name) {
                let elapsed = now.duration_since(w.started);
                if elapsed < key.window && w.count >= key.limit {
                    let left = key.window - elapsed;
                    wait = Some(wait.map_or(left, |w| w.max(left)));
                }
            }
        }
        if let Some(wait) = wait {
            return Err(ApiError::too_many(wait.as_secs() + 1));
        }
        make_room(&mut state.windows, keys.len(), now, self.limits.window);
        for key in &keys {
            let w = state.windows.entry(key.name.clone()).or_insert(Window {
                count: 0,
                started: now,
            });
            if now.duration_since(w.started) >= key.window {
                *w = Window {
                    count: 0,
                    started: now,
                };
            }
            w.count += 1;
        }
        Ok(Attempt {
            throttle: self,
            keys,
            known,
            settled: false,
            shared: false,
        })
    }

    /// How many keys are tracked (for tests of the bound).
    pub fn tracked_keys(&self) -> usize {
        self.lock().windows.len()
    }
}

/// Keeps the map under [`MAX_KEYS`]: expired windows go first, then the oldest ones (the
/// ones closest to expiring anyway).
fn make_room(windows: &mut HashMap<String, Window>, adding: usize, now: Instant, window: Duration) {
    if windows.len() + adding <= MAX_KEYS {
        return;
    }
    windows.retain(|_, w| now.duration_since(w.started) < window);
    if windows.len() + adding <= MAX_KEYS {
        return;
    }
    let mut starts: Vec<Instant> = windows.values().map(|w| w.started).collect();
    starts.sort_unstable();
    let cut = starts[(starts.len() / 10).min(starts.len() - 1)];
    windows.retain(|_, w| w.started > cut);
}

/// The part of an address that identifies one client: the address itself, or the /64 of
/// an IPv6 address. Anything that is not an address counts as itself, cut short.
pub fn address_key(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => address.chars().take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn throttle(pair: u32, address: u32, account: u32) -> Throttle {
        Throttle::new(Limits {
            per_user_and_address: pair,
            per_address: address,
            per_account: account,
            window: Duration::from_secs(60),
            ..Limits::default()
        })
    }

    #[tokio::test]
    async fn attempts_in_flight_count() {
        let t = throttle(3, 100, 100);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(
                t.login(Some("bob"), "1.1.1.1")
                    .await
                    .expect("within the allowance"),
            );
        }
        let err = t
            .login(Some("bob"), "1.1.1.1")
            .await
            .err()
            .expect("fourth refused");
        assert_eq!(err.code, ErrorCode::TooManyRequests);
        assert!(err.retry_after.is_some_and(|s| (1..=61).contains(&s)));
        for attempt in held {
            attempt.failed();
        }
        assert!(
            t.login(Some("bob"), "1.1.1.1").await.is_err(),
            "failures stay counted"
        );
    }

    #[tokio::test]
    async fn success_clears_the_pair_and_an_unsettled_attempt_is_given_back() {
        let t = throttle(2, 100, 100);
        t.login(Some("bob"), "1.1.1.1").await.unwrap().failed();
        drop(t.login(Some("bob"), "1.1.1.1").await.unwrap());
        t.login(Some("bob"), "1.1.1.1").await.unwrap().succeeded();
        t.login(Some("bob"), "1.1.1.1").await.unwrap().failed();
        t.login(Some("bob"), "1.1.1.1").await.unwrap().failed();
        assert!(t.login(Some("bob"), "1.1.1.1").await.is_err());
    }

    #[tokio::test]
    async fn a_guesser_elsewhere_cannot_lock_the_owner_out() {
        let t = throttle(3, 100, 10);
        // The owner signs in from home once.
        t.login(Some("bob"), "10.0.0.1").await.unwrap().succeeded();
        // A guesser is stopped on their address after three tries...
        for _ in 0..3 {
            t.login(Some("bob"), "6.6.6.6").await.unwrap().failed();
        }
        assert!(t.login(Some("bob"), "6.6.6.6").await.is_err());
        // ...and the owner at home still gets in.
        assert!(t.login(Some("bob"), "10.0.0.1").await.is_ok());
        // Guessing from many addresses hits the account-wide limit, which still spares
        // the owner's known address.
        for i in 0..10 {
            if let Ok(a) = t.login(Some("bob"), &format!("7.7.7.{i}")).await {
                a.failed();
            }
        }
        assert!(
            t.login(Some("bob"), "7.7.7.200").await.is_err(),
            "a new address is stopped"
        );
        assert!(
            t.login(Some("bob"), "10.0.0.1").await.is_ok(),
            "home is not"
        );
    }

    #[tokio::test]
    async fn the_address_allowance_covers_all_usernames_and_invalid_ones() {
        let t = throttle(100, 2, 100);
        t.login(Some("a"), "9.9.9.9").await.unwrap().failed();
        t.login(None, "9.9.9.9").await.unwrap().failed();
        assert!(t.login(Some("c"), "9.9.9.9").await.is_err());
        assert!(t.login(Some("c"), "8.8.8.8").await.is_ok());
    }

    #[tokio::test]
    async fn ipv6_counts_by_network_and_keys_stay_bounded() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
        assert_eq!(address_key("::ffff:1.2.3.4"), "1.2.3.4");
        assert_eq!(address_key(&"x".repeat(500)).len(), 64);
        let t = throttle(100, 1_000_000, 1_000_000);
        for i in 0..(MAX_KEYS as u32 + 5_000) {
            let ip = std::net::Ipv4Addr::from(i).to_string();
            t.login(None, &ip).await.unwrap().failed();
        }
        assert!(t.tracked_keys() <= MAX_KEYS, "{}", t.tracked_keys());
    }

    #[tokio::test]
    async fn registrations_and_password_checks() {
        let t = Throttle::new(Limits {
            registrations_per_address: 2,
            per_user_and_address: 1,
            ..Limits::default()
        });
        t.register("1.1.1.1").await.unwrap().succeeded();
        t.register("1.1.1.1").await.unwrap().succeeded();
        assert!(
            t.register("1.1.1.1").await.is_err(),
            "creations count even when they succeed"
        );
        let user = Uuid::new_v4();
        t.password_check(user).await.unwrap().failed();
        assert!(t.password_check(user).await.is_err());
        assert!(t.password_check(Uuid::new_v4()).await.is_ok());
    }
}
