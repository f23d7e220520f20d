//! An RFC 5322 message from a rendered e-mail: the headers a mail client
//! expects, `multipart/alternative` when there are both text and HTML, and
//! bodies that are 7-bit clean (base64 when they are not plain ASCII).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use herald_plugin_api::Message;

/// Bytes per encoded word: 39 bytes make 52 base64 characters, so with
/// `=?UTF-8?B?`, `?=` and the longest header name here a line stays under 78.
const MAX_WORD_BYTES: usize = 39;

/// Builds the `.eml` bytes for `message`, with `default_from` when the
/// content has no `from`, `now` as `Date`, and `message_key` (the file stem)
/// inside `Message-ID`.
pub fn render(
    message: &Message,
    default_from: &str,
    now: DateTime<Utc>,
    message_key: &str,
) -> Vec<u8> {
    let content = &message.content;
    let mut head = String::new();
    let from = content.get("from").map_or(default_from, String::as_str);
    header(&mut head, "From", &mailbox(from));
    header(&mut head, "To", &mailbox(&message.address));
    if let Some(reply_to) = content.get("reply_to") {
        header(&mut head, "Reply-To", &mailbox(reply_to));
    }
    header(
        &mut head,
        "Subject",
        &text(content.get("subject").map_or("", String::as_str)),
    );
    header(&mut head, "Date", &now.to_rfc2822());
    header(
        &mut head,
        "Message-ID",
        &format!("<{message_key}@herald.outbox>"),
    );
    header(&mut head, "X-Herald-Message-Id", &text(&message.message_id));
    for (name, value) in &message.headers {
        header(&mut head, name, &text(value));
    }
    header(&mut head, "MIME-Version", "1.0");
    let html = content.get("html");
    let plain = content.get("text").or_else(|| content.get("body"));
    match (plain, html) {
        (Some(plain), Some(html)) => {
            let parts = [part("text/plain", plain), part("text/html", html)];
            let boundary = boundary(message_key, &parts);
            header(
                &mut head,
                "Content-Type",
                &format!("multipart/alternative; boundary=\"{boundary}\""),
            );
            head.push_str("\r\n");
            for part in parts {
                head.push_str(&format!("--{boundary}\r\n{part}\r\n"));
            }
            head.push_str(&format!("--{boundary}--\r\n"));
        }
        (plain, html) => {
            let single = match (plain, html) {
                (_, Some(html)) => part("text/html", html),
                (plain, None) => part("text/plain", plain.map_or("", String::as_str)),
            };
            head.push_str(&single);
        }
    }
    head.into_bytes()
}

/// Appends `Name: value`. Values come from [`text`] or [`mailbox`] (which
/// drop CR and LF, so no value can forge a header) or are built here.
fn header(out: &mut String, name: &str, value: &str) {
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != ':')
        .collect();
    out.push_str(&format!("{name}: {value}\r\n"));
}

