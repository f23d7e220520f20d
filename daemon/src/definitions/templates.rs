//! Content templates (minijinja): checked when a file loads, rendered per
//! recipient from a run's snapshot. Templates cannot read files (no
//! loader), loops are bounded by fuel, and header values cannot carry CR
//! or LF.

use super::audience::AudienceRow;
use super::delivery::Delivery;
use minijinja::value::{Enumerator, Object};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Variables every template may use besides the recipient's columns.
pub const BUILTIN_VARIABLES: [&str; 3] = ["recipient_id", "delivery_id", "run_id"];

/// Content fields rendered as header values: CR and LF are refused there.
const HEADER_FIELDS: [&str; 3] = ["from", "subject", "reply_to"];

/// Instructions one render may run: plenty for any real message, and a
/// loop of a billion turns stops within milliseconds.
const FUEL: u64 = 2_000_000;

/// Largest rendered field (1 MiB).
const MAX_RENDERED_BYTES: usize = 1 << 20;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(64);
    env.set_auto_escape_callback(|name| {
        if name == "html" {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Jinja's `default`, which also fills an empty value. An audience cell
/// left empty is a value the marketer did not give: deliveries.md's
/// `{{ first_name | default('friend') }}` reads a CSV whose header has
/// `first_name` (the validator demands it), so the fallback can only be
/// meant for the rows where that cell is empty.
fn default_filter(
    state: &minijinja::State,
    value: &Value,
    args: minijinja::value::Rest<Value>,
) -> Result<Value, minijinja::Error> {
    let given = if value.as_str() == Some("") {
        &Value::UNDEFINED
    } else {
        value
    };
    minijinja::filters::default(state, given, args)
}

/// A problem inside one template, at a 1-based line and column of its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateProblem {
    pub line: u64,
    pub column: u64,
    pub message: String,
    /// The unknown variable, for problems about one.
    pub variable: Option<String>,
}

fn line_col(source: &str, offset: usize) -> (u64, u64) {
    let head = &source[..offset.min(source.len())];
    let line = head.matches('\n').count() as u64 + 1;
    let start = head.rfind('\n').map_or(0, |p| p + 1);
    (line, head[start..].chars().count() as u64 + 1)
}

/// Checks the syntax of `source` and that every variable it reads is
/// `known`, built in, or guarded by a `default` filter or a `defined` test.
pub(crate) fn check_template(
    name: &str,
    source: &str,
    known: &BTreeSet<String>,
) -> Vec<TemplateProblem> {
    let mut env = environment();
    if let Err(e) = env.add_template_owned(name.to_string(), source.to_string()) {
        let (line, column) = match e.range() {
            Some(r) => line_col(source, r.start),
            None => (e.line().unwrap_or(1) as u64, 1),
        };
        let detail = e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string);
        return vec![TemplateProblem {
            line,
            column,
            message: format!("template syntax error: {detail}"),
            variable: None,
        }];
    }
    let Ok(template) = env.get_template(name) else {
        return Vec::new();
    };
    // Globals (`range`, `dict`, ...) are functions, not recipient data.
    let globals: BTreeSet<&str> = env.globals().map(|(name, _)| name).collect();
    let mut missing: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| {
            !known.contains(v)
                && !BUILTIN_VARIABLES.contains(&v.as_str())
                && !globals.contains(v.as_str())
        })
        .collect();
    missing.sort();
    let available = || {
        let mut names: Vec<&str> = known.iter().map(String::as_str).collect();
        names.extend(BUILTIN_VARIABLES);
        names.join(", ")
    };
    missing
        .into_iter()
        .filter_map(|var| {
            let offset = first_unguarded_use(source, &var)?;
            let (line, column) = line_col(source, offset.unwrap_or(0));
            Some(TemplateProblem {
                line,
                column,
                message: format!(
                    "variable `{var}` is not a column of the audience (available: {}): add the column, fix the name, or write `{{{{ {var} | default('...') }}}}`",
                    available()
                ),
                variable: Some(var),
            })
        })
        .collect()
}

