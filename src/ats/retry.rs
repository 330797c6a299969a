//! Error classification and backoff, in one place for every connector.
//!
//! Retryable: 5xx, 408, 409 (a concurrent duplicate still in progress), 429, timeouts,
//! connection failures and resets. Permanent: every other 4xx (the request itself is wrong and
//! sending it again cannot help). Backoff is exponential with *full jitter* (a uniform draw in
//! `[0, min(cap, base·2^n)]`, AWS architecture blog "Exponential Backoff And Jitter"), which
//! spreads a burst of failures instead of re-synchronising it; a `Retry-After` from the ATS
//! is a floor the delay never goes under.

use rand::Rng;
use std::time::Duration;

/// Why one attempt failed, with what the classification needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// The ATS answered with a non-success status.
    #[error("{call}: HTTP {status}{}", body_excerpt(.body))]
    Http {
        call: &'static str,
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    /// No usable answer: timeout, refused or reset connection, truncated response.
    #[error("{call}: {kind}: {detail}")]
    Transport {
        call: &'static str,
        kind: TransportKind,
        detail: String,
    },
    /// The answer was a success status but not the documented shape.
    #[error("{call}: unexpected response: {detail}")]
    Protocol { call: &'static str, detail: String },
    /// Local problem that no retry fixes (missing secret, report without application id...).
    #[error("{0}")]
    Config(String),
}

fn body_excerpt(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        String::new()
    } else {
        let cut: String = b.chars().take(200).collect();
        format!(" ({cut})")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Timeout,
    Connect,
    Reset,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Timeout => "timed out",
            TransportKind::Connect => "connection failed",
            TransportKind::Reset => "connection reset",
        })
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Try again, not before `not_before` when the ATS said so.
    Retry { not_before: Option<Duration> },
    /// Sending the same request again cannot succeed: dead-letter it now.
    Permanent,
}

impl SendError {
    pub fn classify(&self) -> Class {
        match self {
            SendError::Http {
                status,
                retry_after,
                ..
            } => match *status {
                408 | 409 | 429 | 500..=599 => Class::Retry {
                    not_before: *retry_after,
                },
                _ => Class::Permanent,
            },
            SendError::Transport { .. } => Class::Retry { not_before: None },
            // A success status with a body we cannot read is most often a proxy or a partial
            // response; retrying is safe because every step is idempotent or looked up first.
            SendError::Protocol { .. } => Class::Retry { not_before: None },
            SendError::Config(_) => Class::Permanent,
        }
    }

    /// True when the request may have been applied even though no success came back:
    /// timeouts, resets, 5xx and unreadable success bodies. The next attempt must then wait
    /// for a write still in flight at the ATS to settle before it looks for it.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            SendError::Http { status, .. } => *status >= 500 && *status != 501,
            SendError::Transport { kind, .. } => *kind != TransportKind::Connect,
            SendError::Protocol { .. } => true,
            SendError::Config(_) => false,
        }
    }

    /// Builds a transport error from reqwest's error, naming the kind.
    pub fn transport(call: &'static str, e: &reqwest::Error) -> SendError {
        let kind = if e.is_timeout() {
            TransportKind::Timeout
        } else if e.is_connect() {
            TransportKind::Connect
        } else {
            TransportKind::Reset
        };
        // reqwest's Display includes the URL, which never carries secrets here (tokens travel
        // in headers), but keep only the innermost cause to keep logs short.
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            detail = s.to_string();
            src = s.source();
        }
        SendError::Transport { call, kind, detail }
    }
}

