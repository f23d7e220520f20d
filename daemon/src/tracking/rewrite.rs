//! The HTML part of a tracked e-mail: every `http(s)` link of `<a>` and
//! `<area>` becomes a signed click link, and an open pixel goes at the end
//! of the body. A real HTML rewriter (lol_html) does it, so links inside
//! comments, scripts or attribute text are never touched and the rest of
//! the markup is kept byte for byte.

use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, element, end, rewrite_str};
use std::cell::Cell;

/// Why the HTML part could not be rewritten.
#[derive(Debug, thiserror::Error)]
#[error("the HTML part cannot be rewritten for tracking: {0}")]
pub struct RewriteError(String);

/// What to do to the HTML part.
pub struct Rewrite<'a> {
    /// The click link of an original URL, or `None` to leave links alone.
    pub click: Option<&'a dyn Fn(&str) -> String>,
    /// The open pixel's URL, or `None` for no pixel.
    pub pixel: Option<&'a str>,
}

/// `html` with its links and pixel as `rewrite` asks.
pub fn rewrite_html(html: &str, rewrite: &Rewrite<'_>) -> Result<String, RewriteError> {
    let body_seen = Cell::new(false);
    let pixel_tag = rewrite.pixel.map(|url| {
        format!(
            r#"<img src="{}" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px">"#,
            escape_attribute(url)
        )
    });
    let mut settings = RewriteStrSettings::new();
    if let Some(click) = rewrite.click {
        let link = |el: &mut lol_html::html_content::Element<'_, '_>| {
            if let Some(href) = el.get_attribute("href") {
                let url = decode_entities(href.trim());
                if is_web_url(&url) {
                    el.set_attribute("href", &escape_attribute(&click(&url)))?;
                }
            }
            Ok(())
        };
        settings = settings
            .append_element_content_handler(element!("a[href]", link))
            .append_element_content_handler(element!("area[href]", link));
    }
    if let Some(tag) = &pixel_tag {
        settings = settings
            .append_element_content_handler(element!("body", |el| {
                body_seen.set(true);
                el.append(tag, ContentType::Html);
                Ok(())
            }))
            .append_document_content_handler(end!(|end| {
                // A fragment without <body>: the pixel goes at the very end.
                if !body_seen.get() {
                    end.append(tag, ContentType::Html);
                }
                Ok(())
            }));
    }
    rewrite_str(html, settings).map_err(|e| RewriteError(e.to_string()))
}

/// Whether a link is one to track: `http:` or `https:`, any case.
fn is_web_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// An attribute value as the browser reads it: character references
/// decoded (`&amp;` in a query string is the common case).
fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|end| *end <= 10).and_then(|end| {
            let name = &rest[1..end];
            let c = match name {
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .map(|hex| u32::from_str_radix(hex, 16))
                    .or_else(|| name.strip_prefix('#').map(str::parse::<u32>))
                    .and_then(Result::ok)
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A value safe inside a double-quoted attribute.
fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(url: &str) -> String {
        format!("https://t.example/t/c/[{url}]")
    }

    fn both(html: &str) -> String {
        rewrite_html(
            html,
            &Rewrite {
                click: Some(&click),
                pixel: Some("https://t.example/t/o/P"),
            },
        )
        .unwrap()
    }

    #[test]
    fn web_links_are_rewritten_and_others_left_alone() {
        let html = r##"<p><a href="https://shop.example/a">A</a> <a href='HTTP://x.example/'>B</a> <a href="mailto:x@y">C</a> <a href="#top">D</a> <a>E</a></p>"##;
        let out = both(html);
        assert!(
            out.contains(r#"href="https://t.example/t/c/[https://shop.example/a]""#),
            "{out}"
        );
        assert!(
            out.contains(r#"href="https://t.example/t/c/[HTTP://x.example/]""#),
            "{out}"
        );
        assert!(out.contains(r#"href="mailto:x@y""#), "{out}");
        assert!(out.contains(r##"href="#top""##), "{out}");
        assert!(out.contains("<a>E</a>"), "{out}");
    }

    #[test]
    fn entities_in_a_link_are_decoded_before_signing() {
        let out = both(r#"<a href="https://s.example/?a=1&amp;b=2&#38;c=3">x</a>"#);
        assert!(
            out.contains("[https://s.example/?a=1&amp;b=2&amp;c=3]"),
            "{out}"
        );
    }

    #[test]
    fn links_in_comments_scripts_and_text_are_not_touched() {
        let html = r#"<!-- <a href="https://c.example/">x</a> --><script>var s = '<a href="https://s.example/">';</script><p>see https://t.example/</p>"#;
        let out = both(html);
        assert!(out.starts_with(r#"<!-- <a href="https://c.example/">x</a> --><script>var s = '<a href="https://s.example/">';</script><p>see https://t.example/</p>"#), "{out}");
    }

    #[test]
    fn the_pixel_goes_at_the_end_of_the_body() {
        let out = both("<html><body><p>Hi</p></body></html>");
        assert!(
            out.ends_with(r#"<p>Hi</p><img src="https://t.example/t/o/P" width="1" height="1" alt="" style="display:block;border:0;width:1px;height:1px"></body></html>"#),
            "{out}"
        );
        assert_eq!(out.matches("/t/o/").count(), 1);
    }

    #[test]
    fn a_fragment_without_body_gets_the_pixel_at_its_end() {
        let out = both("<p>Hi</p>");
        assert!(
            out.starts_with("<p>Hi</p><img src=\"https://t.example/t/o/P\""),
            "{out}"
        );
        assert_eq!(out.matches("/t/o/").count(), 1);
    }

    #[test]
    fn tracking_turned_off_leaves_the_html_as_it_was() {
        let html = r#"<body><a href="https://shop.example/">x</a></body>"#;
        let out = rewrite_html(
            html,
            &Rewrite {
                click: None,
                pixel: None,
            },
        )
        .unwrap();
        assert_eq!(out, html);
    }

    #[test]
    fn opens_only_adds_the_pixel_and_keeps_the_links() {
        let html = r#"<body><a href="https://shop.example/">x</a></body>"#;
        let out = rewrite_html(
            html,
            &Rewrite {
                click: None,
                pixel: Some("https://t.example/t/o/P"),
            },
        )
        .unwrap();
        assert!(out.contains(r#"href="https://shop.example/""#), "{out}");
        assert!(out.contains("/t/o/P"), "{out}");
    }
}
