//! The `content` block: fields per channel, template files read in, and
//! every template checked against the audience's variables.

use super::Builder;
use crate::definitions::delivery::Content;
use crate::definitions::errors::Pos;
use crate::definitions::fsio::{MAX_FILE_BYTES, read_limited, utf8};
use crate::definitions::model::{ContentValue, Sp};
use crate::definitions::templates::check_template;
use herald_plugin_api::ChannelInfo;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

impl Builder<'_> {
    pub(super) fn content(
        &mut self,
        raw: &Sp<BTreeMap<String, Sp<ContentValue>>>,
        channel: &ChannelInfo,
        known: Option<&BTreeSet<String>>,
    ) -> Option<Content> {
        let rules = ContentRules::for_channel(&channel.name);
        let before = self.problems.len();
        let mut content = Content::default();
        for (key, value) in &raw.value {
            let allowed = rules.allowed.is_empty() || rules.allowed.contains(&key.as_str());
            if !allowed {
                self.problems.at(
                    value.pos,
                    format!(
                        "`content.{key}` is not a field of channel `{}`: use {}",
                        channel.name,
                        rules.allowed.join(", ")
                    ),
                );
                continue;
            }
            let wants_map = rules.maps.contains(&key.as_str());
            match (&value.value, wants_map) {
                (ContentValue::Map(map), true) => {
                    for (k, v) in map {
                        if key == "headers" && !is_header_name(k) {
                            self.problems.at(value.pos, format!("`content.headers.{k}` is not a valid header name: use letters, digits and `-`"));
                        }
                        self.template(&format!("{key}.{k}"), v, Source::Inline(value.pos), known);
                    }
                    let target = if key == "headers" {
                        &mut content.headers
                    } else {
                        &mut content.data
                    };
                    target.extend(map.clone());
                }
                (ContentValue::Text(text), false) => {
                    if let Some(field) = key.strip_suffix("_file") {
                        if raw.value.contains_key(field) {
                            self.problems.at(
                                value.pos,
                                format!(
                                    "`content.{field}` and `content.{key}` are both set: keep one"
                                ),
                            );
                            continue;
                        }
                        if let Some(text) = self.template_file(field, text, value.pos, known) {
                            content.fields.insert(field.to_string(), text);
                        }
                    } else {
                        self.template(key, text, Source::Inline(value.pos), known);
                        content.fields.insert(key.clone(), text.clone());
                    }
                }
                (_, true) => self.problems.at(
                    value.pos,
                    format!("`content.{key}` must be a map of strings"),
                ),
                (_, false) => self.problems.at(
                    value.pos,
                    format!("`content.{key}` must be a string (a template)"),
                ),
            }
        }
        for required in rules.required {
            let present = required.iter().any(|f| raw.value.contains_key(*f));
            if !present {
                let names: Vec<String> = required.iter().map(|f| format!("`{f}`")).collect();
                self.problems.at(
                    raw.pos,
                    format!(
                        "`content` of channel `{}` needs {}",
                        channel.name,
                        names.join(" or ")
                    ),
                );
            }
        }
        (self.problems.len() == before).then_some(content)
    }

    fn template_file(
        &mut self,
        field: &str,
        rel: &str,
        pos: Pos,
        known: Option<&BTreeSet<String>>,
    ) -> Option<String> {
        let path = self
            .resolve(rel)
            .map_err(|e| {
                self.problems
                    .at(pos, format!("`content.{field}_file`: {e}"))
            })
            .ok()?;
        let bytes = read_limited(&path, MAX_FILE_BYTES)
            .map_err(|e| {
                self.problems
                    .at(pos, format!("`content.{field}_file` `{rel}` {e}"))
            })
            .ok()?;
        let text = utf8(bytes)
            .map_err(|(line, column, m)| {
                self.problems
                    .in_file(&path, Pos { line, column }, format!("the template {m}"))
            })
            .ok()?;
        self.template(field, &text, Source::File(&path), known);
        Some(text)
    }

    fn template(
        &mut self,
        name: &str,
        source: &str,
        origin: Source<'_>,
        known: Option<&BTreeSet<String>>,
    ) {
        // Without a readable audience the variables cannot be checked; the
        // audience is already reported, so do not cascade into every variable.
        let empty = BTreeSet::new();
        let skip_variables = known.is_none();
        for p in check_template(name, source, known.unwrap_or(&empty)) {
            if skip_variables && p.variable.is_some() {
                continue;
            }
            match origin {
                Source::Inline(pos) => {
                    let where_ = if source.contains('\n') {
                        format!(" (line {}, column {} of the template)", p.line, p.column)
                    } else {
                        String::new()
                    };
                    self.problems
                        .at(pos, format!("`content.{name}`: {}{where_}", p.message));
                }
                Source::File(path) => self.problems.in_file(
                    path,
                    Pos {
                        line: p.line,
                        column: p.column,
                    },
                    p.message,
                ),
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Inline(Pos),
    File(&'a Path),
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The content fields a channel takes.
struct ContentRules {
    /// Allowed fields; empty means any (a third party's channel, outbox).
    allowed: &'static [&'static str],
    /// Fields that are maps of strings.
    maps: &'static [&'static str],
    /// Each entry: at least one of these fields.
    required: &'static [&'static [&'static str]],
}

impl ContentRules {
    fn for_channel(name: &str) -> Self {
        match name {
            "email" => ContentRules {
                allowed: &[
                    "from",
                    "subject",
                    "html",
                    "html_file",
                    "text",
                    "text_file",
                    "reply_to",
                    "headers",
                ],
                maps: &["headers"],
                required: &[
                    &["from"],
                    &["subject"],
                    &["html", "html_file", "text", "text_file"],
                ],
            },
            // deliveries.md: only `body` is required; an SMS without `from`
            // goes from the plugin's configured sender, a push without
            // `title` shows its body alone.
            "sms" => ContentRules {
                allowed: &["from", "body"],
                maps: &[],
                required: &[&["body"]],
            },
            "push" => ContentRules {
                allowed: &["title", "body", "data", "image"],
                maps: &["data"],
                required: &[&["body"]],
            },
            _ => ContentRules {
                allowed: &[],
                maps: &[],
                required: &[],
            },
        }
    }
}
