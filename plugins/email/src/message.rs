//! Turns a rendered [`herald_plugin_api::Message`] into a MIME message.

use herald_plugin_api::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};

/// Why a message cannot be built; each maps onto a result for that message only.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The recipient address is not an e-mail address: the address is at fault.
    #[error("the address `{0}` is not a valid e-mail address")]
    BadAddress(String),
    /// The content is unusable: the delivery is at fault, not the address.
    #[error("{0}")]
    BadContent(String),
}

/// Headers the plugin writes itself; a custom header may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "sender",
    "subject",
    "reply-to",
    "message-id",
    "date",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
];

/// Builds the MIME message: multipart/alternative when both `text` and
/// `html` are given, a single part otherwise.
pub fn build(message: &Message) -> Result<lettre::Message, BuildError> {
    let content = |field: &str| message.content.get(field).map(String::as_str);
    for (field, value) in message
        .content
        .iter()
        .filter(|(k, _)| ["from", "subject", "reply_to"].contains(&k.as_str()))
    {
        refuse_line_breaks(&format!("content field `{field}`"), value)?;
    }
    for (name, value) in &message.headers {
        refuse_line_breaks(&format!("header name `{}`", name.escape_debug()), name)?;
        refuse_line_breaks(&format!("header `{name}`"), value)?;
    }
    let to: Mailbox = message
        .address
        .parse()
        .map_err(|_| BuildError::BadAddress(message.address.clone()))?;
    let from_text = content("from").ok_or_else(|| {
        bad("the content field `from` is missing; set `content.from` in the delivery")
    })?;
    let from: Mailbox = from_text
        .parse()
        .map_err(|e| bad(format!("the content field `from` (`{from_text}`) is not a mailbox ({e}); write it like `Shop <news@shop.example>`")))?;
    let subject = content("subject").ok_or_else(|| {
        bad("the content field `subject` is missing; set `content.subject` in the delivery")
    })?;
    let mut builder = lettre::Message::builder()
        .message_id(Some(message_id_header(
            &message.message_id,
            from.email.domain(),
        )))
        .from(from)
        .to(to)
        .subject(subject);
    if let Some(reply_to) = content("reply_to") {
        let mailbox = reply_to.parse().map_err(|e| {
            bad(format!(
                "the content field `reply_to` (`{reply_to}`) is not a mailbox ({e})"
            ))
        })?;
        builder = builder.reply_to(mailbox);
    }
    for (name, value) in &message.headers {
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(bad(format!(
                "the header `{name}` is written by the email plugin and may not be set in `headers`"
            )));
        }
        let header_name = HeaderName::new_from_ascii(name.clone()).map_err(|_| {
            bad(format!(
                "the header name `{name}` is not printable ASCII without `:` or spaces"
            ))
        })?;
        builder = builder.raw_header(HeaderValue::new(header_name, value.clone()));
    }
    let built = match (content("text"), content("html")) {
        (Some(text), Some(html)) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        )),
        (Some(text), None) => builder.singlepart(SinglePart::plain(text.to_owned())),
        (None, Some(html)) => builder.singlepart(SinglePart::html(html.to_owned())),
        (None, None) => {
            return Err(bad(
                "the content has neither `text` nor `html`; give at least one",
            ));
        }
    };
    built.map_err(|e| bad(format!("cannot build the message: {e}")))
}

fn bad(message: impl Into<String>) -> BuildError {
    BuildError::BadContent(message.into())
}

/// A CR or LF in a header would let content start new headers or the body.
fn refuse_line_breaks(what: &str, value: &str) -> Result<(), BuildError> {
    if value.contains(['\r', '\n']) {
        return Err(bad(format!(
            "{what} holds a line break (CR or LF), which could inject headers; the message was not sent"
        )));
    }
    Ok(())
}