/// An unstructured header value: as is when it is short ASCII, else RFC 2047
/// encoded words, folded so no line passes 78 characters.
fn text(value: &str) -> String {
    let value = value.replace(['\r', '\n'], " ");
    if value.is_ascii() && value.len() <= 900 {
        return value;
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > MAX_WORD_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", STANDARD.encode(w)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// A mailbox (`Name <addr>` or `addr`): only the display name is encoded,
/// since an encoded word may not stand for an address.
fn mailbox(value: &str) -> String {
    let value = value.trim();
    match value.rfind('<') {
        Some(open) if !value.is_ascii() => {
            let name = value[..open].trim().trim_matches('"');
            format!("{} {}", text(name), &value[open..])
        }
        _ => value.replace(['\r', '\n'], " "),
    }
}

/// One body part: its headers, a blank line, and the body.
fn part(kind: &str, body: &str) -> String {
    let plain = body.is_ascii() && body.lines().all(|line| line.len() <= 998);
    if plain {
        let body = body.replace("\r\n", "\n").replace('\n', "\r\n");
        format!(
            "Content-Type: {kind}; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n{body}\r\n"
        )
    } else {
        let encoded = STANDARD.encode(body.as_bytes());
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|line| std::str::from_utf8(line).unwrap_or_default())
            .collect();
        format!(
            "Content-Type: {kind}; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        )
    }
}

/// A boundary that none of the parts contains (`=_` never occurs in base64,
/// and a 7-bit part that happens to hold it gets a longer boundary).
fn boundary(message_key: &str, parts: &[String]) -> String {
    let mut boundary = format!("=_herald_{}", message_key.len());
    let mut round = 0;
    while parts.iter().any(|p| p.contains(&boundary)) {
        round += 1;
        boundary = format!("=_herald_{}_{round}", message_key.len());
    }
    boundary
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn message(content: &[(&str, &str)]) -> Message {
        Message {
            message_id: "weekly@2026-11-27/ana".to_owned(),
            run_id: "weekly@2026-11-27".to_owned(),
            recipient_id: "ana".to_owned(),
            channel: "email".to_owned(),
            address: "ana@example.com".to_owned(),
            content: content
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            headers: [(
                "List-Unsubscribe".to_owned(),
                "<https://u.example/x>".to_owned(),
            )]
            .into(),
            data: Default::default(),
        }
    }

    fn eml(content: &[(&str, &str)]) -> String {
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap();
        String::from_utf8(render(&message(content), "default@localhost", now, "key")).unwrap()
    }

    /// The header block, unfolded, as (name, value) pairs.
    fn headers(eml: &str) -> Vec<(String, String)> {
        let head = eml.split("\r\n\r\n").next().unwrap().replace("\r\n ", " ");
        head.lines()
            .map(|l| {
                let (name, value) = l.split_once(": ").unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect()
    }

    fn value(eml: &str, name: &str) -> String {
        headers(eml)
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {name}"))
    }

    #[test]
    fn text_only_mail_has_the_rfc_5322_headers_and_a_plain_body() {
        let eml = eml(&[
            ("from", "Shop <news@shop.example>"),
            ("subject", "Your week"),
            ("text", "Hello\nAna"),
        ]);
        assert_eq!(value(&eml, "From"), "Shop <news@shop.example>");
        assert_eq!(value(&eml, "To"), "ana@example.com");
        assert_eq!(value(&eml, "Subject"), "Your week");
        assert_eq!(value(&eml, "Date"), "Fri, 27 Nov 2026 09:00:00 +0000");
        assert_eq!(value(&eml, "Message-ID"), "<key@herald.outbox>");
        assert_eq!(value(&eml, "List-Unsubscribe"), "<https://u.example/x>");
        assert_eq!(value(&eml, "Content-Type"), "text/plain; charset=utf-8");
        assert!(eml.ends_with("\r\n\r\nHello\r\nAna\r\n"), "{eml:?}");
    }

    #[test]
    fn html_and_text_become_multipart_alternative_in_that_order() {
        let eml = eml(&[
            ("subject", "s"),
            ("text", "plain words"),
            ("html", "<p>rich</p>"),
        ]);
        let kind = value(&eml, "Content-Type");
        let boundary = kind
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"')
            .to_owned();
        assert!(kind.starts_with("multipart/alternative;"));
        let parts: Vec<&str> = eml.split(&format!("--{boundary}")).collect();
        assert_eq!(parts.len(), 4, "{eml}");
        assert!(parts[1].contains("text/plain") && parts[1].contains("plain words"));
        assert!(parts[2].contains("text/html") && parts[2].contains("<p>rich</p>"));
        assert!(parts[3].starts_with("--"));
        assert_eq!(value(&eml, "From"), "default@localhost");
    }

    #[test]
    fn non_ascii_subject_and_name_are_encoded_words_and_body_is_base64() {
        let eml = eml(&[
            ("from", "Café Ünï <news@shop.example>"),
            ("subject", "Ça va, Ana ?"),
            ("text", "Déjà vu"),
        ]);
        assert!(eml.is_ascii(), "{eml}");
        let subject = value(&eml, "Subject");
        assert!(subject.starts_with("=?UTF-8?B?"), "{subject}");
        let encoded = subject
            .trim_start_matches("=?UTF-8?B?")
            .trim_end_matches("?=");
        assert_eq!(STANDARD.decode(encoded).unwrap(), "Ça va, Ana ?".as_bytes());
        assert!(value(&eml, "From").ends_with(" <news@shop.example>"));
        assert_eq!(value(&eml, "Content-Transfer-Encoding"), "base64");
        let body = eml.split("\r\n\r\n").nth(1).unwrap().trim();
        assert_eq!(STANDARD.decode(body).unwrap(), "Déjà vu".as_bytes());
    }

    #[test]
    fn line_breaks_in_a_value_cannot_add_a_header() {
        let eml = eml(&[("subject", "hi\r\nBcc: evil@example.com"), ("text", "x")]);
        assert!(headers(&eml).iter().all(|(name, _)| name != "Bcc"), "{eml}");
    }

    #[test]
    fn long_subject_is_folded_under_78_columns() {
        let eml = eml(&[("subject", &"é".repeat(200)), ("text", "x")]);
        let head = eml.split("\r\n\r\n").next().unwrap();
        assert!(head.lines().all(|l| l.len() <= 78), "{head}");
    }
}
