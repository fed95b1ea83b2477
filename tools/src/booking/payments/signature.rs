//! Stripe webhook signatures, as pure functions: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`
//! where each `v1` is `hex(HMAC-SHA256(endpoint_secret, "{t}.{raw body}"))`. Several `v1` entries
//! appear while a secret is being rolled; any one matching is enough. Like Stripe's own libraries
//! the MAC is checked first (in constant time), then the timestamp's distance from `now`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::provider::ProviderError;

/// How far (seconds, either direction) a signature's timestamp may be from our clock.
pub const TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, t: i64, payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// A `Stripe-Signature` header value for `payload` signed with `secret` at unix time `t` (what
/// Stripe sends; used by tests and fakes).
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let hex = hex::encode(mac(secret, t, payload).finalize().into_bytes());
    format!("t={t},v1={hex}")
}

fn bad(reason: impl Into<String>) -> ProviderError {
    ProviderError::BadWebhook(reason.into())
}

/// Checks `header` (the raw `Stripe-Signature` value) against `payload` (the raw request body)
/// and `secret`; returns the signed timestamp. Every rejection is a `BadWebhook` with its reason.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: i64,
) -> Result<i64, ProviderError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("the Stripe-Signature header is missing"))?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| bad("the Stripe-Signature timestamp is not a number"))?;
                timestamp = Some(t);
            }
            "v1" => candidates.push(value),
            // v0 (test-mode legacy) and unknown schemes are ignored, as Stripe's libraries do.
            _ => {}
        }
    }
    let t = timestamp.ok_or_else(|| bad("the Stripe-Signature header has no timestamp (t=)"))?;
    if candidates.is_empty() {
        return Err(bad("the Stripe-Signature header has no v1 signature"));
    }
    let mut any_hex = false;
    let mut matched = false;
    for candidate in candidates {
        let Ok(bytes) = hex::decode(candidate) else {
            continue;
        };
        any_hex = true;
        if mac(secret, t, payload).verify_slice(&bytes).is_ok() {
            matched = true;
            break;
        }
    }
    if !any_hex {
        return Err(bad("the Stripe-Signature v1 signature is not hexadecimal"));
    }
    if !matched {
        return Err(bad(
            "no v1 signature matches the payload (wrong secret or altered body)",
        ));
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(bad(format!(
            "the signature timestamp is {} s from now (tolerance {TOLERANCE_SECS} s)",
            (now - t).abs()
        )));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &str = r#"{"id":"evt_1"}"#;
    const T: i64 = 1_700_000_000;

    fn reason(result: Result<i64, ProviderError>) -> String {
        match result {
            Err(ProviderError::BadWebhook(reason)) => reason,
            other => panic!("expected BadWebhook, got {other:?}"),
        }
    }

    #[test]
    fn sign_matches_an_independent_hmac() {
        // python3: hmac.new(b'whsec_test_secret', b'1700000000.{"id":"evt_1"}', sha256).hexdigest()
        assert_eq!(
            sign(BODY.as_bytes(), SECRET, T),
            "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
        );
    }

    #[test]
    fn a_valid_signature_is_accepted() {
        let header = sign(BODY.as_bytes(), SECRET, T);
        assert_eq!(
            verify(BODY.as_bytes(), Some(&header), SECRET, T).unwrap(),
            T
        );
    }

    #[test]
    fn a_body_altered_by_one_byte_is_rejected() {
        let header = sign(BODY.as_bytes(), SECRET, T);
        let mut tampered = BODY.as_bytes().to_vec();
        tampered[8] ^= 1;
        assert!(reason(verify(&tampered, Some(&header), SECRET, T)).contains("no v1 signature"));
    }

    #[test]
    fn another_secret_is_rejected() {
        let header = sign(BODY.as_bytes(), "whsec_other", T);
        assert!(reason(verify(BODY.as_bytes(), Some(&header), SECRET, T)).contains("matches"));
    }

    #[test]
    fn the_timestamp_tolerance_is_300_seconds() {
        let header = sign(BODY.as_bytes(), SECRET, T);
        let old = reason(verify(BODY.as_bytes(), Some(&header), SECRET, T + 301));
        assert!(old.contains("301 s"), "{old}");
        assert!(verify(BODY.as_bytes(), Some(&header), SECRET, T + 299).is_ok());
        assert!(verify(BODY.as_bytes(), Some(&header), SECRET, T - 299).is_ok());
        assert!(verify(BODY.as_bytes(), Some(&header), SECRET, T - 301).is_err());
    }

    #[test]
    fn any_v1_entry_may_match() {
        let good = sign(BODY.as_bytes(), SECRET, T);
        let stale = sign(BODY.as_bytes(), "whsec_old", T);
        let old_v1 = stale.split_once(",v1=").unwrap().1;
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let header = format!("t={T},v1={old_v1},v1={good_v1},v0=deadbeef");
        assert_eq!(
            verify(BODY.as_bytes(), Some(&header), SECRET, T).unwrap(),
            T
        );
    }

    #[test]
    fn malformed_headers_are_rejected_with_a_reason() {
        let body = BODY.as_bytes();
        assert!(reason(verify(body, None, SECRET, T)).contains("missing"));
        assert!(reason(verify(body, Some("  "), SECRET, T)).contains("missing"));
        assert!(reason(verify(body, Some("v1=00"), SECRET, T)).contains("no timestamp"));
        assert!(reason(verify(body, Some("t=abc,v1=00"), SECRET, T)).contains("not a number"));
        assert!(reason(verify(body, Some(&format!("t={T},v0=00")), SECRET, T)).contains("no v1"));
        let not_hex = format!("t={T},v1=zz");
        assert!(reason(verify(body, Some(&not_hex), SECRET, T)).contains("hexadecimal"));
    }
}
