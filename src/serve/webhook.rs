//! Signed webhooks in: a CI/CD system reports an action's result (a deploy, a check).
//!
//! `POST /hooks/{sender}` with a JSON body `{"instance": ID, "node": NODE, "outcome":
//! "succeeded"|"failed"}` and two headers: `X-Kars-Timestamp` (Unix seconds) and
//! `X-Kars-Signature: sha256=HEX`, the HMAC-SHA256 with the sender's secret over
//! `TIMESTAMP.BODY`. A timestamp further than the configured skew from the server's clock is
//! stale; a signature seen before within that window is a replay; both are refused before
//! anything is read from the body. The sender reports as the roster person the config maps it
//! to, and the engine checks that person's role against the node's `reported_by`.
//!
//! Forges' own webhooks report a deploy their CI ran: GitHub's in [`super::github_hook`],
//! GitLab's in [`gitlab`]; both read a delivery as a `Delivery`, which `report_effect` writes.

pub mod gitlab;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use axum::http::HeaderMap;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::auth::hex;
use super::config::Sender;
use super::problem::Problem;
use axum::http::StatusCode;
use kars_workflow::ActionOutcome;

/// The version of the signature scheme (`sha256=` HMAC over `TIMESTAMP.BODY`), listed in the
/// changelog's format history.
pub const SIGNATURE_VERSION: u32 = 1;

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-kars-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-kars-signature";

/// A webhook's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Report {
    pub instance: String,
    pub node: String,
    pub outcome: String,
}

/// What a forge's delivery asks of kars.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// A run (pipeline) finished: report `outcome` for the effect with `key`.
    Completed {
        /// The effect's idempotency key (the run's title, the pipeline's `KARS_KEY`).
        key: String,
        /// The instance it names.
        instance: String,
        /// The action node it names.
        node: String,
        /// How the run ended.
        outcome: ActionOutcome,
    },
    /// Nothing to do (a ping, a run requested or in progress, another event), and why.
    Ignored(String),
}

/// The instance and the node an effect's idempotency key (`INSTANCE/RELEASE/NODE/N`) names;
/// `None` for a text of another shape.
pub(crate) fn key_names(key: &str) -> Option<(&str, &str)> {
    match key.split('/').collect::<Vec<_>>().as_slice() {
        [instance, release, node, n] if [instance, release, node, n].iter().all(|p| !p.is_empty()) => {
            Some((instance, node))
        }
        _ => None,
    }
}

/// Signatures seen recently, to refuse replays.
#[derive(Debug, Default)]
pub(crate) struct Replays {
    seen: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// The signature header value for `body` sent at `timestamp` with `secret` (for senders and
/// tests).
#[must_use]
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    format!("sha256={}", hex(ring::hmac::sign(&key, &message).as_ref()))
}

fn refused(kind: &str, detail: String) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, kind, "Webhook refused", detail)
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// Checks a webhook's timestamp, signature and freshness; records the signature as seen and
/// returns it, for [`Replays::forget`] should the delivery not be written.
///
/// # Errors
/// 401 problems: `stale-timestamp`, `bad-signature`, `replayed`.
pub(crate) fn verify(
    sender: &Sender,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    skew_seconds: i64,
    replays: &Replays,
) -> Result<String, Problem> {
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let timestamp: i64 = header(TIMESTAMP_HEADER)
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| refused("stale-timestamp", format!("no `{TIMESTAMP_HEADER}` header with Unix seconds")))?;
    let sent = DateTime::<Utc>::from_timestamp(timestamp, 0)
        .ok_or_else(|| refused("stale-timestamp", format!("timestamp `{timestamp}` is not a time")))?;
    let skew = Duration::seconds(skew_seconds);
    if sent < now - skew || sent > now + skew {
        return Err(refused(
            "stale-timestamp",
            format!(
                "the webhook was signed at {} and the server's clock reads {}: more than {skew_seconds} s apart\nhelp: sign with the current time, and check the sender's clock",
                sent.to_rfc3339(),
                now.to_rfc3339()
            ),
        ));
    }
    let signature = header(SIGNATURE_HEADER)
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .and_then(unhex)
        .ok_or_else(|| refused("bad-signature", format!("no `{SIGNATURE_HEADER}: sha256=HEX` header")))?;
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    ring::hmac::verify(&sender.key, &message, &signature).map_err(|_| {
        refused("bad-signature", format!("the signature does not match sender `{name}`'s secret over `TIMESTAMP.BODY`"))
    })?;
    let mut seen = replays.seen.lock().unwrap_or_else(PoisonError::into_inner);
    seen.retain(|_, at| *at >= now - skew - skew);
    let key = hex(&signature);
    if seen.contains_key(&key) {
        return Err(refused("replayed", "this webhook was delivered before; a replay changes nothing".to_owned()));
    }
    seen.insert(key.clone(), sent);
    Ok(key)
}

impl Replays {
    /// Records `id` (a GitHub delivery id) as seen at `now` and returns it; refuses an id
    /// seen before. Ids are kept as long as signatures are (twice the timestamp skew): a
    /// later replay of a completed run finds its action reported already and changes nothing.
    ///
    /// # Errors
    /// A 401 `replayed` problem for an id seen before.
    pub(crate) fn record(&self, id: &str, now: DateTime<Utc>) -> Result<String, Problem> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.contains_key(id) {
            return Err(refused("replayed", "this webhook was delivered before; a replay changes nothing".to_owned()));
        }
        seen.insert(id.to_owned(), now);
        Ok(id.to_owned())
    }

    /// Forgets a signature whose delivery was not written (refused, timed out), so that the
    /// sender may deliver it again.
    pub(crate) fn forget(&self, signature: &str) {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).remove(signature);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_hmac_sha256_over_timestamp_and_body() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac 0123456789abcdef
        let signature = sign(b"0123456789abcdef", 1_700_000_000, b"{}");
        assert_eq!(signature, "sha256=e4f8e2ecae2295b2ddb2f0b5584c8275e226c0ebe9b3b819e70156bb67122e3e");
        let sender = Sender::new("ci", "dave".parse().unwrap(), b"0123456789abcdef").unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, "1700000000".parse().unwrap());
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        let now = DateTime::from_timestamp(1_700_000_010, 0).unwrap();
        let replays = Replays::default();
        assert!(verify(&sender, "ci", &headers, b"{}", now, 300, &replays).is_ok());
        let again = verify(&sender, "ci", &headers, b"{}", now, 300, &replays).unwrap_err();
        assert_eq!(again.short_kind(), "replayed");
        let tampered = verify(&sender, "ci", &headers, b"{ }", now, 300, &Replays::default()).unwrap_err();
        assert_eq!(tampered.short_kind(), "bad-signature");
    }
}