/// Parses `Retry-After` (delta-seconds or an HTTP-date) relative to `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Retry schedule: attempt budget and backoff bounds (typed config, see `ats::config`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts before a delivery is dead-lettered (the first send counts).
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
    /// Longest `Retry-After` honoured; a longer one is clamped so a bad header cannot park a
    /// delivery for days.
    pub max_retry_after: Duration,
    /// Least delay after a failure whose outcome is unknown ([`SendError::outcome_unknown`]):
    /// a write the client gave up on may still be applied by the ATS a moment later, and the
    /// look-before-post check of the next attempt must not run before it lands. Defaults to the
    /// request timeout.
    pub settle: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_secs(2),
            cap: Duration::from_secs(600),
            max_retry_after: Duration::from_secs(3600),
            settle: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Delay after attempt `attempt` failed with `err` (classified, with the settle floor for
    /// unknown outcomes), or `None` to dead-letter.
    pub fn delay_after(
        &self,
        attempt: u32,
        err: &SendError,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let class = match err.classify() {
            Class::Retry { not_before } if err.outcome_unknown() => Class::Retry {
                not_before: Some(not_before.unwrap_or_default().max(self.settle)),
            },
            c => c,
        };
        self.next_delay(attempt, class, rng)
    }

    /// Delay before attempt `attempt + 1` after attempt `attempt` (1-based) failed with `class`,
    /// or `None` when the delivery should be dead-lettered.
    pub fn next_delay(&self, attempt: u32, class: Class, rng: &mut impl Rng) -> Option<Duration> {
        let not_before = match class {
            Class::Permanent => return None,
            Class::Retry { not_before } => not_before,
        };
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.cap)
            .as_millis() as u64;
        let jitter = Duration::from_millis(rng.gen_range(0..=ceiling));
        let floor = not_before
            .map(|d| d.min(self.max_retry_after))
            .unwrap_or_default();
        Some(jitter.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn http(status: u16) -> SendError {
        SendError::Http {
            call: "t",
            status,
            retry_after: None,
            body: String::new(),
        }
    }

    #[test]
    fn classification() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(
                matches!(http(s).classify(), Class::Retry { .. }),
                "{s} should retry"
            );
        }
        for s in [400, 401, 403, 404, 410, 413, 422] {
            assert_eq!(http(s).classify(), Class::Permanent, "{s} is permanent");
        }
        let reset = SendError::Transport {
            call: "t",
            kind: TransportKind::Reset,
            detail: "x".into(),
        };
        assert!(matches!(reset.classify(), Class::Retry { .. }));
        assert_eq!(SendError::Config("x".into()).classify(), Class::Permanent);
    }

    #[test]
    fn full_jitter_is_bounded_and_grows() {
        let p = RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(60),
            settle: Duration::ZERO,
        };
        let mut rng = StdRng::seed_from_u64(7);
        let retry = Class::Retry { not_before: None };
        for attempt in 1..8 {
            let ceiling = (100u64 << (attempt - 1)).min(1000);
            let draws: Vec<u64> = (0..200)
                .map(|_| p.next_delay(attempt, retry, &mut rng).unwrap().as_millis() as u64)
                .collect();
            assert!(draws.iter().all(|&d| d <= ceiling));
            // Full jitter: draws spread over the whole range, not clustered at the ceiling.
            assert!(draws.iter().any(|&d| d < ceiling / 4));
            assert!(draws.iter().any(|&d| d > ceiling * 3 / 4));
        }
        assert_eq!(p.next_delay(8, retry, &mut rng), None, "budget spent");
        assert_eq!(p.next_delay(1, Class::Permanent, &mut rng), None);
    }

    #[test]
    fn retry_after_is_a_floor_and_clamped() {
        let p = RetryPolicy {
            max_retry_after: Duration::from_secs(30),
            ..RetryPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let c = Class::Retry {
            not_before: Some(Duration::from_secs(20)),
        };
        assert!(p.next_delay(1, c, &mut rng).unwrap() >= Duration::from_secs(20));
        let huge = Class::Retry {
            not_before: Some(Duration::from_secs(86_400)),
        };
        assert!(p.next_delay(1, huge, &mut rng).unwrap() <= Duration::from_secs(30));
    }

    #[test]
    fn unknown_outcomes_wait_to_settle() {
        let p = RetryPolicy {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(2),
            settle: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let mut rng = StdRng::seed_from_u64(3);
        let reset = SendError::Transport {
            call: "t",
            kind: TransportKind::Reset,
            detail: "x".into(),
        };
        let refused = SendError::Transport {
            call: "t",
            kind: TransportKind::Connect,
            detail: "x".into(),
        };
        assert!(p.delay_after(1, &reset, &mut rng).unwrap() >= Duration::from_millis(500));
        assert!(p.delay_after(1, &http(504), &mut rng).unwrap() >= Duration::from_millis(500));
        // Never sent, or refused before processing: no need to wait.
        assert!(p.delay_after(1, &refused, &mut rng).unwrap() <= Duration::from_millis(2));
        assert!(p.delay_after(1, &http(429), &mut rng).unwrap() <= Duration::from_millis(2));
    }

    #[test]
    fn retry_after_formats() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
