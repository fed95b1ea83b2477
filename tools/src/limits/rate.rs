//! Token buckets keyed by caller (a principal or an IP address), held in this process's memory.
//!
//! Each key gets `burst` calls at once and refills at the sustained rate. Per process on purpose:
//! a replica sees only its own share of a caller's traffic, so the effective limit across `n`
//! replicas is up to `n` times higher (the README says so). Login lockout, which is security
//! relevant, lives in Postgres instead (see `auth::throttle`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// A rate: `per_sec` calls a second sustained with bursts of `burst`; `per_sec == 0` means
/// unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained calls per second (0 = no limit).
    pub per_sec: f64,
    /// Calls allowed at once before the sustained rate applies.
    pub burst: u32,
}

impl Rate {
    /// No limit at all.
    pub const UNLIMITED: Rate = Rate {
        per_sec: 0.0,
        burst: 0,
    };

    /// `n` calls a minute (0 = unlimited), `burst` at once.
    pub fn per_minute(n: u32, burst: u32) -> Rate {
        Rate {
            per_sec: f64::from(n) / 60.0,
            burst,
        }
    }

    /// `n` calls an hour (0 = unlimited), `burst` at once.
    pub fn per_hour(n: u32, burst: u32) -> Rate {
        Rate {
            per_sec: f64::from(n) / 3600.0,
            burst,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets for one kind of caller.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Past this many keys, full buckets (callers quiet long enough to have refilled) are dropped.
const PRUNE_AT: usize = 10_000;

impl RateLimiter {
    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one call from `key`'s bucket; when it is empty, the whole seconds until a call is
    /// allowed again.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        if self.rate.per_sec <= 0.0 {
            return Ok(());
        }
        let capacity = f64::from(self.rate.burst.max(1));
        let per_sec = self.rate.per_sec;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < capacity
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_sec;
        bucket.tokens = refilled.min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_refused_with_a_delay_and_keys_are_separate() {
        let limiter = RateLimiter::new(Rate::per_minute(60, 3));
        for _ in 0..3 {
            assert!(limiter.check("a").is_ok());
        }
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok());
        let open = RateLimiter::new(Rate::UNLIMITED);
        assert!((0..1000).all(|_| open.check("a").is_ok()));
    }
}
