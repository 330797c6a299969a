//! DSSE envelopes signed with Ed25519 (https://github.com/secure-systems-lab/dsse).
//!
//! The signature covers DSSE's pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(body) SP body`, so the payload type cannot be swapped
//! and no JSON canonicalisation is needed: the exact payload bytes are what is signed.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The payload type of every Vigil report.
pub const PAYLOAD_TYPE: &str = "application/vnd.vigil.integrity-report.v1+json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 (standard alphabet, padded) of the payload bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// Why an envelope does not verify. Exit code 1 for all of them.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VerifyError {
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    #[error("payload type is '{0}', expected '{PAYLOAD_TYPE}'")]
    PayloadType(String),
    #[error("the envelope carries no signature")]
    Unsigned,
    #[error("signed by key '{found}', but the public key given is '{expected}'")]
    WrongKey { found: String, expected: String },
    #[error(
        "the signature by key '{0}' does not match the payload (the report was altered or signed by another key)"
    )]
    BadSignature(String),
}

/// DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(
        format!(
            "DSSEv1 {} {} {} ",
            payload_type.len(),
            payload_type,
            payload.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(payload);
    out
}

/// Key id: `ed25519:` + the first 16 hex digits of SHA-256 over the raw 32-byte public key.
pub fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("ed25519:{}", &hex::encode(digest)[..16])
}

pub fn sign(payload: &[u8], key: &SigningKey) -> Envelope {
    let sig: Signature = key.sign(&pae(PAYLOAD_TYPE, payload));
    Envelope {
        payload_type: PAYLOAD_TYPE.to_string(),
        payload: B64.encode(payload),
        signatures: vec![EnvelopeSignature {
            keyid: key_id(&key.verifying_key()),
            sig: B64.encode(sig.to_bytes()),
        }],
    }
}

/// Verifies the envelope against `key` and returns the payload bytes.
pub fn verify(env: &Envelope, key: &VerifyingKey) -> Result<Vec<u8>, VerifyError> {
    if env.payload_type != PAYLOAD_TYPE {
        return Err(VerifyError::PayloadType(env.payload_type.clone()));
    }
    let payload = B64
        .decode(&env.payload)
        .map_err(|e| VerifyError::Malformed(format!("payload is not base64: {e}")))?;
    if env.signatures.is_empty() {
        return Err(VerifyError::Unsigned);
    }
    let expected = key_id(key);
    let Some(s) = env.signatures.iter().find(|s| s.keyid == expected) else {
        return Err(VerifyError::WrongKey {
            found: env
                .signatures
                .iter()
                .map(|s| s.keyid.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            expected,
        });
    };
    let sig_bytes = B64
        .decode(&s.sig)
        .map_err(|e| VerifyError::Malformed(format!("signature is not base64: {e}")))?;
    let sig = Signature::from_slice(&sig_bytes)
        .map_err(|_| VerifyError::BadSignature(s.keyid.clone()))?;
    key.verify(&pae(&env.payload_type, &payload), &sig)
        .map_err(|_| VerifyError::BadSignature(s.keyid.clone()))?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // Example from the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn sign_then_verify_round_trips_and_detects_tampering() {
        let key = SigningKey::generate(&mut OsRng);
        let env = sign(b"{\"a\":1}", &key);
        assert_eq!(verify(&env, &key.verifying_key()).unwrap(), b"{\"a\":1}");

        let mut tampered = env.clone();
        tampered.payload = B64.encode(b"{\"a\":2}");
        assert!(matches!(
            verify(&tampered, &key.verifying_key()),
            Err(VerifyError::BadSignature(_))
        ));

        let other = SigningKey::generate(&mut OsRng);
        assert!(matches!(
            verify(&env, &other.verifying_key()),
            Err(VerifyError::WrongKey { .. })
        ));

        let mut retyped = env.clone();
        retyped.payload_type = "application/json".into();
        assert!(matches!(
            verify(&retyped, &key.verifying_key()),
            Err(VerifyError::PayloadType(_))
        ));
    }
}