/// Where `var` is used without a `default` filter: `None` when every use
/// has one, or when any use tests it with `is defined` (the author then
/// guards its absence); `Some(None)` when no use was found lexically
/// (reported at the template start).
fn first_unguarded_use(source: &str, var: &str) -> Option<Option<usize>> {
    let bytes = source.as_bytes();
    let mut uses = Vec::new();
    let mut i = 0;
    while let Some(open) = source[i..].find('{').map(|p| p + i) {
        let kind = bytes.get(open + 1).copied();
        let close = match kind {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            Some(b'#') => "#}",
            _ => {
                i = open + 1;
                continue;
            }
        };
        let body_start = open + 2;
        let body_end = source[body_start..]
            .find(close)
            .map_or(source.len(), |p| p + body_start);
        if kind != Some(b'#') {
            for offset in identifier_uses(&source[body_start..body_end], var) {
                let after = source[body_start + offset + var.len()..body_end].trim_start();
                uses.push((body_start + offset, guard(after)));
            }
        }
        i = body_end;
    }
    if uses.is_empty() {
        return Some(None);
    }
    if uses.iter().any(|(_, g)| *g == Guard::Defined) {
        return None;
    }
    uses.iter()
        .find(|(_, g)| *g == Guard::None)
        .map(|(offset, _)| Some(*offset))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    None,
    Default,
    Defined,
}

fn guard(after: &str) -> Guard {
    let ident_end = |s: &str| {
        s.chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    };
    if let Some(rest) = after.strip_prefix('|') {
        let rest = rest.trim_start();
        for f in ["default", "d"] {
            if let Some(tail) = rest.strip_prefix(f)
                && ident_end(tail)
            {
                return Guard::Default;
            }
        }
        return Guard::None;
    }
    if let Some(rest) = after.strip_prefix("is") {
        let rest = rest.trim_start();
        let rest = rest.strip_prefix("not").map_or(rest, str::trim_start);
        if rest.starts_with("defined") || rest.starts_with("undefined") {
            return Guard::Defined;
        }
    }
    Guard::None
}

/// Byte offsets of `var` used as a top-level name in a tag body, skipping
/// string literals and attribute accesses (`x.var`).
fn identifier_uses(body: &str, var: &str) -> Vec<usize> {
    let bytes = body.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::new();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        if b == b'"' || b == b'\'' {
            quote = Some(b);
            i += 1;
            continue;
        }
        if is_ident(b) {
            let start = i;
            while i < bytes.len() && is_ident(bytes[i]) {
                i += 1;
            }
            let preceded_by_dot = body[..start].trim_end().ends_with('.');
            if &body[start..i] == var && !preceded_by_dot {
                out.push(start);
            }
            continue;
        }
        i += 1;
    }
    out
}

/// A problem while rendering one recipient's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// The template failed for this recipient (undefined variable, bad filter argument, ...).
    #[error("template `{field}` failed: {message}")]
    Template {
        /// The content field (`subject`, `headers.X-Tag`, `data.url`).
        field: String,
        /// minijinja's explanation.
        message: String,
    },
    /// The template ran out of fuel: it loops too long.
    #[error("template `{field}` runs too long (endless or huge loop): simplify it")]
    TooLong {
        /// The content field.
        field: String,
    },
    /// The rendered text is larger than allowed.
    #[error("template `{field}` renders more than {MAX_RENDERED_BYTES} bytes")]
    TooLarge {
        /// The content field.
        field: String,
    },
    /// A header value rendered with CR or LF (header injection).
    #[error(
        "`{field}` renders with a line break, which is refused in a header value; check the recipient's data"
    )]
    HeaderInjection {
        /// The content field or header name.
        field: String,
    },
}

/// Which part of the message a template fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Content,
    Header,
    Data,
}

/// Renders a delivery's content for one recipient at a time.
#[derive(Debug)]
pub struct Renderer {
    env: Environment<'static>,
    parts: Vec<(String, Part, String)>,
    delivery_id: Value,
}

