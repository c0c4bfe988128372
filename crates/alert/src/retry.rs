//! When to try a failed delivery again.

use std::time::Duration;

use rand::Rng;

/// What a failed attempt means for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// Try again after the usual backoff (timeouts, 5xx, connection refused).
    Backoff,
    /// The receiver asked for this wait (429 / 503 with Retry-After).
    After(Duration),
    /// Retrying cannot help (400, 401, 404, a refused target): dead-letter now.
    Never,
}

/// A failed attempt, with a message safe to store and show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub message: String,
    pub retry: Retry,
}

/// Attempts before a delivery is dead-lettered.
pub const MAX_ATTEMPTS: i64 = 12;

/// Exponential backoff with jitter: 2 s, 4 s, 8 s … capped at 15 minutes,
/// each ±20 %, so a receiver coming back is not hit by every sender at once.
pub fn backoff(attempts: i64) -> Duration {
    let base = 2f64 * 2f64.powi(attempts.clamp(0, 20) as i32);
    let capped = base.min(900.0);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    Duration::from_secs_f64(capped * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(0).as_secs_f64();
        assert!((1.6..=2.4).contains(&first), "{first}");
        let fifth = backoff(4).as_secs_f64();
        assert!((25.6..=38.4).contains(&fifth), "{fifth}");
        assert!(backoff(30).as_secs_f64() <= 900.0 * 1.2);
    }
}