/// `<{message_id}@{domain}>`, the same on every retry so receivers can
/// deduplicate; characters not allowed in a Message-ID's left part are
/// written `=XX` (and `=` itself too, so distinct ids stay distinct).
pub fn message_id_header(message_id: &str, domain: &str) -> String {
    let mut left = String::with_capacity(message_id.len());
    for byte in message_id.bytes() {
        let allowed = byte.is_ascii_alphanumeric() || b"!#$%&'*+-/?^_`{|}~.".contains(&byte);
        if allowed {
            left.push(byte as char);
        } else {
            left.push_str(&format!("={byte:02X}"));
        }
    }
    // A dot may not start, end or double in a dot-atom.
    let left = left.trim_matches('.').replace("..", ".=2E");
    format!("<{left}@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn message(content: &[(&str, &str)]) -> Message {
        Message {
            message_id: "run-7/c1".into(),
            run_id: "run-7".into(),
            recipient_id: "c1".into(),
            channel: "email".into(),
            address: "ana@example.org".into(),
            content: content
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: BTreeMap::new(),
            data: BTreeMap::new(),
        }
    }

    fn formatted(message: &Message) -> String {
        String::from_utf8(build(message).unwrap().formatted()).unwrap()
    }

    #[test]
    fn the_message_id_is_derived_from_the_stable_id() {
        assert_eq!(
            message_id_header("run-7/c1", "shop.example"),
            "<run-7/c1@shop.example>"
        );
        assert_eq!(
            message_id_header("a b=c", "x.example"),
            "<a=20b=3Dc@x.example>"
        );
        let text = formatted(&message(&[
            ("from", "Shop <news@shop.example>"),
            ("subject", "Hi"),
            ("text", "t"),
        ]));
        assert!(
            text.contains("Message-ID: <run-7/c1@shop.example>"),
            "{text}"
        );
    }

    #[test]
    fn text_alone_is_a_single_plain_part() {
        let text = formatted(&message(&[
            ("from", "news@shop.example"),
            ("subject", "Hi"),
            ("text", "hello"),
        ]));
        assert!(text.contains("Content-Type: text/plain"), "{text}");
        assert!(!text.contains("multipart"), "{text}");
    }

    #[test]
    fn a_line_break_in_a_header_value_refuses_the_message() {
        let mut m = message(&[
            ("from", "news@shop.example"),
            ("subject", "Hi"),
            ("text", "t"),
        ]);
        m.headers
            .insert("X-Campaign".into(), "a\r\nBcc: victim@example.org".into());
        assert!(matches!(build(&m), Err(BuildError::BadContent(e)) if e.contains("line break")));
        let m = message(&[
            ("from", "news@shop.example"),
            ("subject", "Hi\nBcc: x@y.z"),
            ("text", "t"),
        ]);
        assert!(matches!(build(&m), Err(BuildError::BadContent(e)) if e.contains("`subject`")));
    }

    #[test]
    fn a_custom_header_may_not_replace_the_sender() {
        let mut m = message(&[
            ("from", "news@shop.example"),
            ("subject", "Hi"),
            ("text", "t"),
        ]);
        m.headers.insert("from".into(), "evil@example.org".into());
        assert!(matches!(build(&m), Err(BuildError::BadContent(e)) if e.contains("`from`")));
    }

    #[test]
    fn missing_from_subject_or_body_names_the_field() {
        let cases = [
            (message(&[("subject", "Hi"), ("text", "t")]), "`from`"),
            (
                message(&[("from", "a@b.example"), ("text", "t")]),
                "`subject`",
            ),
            (
                message(&[("from", "a@b.example"), ("subject", "Hi")]),
                "`text` nor `html`",
            ),
        ];
        for (m, field) in cases {
            assert!(
                matches!(build(&m), Err(BuildError::BadContent(e)) if e.contains(field)),
                "{field}"
            );
        }
    }

    #[test]
    fn an_unparsable_address_is_the_address_fault() {
        let mut m = message(&[("from", "a@b.example"), ("subject", "Hi"), ("text", "t")]);
        m.address = "not an address".into();
        assert!(matches!(build(&m), Err(BuildError::BadAddress(_))));
    }
}