/// One recipient's rendered message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    /// Content fields (`subject`, `html`, `text`, `body`, ...).
    pub content: BTreeMap<String, String>,
    /// Extra e-mail headers.
    pub headers: BTreeMap<String, String>,
    /// Push data.
    pub data: BTreeMap<String, String>,
}

impl Renderer {
    /// Compiles every template of `delivery` once.
    pub fn new(delivery: &Delivery) -> Result<Renderer, RenderError> {
        let mut env = environment();
        let content = delivery.content();
        let mut parts = Vec::new();
        let named = content
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Part::Content, k.clone(), v))
            .chain(
                content
                    .headers
                    .iter()
                    .map(|(k, v)| (format!("headers.{k}"), Part::Header, k.clone(), v)),
            )
            .chain(
                content
                    .data
                    .iter()
                    .map(|(k, v)| (format!("data.{k}"), Part::Data, k.clone(), v)),
            );
        for (template, part, key, source) in named {
            env.add_template_owned(template.clone(), source.clone())
                .map_err(|e| RenderError::Template {
                    field: template.clone(),
                    message: e.to_string(),
                })?;
            parts.push((template, part, key));
        }
        Ok(Renderer {
            env,
            parts,
            delivery_id: Value::from(delivery.id()),
        })
    }

    /// Renders the message of `row` in run `run_id`.
    pub fn render(&self, row: &AudienceRow, run_id: &str) -> Result<Rendered, RenderError> {
        self.render_recipient(&row.id, &Arc::new(row.fields.clone()), run_id)
    }

    /// Renders every part for one recipient given by id and fields, so a
    /// frozen recipient is rendered without copying it into a row first.
    pub fn render_recipient(
        &self,
        recipient_id: &str,
        fields: &Arc<BTreeMap<String, String>>,
        run_id: &str,
    ) -> Result<Rendered, RenderError> {
        let ctx = Value::from_object(RecipientContext {
            fields: fields.clone(),
            recipient_id: Value::from(recipient_id),
            delivery_id: self.delivery_id.clone(),
            run_id: Value::from(run_id),
        });
        let mut out = Rendered::default();
        for (template, part, key) in &self.parts {
            let text = self
                .env
                .get_template(template)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| match e.kind() {
                    ErrorKind::OutOfFuel => RenderError::TooLong {
                        field: template.clone(),
                    },
                    _ => RenderError::Template {
                        field: template.clone(),
                        message: e.to_string(),
                    },
                })?;
            if text.len() > MAX_RENDERED_BYTES {
                return Err(RenderError::TooLarge {
                    field: template.clone(),
                });
            }
            let is_header = *part == Part::Header
                || (*part == Part::Content && HEADER_FIELDS.contains(&key.as_str()));
            if is_header && text.contains(['\r', '\n']) {
                return Err(RenderError::HeaderInjection {
                    field: template.clone(),
                });
            }
            let target = match part {
                Part::Content => &mut out.content,
                Part::Header => &mut out.headers,
                Part::Data => &mut out.data,
            };
            target.insert(key.clone(), text);
        }
        Ok(out)
    }
}

/// One recipient's template variables: the row's columns and the
/// built-ins, looked up when a template uses them instead of copied into
/// a map for every message (that copy was a sixth of P1's daemon time).
#[derive(Debug)]
struct RecipientContext {
    fields: Arc<BTreeMap<String, String>>,
    recipient_id: Value,
    delivery_id: Value,
    run_id: Value,
}

impl Object for RecipientContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        // The built-ins win over columns of the same name.
        match key.as_str()? {
            "recipient_id" => Some(self.recipient_id.clone()),
            "delivery_id" => Some(self.delivery_id.clone()),
            "run_id" => Some(self.run_id.clone()),
            column => self.fields.get(column).map(|v| Value::from(v.as_str())),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: BTreeSet<&str> = self.fields.keys().map(String::as_str).collect();
        keys.extend(BUILTIN_VARIABLES);
        let keys: Vec<Value> = keys.into_iter().map(Value::from).collect();
        Enumerator::Iter(Box::new(keys.into_iter()))
    }
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
