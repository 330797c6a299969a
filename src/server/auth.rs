//! Bot authentication and rate limiting.
//!
//! A bot presents `Authorization: Bearer <token>`. Tokens are 32 random bytes (`vgl_` + base64url),
//! so a plain SHA-256 is a sufficient one-way hash for storing them (a slow password hash only
//! helps against guessable secrets); the presented token's hash is compared with every configured
//! hash in constant time. A token belongs to one tenant: every session query is scoped by it.

use super::config::TokenEntry;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bot {
    pub name: String,
    pub tenant: String,
}

/// A new random token and the hash to put in the config.
pub fn new_token() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let token = format!(
        "vgl_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    (token, hash)
}

/// Finds the bot whose token is `presented` (the `Authorization` header value).
pub fn authenticate(tokens: &[TokenEntry], header: Option<&str>) -> Option<Bot> {
    crate::ats::token::find(tokens, |t| &t.sha256, header).map(|t| Bot {
        name: t.name.clone(),
        tenant: t.tenant.clone(),
    })
}

/// Token buckets per bot: `per_minute` sustained, bursts of a tenth of it (at least 10).
pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: per_minute.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn burst(&self) -> f64 {
        (self.per_minute as f64 / 10.0).max(10.0)
    }

    /// Takes one request from `bot`'s bucket; `Err(wait)` when it is empty.
    pub fn check(&self, bot: &str) -> Result<(), Duration> {
        self.check_at(bot, Instant::now())
    }

    fn check_at(&self, bot: &str, now: Instant) -> Result<(), Duration> {
        let rate = self.per_minute as f64 / 60.0;
        let burst = self.burst();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = b.entry(bot.to_string()).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_authenticate_only_with_their_own_hash() {
        let (token, hash) = new_token();
        let entry = TokenEntry {
            name: "bot".into(),
            tenant: "acme".into(),
            sha256: hex::decode(&hash).unwrap().try_into().unwrap(),
        };
        let tokens = [entry];
        let bot = authenticate(&tokens, Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(bot.tenant, "acme");
        assert!(authenticate(&tokens, Some(&format!("Bearer {token}x"))).is_none());
        assert!(
            authenticate(&tokens, Some(&token)).is_none(),
            "scheme required"
        );
        assert!(authenticate(&tokens, Some("Bearer ")).is_none());
        assert!(authenticate(&tokens, None).is_none());
    }

    #[test]
    fn buckets_refill_at_the_configured_rate() {
        let rl = RateLimiter::new(60); // 1/s, burst 10
        let t0 = Instant::now();
        for _ in 0..10 {
            rl.check_at("a", t0).unwrap();
        }
        let wait = rl.check_at("a", t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        rl.check_at("b", t0).expect("buckets are per bot");
        rl.check_at("a", t0 + Duration::from_secs(1))
            .expect("one more after a second");
    }
}
