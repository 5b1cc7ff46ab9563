//! A per-client-address rate limit (GCRA, from the `governor` crate), for endpoints that store
//! something for whoever asks: `/login` keeps a pre-login session per request. Keyed by the
//! address [`super::client_addr::client_ip`] finds (through trusted proxies only), IPv6 by /64.

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::client_addr::rate_key;

/// Addresses remembered before idle ones are forgotten on the spot (each costs a few dozen
/// bytes; a background task forgets idle ones every minute anyway).
const MAX_TRACKED: usize = 100_000;

/// A limit of `rate` requests per minute per address, `burst` at once; or none.
pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl RateLimit {
    /// `rate == 0` turns the limit off.
    pub fn per_minute(rate: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        Self { limiter }
    }

    /// Count one request from `ip`: `Err(seconds)` when it is over the limit, with how long to
    /// wait before the next one is allowed (at least one second).
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED {
            limiter.retain_recent();
        }
        limiter
            .check_key(&rate_key(ip))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(limiter.clock().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
            .map_err(|secs| secs.max(1))
    }

    /// Forget addresses whose limit has fully recovered (called every minute).
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_waits_and_others_are_not_affected() {
        let limit = RateLimit::per_minute(6, 3);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.check(a).is_ok());
        }
        let wait = limit.check(a).unwrap_err();
        assert!((1..=10).contains(&wait), "wait {wait}");
        assert!(limit.check(b).is_ok());
        // One /64: one budget.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::2".parse().unwrap();
        for _ in 0..3 {
            assert!(limit.check(v6a).is_ok());
        }
        assert!(limit.check(v6b).is_err());
        let off = RateLimit::per_minute(0, 1);
        for _ in 0..100 {
            assert!(off.check(a).is_ok());
        }
    }
}
