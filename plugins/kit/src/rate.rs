//! A rate limiter shared by every thread that calls one plugin instance.

use crate::config::Rate;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Spaces sends evenly at a [`Rate`], across threads.
///
/// Each caller reserves the next free slot under a lock and sleeps outside
/// it, so concurrent `send_batch` calls share one budget without holding
/// the lock while they wait. Slots are spaced by the rate's interval with
/// no burst: providers that count per second see a smooth flow.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next_free: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `rate`.
    pub fn new(rate: Rate) -> Self {
        RateLimiter {
            interval: rate.interval(),
            next_free: Mutex::new(None),
        }
    }

    /// Reserves the next slot and returns how long to wait for it.
    pub fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut next_free = self.next_free.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match *next_free {
            Some(next) if next > now => next,
            _ => now,
        };
        *next_free = Some(slot + self.interval);
        slot - now
    }

    /// Blocks the calling thread until it may send one message.
    pub fn wait_blocking(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_rate;
    use std::sync::Arc;

    #[test]
    fn the_first_send_does_not_wait() {
        let limiter = RateLimiter::new(parse_rate("rate", "10/s").unwrap());
        assert_eq!(limiter.reserve(), Duration::ZERO);
    }

    #[test]
    fn threads_share_one_budget() {
        let limiter = Arc::new(RateLimiter::new(parse_rate("rate", "50/s").unwrap()));
        let started = Instant::now();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limiter = Arc::clone(&limiter);
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        limiter.wait_blocking();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        // 20 sends at 50/s: the first is free, the other 19 are 20ms apart.
        assert!(started.elapsed() >= Duration::from_millis(19 * 20));
    }
}
