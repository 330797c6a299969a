//! Bearer tokens kept only as their SHA-256 (bot tokens, stage-gate tokens, the metrics token):
//! one way to read them from a config and one way to match a presented token.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token's SHA-256 as a config holds it: 64 hex digits.
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    hex::decode(s.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// The entry whose hash matches the bearer token in `header` (an `Authorization` value).
/// Every entry is compared, in constant time, whatever matched: the time taken does not tell
/// which one did.
pub fn find<'a, T>(
    entries: &'a [T],
    sha256_of: impl Fn(&T) -> &[u8; 32],
    header: Option<&str>,
) -> Option<&'a T> {
    let token = header?.strip_prefix("Bearer ")?.trim();
    if token.is_empty() {
        return None;
    }
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for e in entries {
        if bool::from(sha256_of(e).ct_eq(&hash)) {
            found = Some(e);
        }
    }
    found
}
