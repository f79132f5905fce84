//! Slows down password guessing: counts failed logins per username and per client address
//! in a fixed window and refuses further attempts (HTTP 429 with Retry-After) once a key has
//! used up its allowance. In memory and per process: a restart forgets, which is acceptable
//! for a brake (the passwords themselves are argon2id).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::ApiError;

/// Above this many tracked keys, expired windows are swept on the next failure.
const SWEEP_THRESHOLD: usize = 10_000;

struct Window {
    failures: u32,
    started: Instant,
}

pub struct LoginThrottle {
    windows: Mutex<HashMap<String, Window>>,
    max_per_user: u32,
    max_per_ip: u32,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(max_per_user: u32, max_per_ip: u32, window: Duration) -> Self {
        Self {
            windows: Mutex::new(HashMap::new()),
            max_per_user,
            max_per_ip,
            window,
        }
    }

    fn keys(username: &str, ip: &str) -> [(String, bool); 2] {
        [(format!("u:{username}"), true), (format!("ip:{ip}"), false)]
    }

    /// Refuses the attempt if the username or the address is out of allowance.
    pub fn check(&self, username: &str, ip: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for (key, is_user) in Self::keys(username, ip) {
            let limit = if is_user {
                self.max_per_user
            } else {
                self.max_per_ip
            };
            if let Some(w) = windows.get(&key) {
                let elapsed = now.duration_since(w.started);
                if elapsed < self.window && w.failures >= limit {
                    return Err(ApiError::too_many((self.window - elapsed).as_secs() + 1));
                }
            }
        }
        Ok(())
    }

    /// Counts one failed attempt against both keys.
    pub fn record_failure(&self, username: &str, ip: &str) {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > SWEEP_THRESHOLD {
            windows.retain(|_, w| now.duration_since(w.started) < self.window);
        }
        for (key, _) in Self::keys(username, ip) {
            let w = windows.entry(key).or_insert(Window {
                failures: 0,
                started: now,
            });
            if now.duration_since(w.started) >= self.window {
                *w = Window {
                    failures: 0,
                    started: now,
                };
            }
            w.failures += 1;
        }
    }

    /// A successful login clears the username's count (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.remove(&format!("u:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_allowance_and_reports_the_wait() {
        let t = LoginThrottle::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(t.check("bob", "1.1.1.1").is_ok());
            t.record_failure("bob", "1.1.1.1");
        }
        let err = t.check("bob", "1.1.1.1").unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::TooManyRequests);
        assert!(err.retry_after.is_some_and(|s| (1..=61).contains(&s)));
        // Another username from the same address is still allowed.
        assert!(t.check("carol", "1.1.1.1").is_ok());
        t.record_success("bob");
        assert!(t.check("bob", "1.1.1.1").is_ok());
    }

    #[test]
    fn the_address_allowance_covers_all_usernames() {
        let t = LoginThrottle::new(100, 2, Duration::from_secs(60));
        t.record_failure("a", "9.9.9.9");
        t.record_failure("b", "9.9.9.9");
        assert!(t.check("c", "9.9.9.9").is_err());
        assert!(t.check("c", "8.8.8.8").is_ok());
    }
}
