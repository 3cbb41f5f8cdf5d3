//! Per-terminal rate limits of the push listeners, and the peer address
//! they key on behind a reverse proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::HeaderMap;

/// Most keys a [`RateLimiter`] tracks: past it, keys whose limit has
/// recovered are forgotten, and if none has, all are (a flood of new
/// addresses restarts the limits rather than grow memory).
pub const MAX_RATE_KEYS: usize = 10_000;

/// `governor`'s keyed limiter on clock `C`.
type Keyed<C> = governor::RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    C,
    governor::middleware::NoOpMiddleware<<C as governor::clock::Clock>::Instant>,
>;

/// Per-terminal rate limits (serial number or peer address): `governor`'s
/// keyed GCRA limiter, bounded to [`MAX_RATE_KEYS`] keys.
pub struct RateLimiter<C: governor::clock::Clock = governor::clock::DefaultClock> {
    quota: Option<governor::Quota>,
    clock: C,
    inner: Mutex<Option<Keyed<C>>>,
}

impl<C: governor::clock::Clock + Clone> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quota", &self.quota)
            .field("keys", &self.len())
            .finish()
    }
}

impl RateLimiter {
    /// `rate` requests per second on average, `burst` at once; `rate` 0
    /// admits everything.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self::with_clock(rate, burst, governor::clock::DefaultClock::default())
    }
}

impl<C: governor::clock::Clock + Clone> RateLimiter<C> {
    /// [`RateLimiter::new`] on another clock (tests use a fake one).
    pub fn with_clock(rate: f64, burst: u32, clock: C) -> Self {
        let quota = (rate.is_finite() && rate > 0.0)
            .then(|| Duration::from_secs_f64((1.0 / rate).min(1e9)))
            .and_then(governor::Quota::with_period)
            .map(|q| q.allow_burst(std::num::NonZeroU32::new(burst.max(1)).unwrap_or(NONZERO_ONE)));
        RateLimiter {
            quota,
            inner: Mutex::new(quota.map(|q| Self::fresh(q, &clock))),
            clock,
        }
    }

    fn fresh(q: governor::Quota, clock: &C) -> Keyed<C> {
        governor::RateLimiter::new(
            q,
            governor::state::keyed::DefaultKeyedStateStore::default(),
            clock.clone(),
        )
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map_or(0, |l| l.len())
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `key` may make a request now.
    pub fn admit(&self, key: &str) -> bool {
        let Some(quota) = self.quota else {
            return true;
        };
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let l = g.get_or_insert_with(|| Self::fresh(quota, &self.clock));
        if l.len() >= MAX_RATE_KEYS {
            l.retain_recent();
            l.shrink_to_fit();
            if l.len() >= MAX_RATE_KEYS {
                *l = Self::fresh(quota, &self.clock);
            }
        }
        l.check_key(&key.to_string()).is_ok()
    }
}

const NONZERO_ONE: std::num::NonZeroU32 = match std::num::NonZeroU32::new(1) {
    Some(n) => n,
    None => unreachable!(),
};

/// The peer's address for rate limits when the terminal has no id in the
/// URL. Behind a reverse proxy every request comes from the proxy, so when
/// the peer is one of `trusted` the last `X-Forwarded-For` address (the one
/// that proxy added; earlier ones came with the request) is used instead.
/// From any other peer the header is ignored.
pub fn peer_key(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> String {
    let ip = peer.ip().to_canonical();
    if trusted.iter().any(|t| t.to_canonical() == ip)
        && let Some(fwd) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|v| v.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return fwd.to_string();
    }
    ip.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_refills() {
        let clock = governor::clock::FakeRelativeClock::default();
        let r = RateLimiter::with_clock(2.0, 2, clock.clone());
        assert!(r.admit("a"));
        assert!(r.admit("a"));
        assert!(!r.admit("a"));
        assert!(r.admit("b"));
        clock.advance(Duration::from_millis(600));
        assert!(r.admit("a"));
        assert!(RateLimiter::new(0.0, 1).admit("a"));
        assert!(RateLimiter::new(f64::NAN, 1).admit("a"));
    }

    /// A flood of new keys (peer addresses) cannot grow the limiter past
    /// its bound; keys whose limit has recovered make room.
    #[test]
    fn rate_limiter_keys_are_bounded() {
        let clock = governor::clock::FakeRelativeClock::default();
        let r = RateLimiter::with_clock(1.0, 1, clock.clone());
        for i in 0..MAX_RATE_KEYS + 500 {
            r.admit(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        let len = || r.len();
        assert!(len() <= MAX_RATE_KEYS, "{}", len());
        // Later every key has recovered: a new one is admitted.
        clock.advance(Duration::from_secs(5));
        assert!(r.admit("192.168.1.1"));
        assert!(len() <= MAX_RATE_KEYS);
    }

    /// Issue 13: `X-Forwarded-For` was believed from any loopback peer, so a
    /// random header reset the rate limit.
    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 10.0.0.7".parse().unwrap());
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let trusted = ["127.0.0.1".parse().unwrap()];
        assert_eq!(peer_key(proxy, &h, &trusted), "10.0.0.7");
        assert_eq!(peer_key(proxy, &h, &[]), "127.0.0.1");
        assert_eq!(peer_key(other, &h, &trusted), "10.0.0.9");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(peer_key(mapped, &h, &trusted), "10.0.0.7");
        assert_eq!(peer_key(proxy, &HeaderMap::new(), &trusted), "127.0.0.1");
    }
}
