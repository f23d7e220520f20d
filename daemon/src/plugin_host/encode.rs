//! The batch encoder: the same JSON bytes `serde_json::to_vec(&batch)`
//! writes, written straight into one buffer sized up front.
//!
//! Encoding the batch was the host's largest cost per message: serde_json
//! looks every byte of every string up in its escape table and checks the
//! buffer's capacity at each write. Rendered messages almost never hold a
//! character that needs escaping, so each string is checked sixteen bytes
//! at a time and copied whole; one that does need escaping is written byte
//! by byte with serde_json's escapes. The tests hold the output equal to
//! serde_json's, so the wire format cannot drift.

use herald_plugin_api::{Batch, Message};
use std::collections::BTreeMap;

/// Encodes `batch` as its wire JSON (the bytes `serde_json::to_vec`
/// would give).
pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    let size: usize = batch.messages.iter().map(message_size).sum();
    let mut out = Vec::with_capacity(size + 40);
    out.extend_from_slice(b"{\"version\":");
    out.extend_from_slice(batch.version.to_string().as_bytes());
    out.extend_from_slice(b",\"messages\":[");
    for (index, message) in batch.messages.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        message_json(&mut out, message);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The encoded size of `message` when nothing needs escaping (the keys
/// and punctuation are under 150 bytes; each map entry adds 6).
fn message_size(message: &Message) -> usize {
    let map = |m: &BTreeMap<String, String>| -> usize {
        m.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>() + 12
    };
    150 + message.message_id.len()
        + message.run_id.len()
        + message.recipient_id.len()
        + message.channel.len()
        + message.address.len()
        + map(&message.content)
        + map(&message.headers)
        + map(&message.data)
}

/// One message, its fields in declaration order as serde derives them.
fn message_json(out: &mut Vec<u8>, message: &Message) {
    // Destructured so that a field added to `Message` fails to compile here
    // instead of silently missing from the wire.
    let Message {
        message_id,
        run_id,
        recipient_id,
        channel,
        address,
        content,
        headers,
        data,
    } = message;
    let fields: [(&[u8], &str); 5] = [
        (b"{\"message_id\":", message_id),
        (b",\"run_id\":", run_id),
        (b",\"recipient_id\":", recipient_id),
        (b",\"channel\":", channel),
        (b",\"address\":", address),
    ];
    for (key, value) in fields {
        out.extend_from_slice(key);
        string(out, value);
    }
    out.extend_from_slice(b",\"content\":");
    map(out, content);
    // `skip_serializing_if = "BTreeMap::is_empty"` on both.
    if !headers.is_empty() {
        out.extend_from_slice(b",\"headers\":");
        map(out, headers);
    }
    if !data.is_empty() {
        out.extend_from_slice(b",\"data\":");
        map(out, data);
    }
    out.push(b'}');
}

fn map(out: &mut Vec<u8>, entries: &BTreeMap<String, String>) {
    out.push(b'{');
    for (index, (key, value)) in entries.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, key);
        out.push(b':');
        string(out, value);
    }
    out.push(b'}');
}

/// A JSON string, quoted and escaped exactly as serde_json does it.
fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    if needs_escape(text.as_bytes()) {
        escaped(out, text.as_bytes());
    } else {
        out.extend_from_slice(text.as_bytes());
    }
    out.push(b'"');
}

/// Whether any byte is a quote, a backslash or a control character,
/// checked sixteen bytes at a time: the tail by one last chunk that
/// overlaps the one before, a string shorter than sixteen bytes padded
/// with spaces (most fields of a message are short).
fn needs_escape(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last_chunk::<16>() else {
        let mut padded = [b' '; 16];
        padded[..bytes.len()].copy_from_slice(bytes);
        return special_in(&padded);
    };
    bytes.chunks_exact(16).any(special_in) || special_in(last)
}

/// Whether a chunk (of sixteen bytes) holds a byte JSON must escape.
/// Folded without an early exit so that it compiles to a few vector
/// instructions.
fn special_in(chunk: &[u8]) -> bool {
    chunk.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// serde_json's escapes: `\"`, `\\`, the five short control escapes, and
/// `\u00xx` (lower-case hex) for the other control characters. Everything
/// else, DEL and non-ASCII included, is written as it is.
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x00..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0x0f)],
            ]),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use herald_plugin_api::WIRE_VERSION;

    fn message(id: &str, text: &str) -> Message {
        Message {
            message_id: id.to_owned(),
            run_id: "weekly@2026-11-27T09:00:00Z".to_owned(),
            recipient_id: "r1".to_owned(),
            channel: "email".to_owned(),
            address: "r1@example.com".to_owned(),
            content: [("subject", "Hi"), ("text", text)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            headers: Default::default(),
            data: Default::default(),
        }
    }

    fn same_as_serde(batch: &Batch) {
        let expected = serde_json::to_vec(batch).unwrap();
        let got = encode_batch(batch);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn plain_batches_encode_as_serde_json_does() {
        same_as_serde(&Batch {
            version: WIRE_VERSION,
            messages: vec![],
        });
        let mut full = message("run/r1", "Hello, see https://shop.example/w/1");
        full.headers
            .insert("List-Id".to_owned(), "<news.shop>".to_owned());
        full.data.insert("k".to_owned(), "v".to_owned());
        full.content.clear();
        same_as_serde(&Batch {
            version: 7,
            messages: vec![message("run/r0", "x"), full, message("run/r2", "")],
        });
    }

    #[test]
    fn every_ascii_character_and_unicode_escape_as_serde_json_does() {
        let ascii: String = (0u8..0x80).map(char::from).collect();
        let texts = [
            ascii.clone(),
            ascii.repeat(3),
            "ünïcödé ✉ 🚀 \u{2028}\u{2029} \u{7f}".to_owned(),
            "sixteen bytes ok\"".to_owned(),
            "a long plain line that spans several sixteen-byte chunks\n".to_owned(),
            "\\".to_owned(),
        ];
        for text in texts {
            let mut m = message(&text, &text);
            m.headers.insert(text.clone(), text.clone());
            m.data.insert(text.clone(), text.clone());
            same_as_serde(&Batch {
                version: WIRE_VERSION,
                messages: vec![m],
            });
        }
    }

    #[test]
    fn a_special_byte_at_every_position_of_a_chunk_is_found() {
        for special in ['"', '\\', '\u{0}', '\u{1f}', '\n'] {
            for at in 0..40 {
                let mut text = "x".repeat(40);
                text.replace_range(at..=at, &special.to_string());
                assert!(needs_escape(text.as_bytes()), "{special:?} at {at}");
            }
        }
        assert!(!needs_escape("x".repeat(40).as_bytes()));
    }
}
