//! Signed tokens of tracking and unsubscribe links: what the link is for
//! (open, click, unsubscribe), the run, the recipient and, for a click, the
//! original URL, with an HMAC-SHA256 tag over all of it. A token whose tag
//! does not verify is refused before anything else is read from it, so a
//! forged link can neither redirect nor write.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC tag kept in a token: 128 bits, as RFC 2104 allows
/// (at least half the hash), to keep links short.
const TAG_BYTES: usize = 16;

/// What a link does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkKind {
    /// The open pixel.
    #[serde(rename = "o")]
    Open,
    /// A tracked link to `url`.
    #[serde(rename = "c")]
    Click,
    /// The unsubscribe link and header.
    #[serde(rename = "u")]
    Unsubscribe,
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// What the link does.
    #[serde(rename = "k")]
    pub kind: LinkKind,
    /// The run id.
    #[serde(rename = "r")]
    pub run: String,
    /// The recipient id.
    #[serde(rename = "p")]
    pub recipient: String,
    /// The original URL of a click; empty otherwise.
    #[serde(rename = "u", default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// Signs and verifies tokens with the deployment's one key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log line.
        f.write_str("Signer { key: <hidden> }")
    }
}

impl Signer {
    /// A signer with `key` (at least 32 bytes are expected; any length works).
    pub fn new(key: Vec<u8>) -> Signer {
        Signer { key }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key length")
    }

    /// The token of `claim`: `base64url(json).base64url(tag)`.
    pub fn sign(&self, claim: &Claim) -> String {
        let payload = serde_json::to_vec(claim).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&payload);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// The claim of a token whose tag verifies (in constant time); `None`
    /// for anything else, whatever is wrong with it.
    pub fn verify(&self, token: &str) -> Option<Claim> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if tag.len() != TAG_BYTES {
            return None;
        }
        let mut mac = self.mac();
        mac.update(&payload);
        mac.verify_truncated_left(&tag).ok()?;
        serde_json::from_slice(&payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click() -> Claim {
        Claim {
            kind: LinkKind::Click,
            run: "digest@20261207T080000Z".into(),
            recipient: "c1".into(),
            url: "https://shop.example/a?b=1&c=2".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_to_its_claim() {
        let signer = Signer::new(vec![7; 32]);
        let token = signer.sign(&click());
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        assert_eq!(signer.verify(&token), Some(click()));
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let token = Signer::new(vec![1; 32]).sign(&click());
        assert_eq!(Signer::new(vec![2; 32]).verify(&token), None);
    }

    #[test]
    fn changing_the_url_of_a_token_breaks_it() {
        let signer = Signer::new(vec![7; 32]);
        let token = signer.sign(&click());
        let (_, tag) = token.split_once('.').unwrap();
        let mut forged = click();
        forged.url = "https://evil.example/".into();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(signer.verify(&format!("{payload}.{tag}")), None);
    }

    #[test]
    fn flipped_truncated_or_garbled_tokens_are_refused() {
        let signer = Signer::new(vec![7; 32]);
        let token = signer.sign(&click());
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        for bad in [
            String::from_utf8(flipped).unwrap(),
            token[..token.len() - 2].to_owned(),
            token.replace('.', ""),
            "..".to_owned(),
            String::new(),
            format!("{token}.x"),
        ] {
            assert_eq!(signer.verify(&bad), None, "{bad}");
        }
    }
}
