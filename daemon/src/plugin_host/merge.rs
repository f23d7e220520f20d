//! Several callers' batches in one plugin call, and the reply cut back
//! into one per batch.
//!
//! A run of one recipient makes a batch of one message, and a burst of
//! such runs made one plugin call each: two thread hand-overs per message,
//! the largest cost of a burst in the daemon (benches/README.md, P4,
//! session 11). Batches that queue up while every worker is busy now go
//! out together, up to the callers' batch size, as one wire batch (every
//! message names its run, so a batch may hold several runs, plugins.md).
//! The reply is cut at message boundaries without decoding the statuses,
//! so each caller still checks its own results, as if alone.

use super::library::RawReply;
use herald_plugin_api::WIRE_VERSION;
use herald_plugin_api::abi::HERALD_OK;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The bytes a batch encoded by [`super::encode_batch`] starts with.
fn head() -> String {
    format!("{{\"version\":{WIRE_VERSION},\"messages\":[")
}

/// The messages of an encoded batch, without the envelope (empty when it
/// has none), or `None` when the bytes are not one of the host's batches.
fn messages_of<'a>(batch: &'a [u8], head: &str) -> Option<&'a [u8]> {
    batch
        .strip_prefix(head.as_bytes())
        .and_then(|rest| rest.strip_suffix(b"]}"))
}

/// One wire batch holding the messages of `batches`, in order; `None`
/// when one of them is not an encoded batch of this host's wire version.
pub(super) fn merge(batches: &[&[u8]]) -> Option<Vec<u8>> {
    let head = head();
    let size: usize = batches.iter().map(|b| b.len()).sum();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(head.as_bytes());
    let mut first = true;
    for batch in batches {
        let messages = messages_of(batch, &head)?;
        if messages.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(messages);
        first = false;
    }
    out.extend_from_slice(b"]}");
    Some(out)
}

/// The reply's envelope with each result left as its JSON text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Results<'a> {
    version: u32,
    #[serde(borrow)]
    results: Vec<&'a RawValue>,
}

/// Cuts the reply to a merged call into one reply per batch, `counts[i]`
/// results for batch `i`. `None` when the reply cannot be cut (an error
/// code, bytes that are not results JSON of the wire version, or not as
/// many results as messages): each caller then gets the reply whole and
/// reports what is wrong with it.
pub(super) fn split(reply: &RawReply, counts: &[usize]) -> Option<Vec<RawReply>> {
    if reply.code != HERALD_OK {
        return None;
    }
    let text = std::str::from_utf8(&reply.bytes).ok()?;
    let parsed: Results<'_> = serde_json::from_str(text).ok()?;
    if parsed.version != WIRE_VERSION || parsed.results.len() != counts.iter().sum::<usize>() {
        return None;
    }
    let mut results = parsed.results.into_iter();
    let replies = counts
        .iter()
        .map(|&count| {
            let mut bytes = format!("{{\"version\":{WIRE_VERSION},\"results\":[").into_bytes();
            for (index, result) in results.by_ref().take(count).enumerate() {
                if index > 0 {
                    bytes.push(b',');
                }
                bytes.extend_from_slice(result.get().as_bytes());
            }
            bytes.extend_from_slice(b"]}");
            RawReply {
                code: HERALD_OK,
                bytes,
            }
        })
        .collect();
    Some(replies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin_host::{decode_results, encode_batch};
    use herald_plugin_api::{Batch, BatchResults, Message, MessageResult, SendStatus};

    fn batch(ids: &[&str]) -> Batch {
        Batch {
            version: WIRE_VERSION,
            messages: ids
                .iter()
                .map(|id| Message {
                    message_id: format!("run-{id}/{id}"),
                    run_id: format!("run-{id}"),
                    recipient_id: (*id).to_owned(),
                    channel: "sms".to_owned(),
                    address: format!("addr \"{id}\""),
                    content: [("body".to_owned(), format!("Hi {id}"))].into(),
                    headers: Default::default(),
                    data: Default::default(),
                })
                .collect(),
        }
    }

    /// Merging encoded batches gives the encoding of their messages
    /// together, empty batches included.
    #[test]
    fn merged_batches_are_the_batch_of_all_their_messages() {
        let parts = [batch(&["a", "b"]), batch(&[]), batch(&["c"])];
        let encoded: Vec<Vec<u8>> = parts.iter().map(encode_batch).collect();
        let slices: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let merged = merge(&slices).unwrap();
        let whole: Batch = serde_json::from_slice(&merged).unwrap();
        assert_eq!(whole, batch(&["a", "b", "c"]));
        assert_eq!(merge(&[b"{\"messages\":[]}"]), None);
    }

    /// A reply cut in pieces decodes, piece by piece, as each batch's own.
    #[test]
    fn a_reply_cut_back_decodes_as_each_batch_alone() {
        let parts = [batch(&["a", "b"]), batch(&["c"])];
        let statuses = [
            SendStatus::Accepted {
                provider_message_id: Some("p-1".to_owned()),
            },
            SendStatus::Failed {
                reason: "no \"route\"".to_owned(),
            },
            SendStatus::Retry {
                reason: "busy".to_owned(),
                retry_after_ms: Some(2000),
            },
        ];
        let whole = BatchResults {
            version: WIRE_VERSION,
            results: ["a", "b", "c"]
                .iter()
                .zip(&statuses)
                .map(|(id, status)| MessageResult {
                    message_id: format!("run-{id}/{id}"),
                    status: status.clone(),
                })
                .collect(),
        };
        let reply = RawReply {
            code: HERALD_OK,
            bytes: serde_json::to_vec(&whole).unwrap(),
        };
        let pieces = split(&reply, &[2, 1]).unwrap();
        assert_eq!(
            decode_results("t", "sms", &parts[0], &pieces[0]).unwrap(),
            statuses[..2]
        );
        assert_eq!(
            decode_results("t", "sms", &parts[1], &pieces[1]).unwrap(),
            statuses[2..]
        );
    }

    /// A reply that cannot be cut is left whole.
    #[test]
    fn a_reply_that_cannot_be_cut_is_left_whole() {
        let ok = |bytes: &str| RawReply {
            code: HERALD_OK,
            bytes: bytes.as_bytes().to_vec(),
        };
        let one = r#"{"version":1,"results":[{"message_id":"r/a","status":"accepted"}]}"#;
        assert!(split(&ok(one), &[1, 1]).is_none(), "too few results");
        assert!(split(&ok("not json"), &[1]).is_none());
        assert!(split(&ok(&one.replace("\"version\":1", "\"version\":9")), &[1]).is_none());
        let failed = RawReply {
            code: HERALD_OK + 1,
            bytes: one.as_bytes().to_vec(),
        };
        assert!(split(&failed, &[1]).is_none());
    }
}
