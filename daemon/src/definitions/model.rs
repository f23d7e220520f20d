//! The delivery file as written: serde types that keep the position of
//! every node, and derive the JSON Schema that `herald schema` prints.
//! Nothing here is checked beyond its YAML shape; [`super::delivery`]
//! turns it into the validated domain types.
//!
//! Values with a closed set of spellings (aggregation, catch-up) are read
//! as strings so that a wrong one is reported together with every other
//! problem of the file instead of aborting the parse; the schema still
//! lists the allowed values.

use super::errors::Pos;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A value with the position of its YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Sp<T> {
    /// The value.
    pub value: T,
    /// Where the node is referenced in the file.
    pub pos: Pos,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Sp {
            value: s.value,
            pos: Pos {
                line: s.referenced.line(),
                column: s.referenced.column(),
            },
        })
    }
}

// The position is invisible in the file format, so the schema is T's own.
impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}

/// One delivery file: what to send, to whom, through which channel, when.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Herald delivery")]
pub struct RawDelivery {
    /// `[a-z0-9][a-z0-9_-]{0,63}`, unique across the deliveries folder; default: the file name without extension.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$"))]
    pub id: Option<Sp<String>>,
    /// Free text shown to confirmers.
    pub label: Option<Sp<String>>,
    /// The channel a loaded plugin serves: `email`, `sms`, `push`, `outbox`, or a third party's.
    pub channel: Sp<String>,
    /// Who receives it: a CSV file or an inline list.
    pub audience: Sp<RawAudience>,
    /// The message; every string is a template. Fields depend on the channel.
    pub content: Sp<BTreeMap<String, Sp<ContentValue>>>,
    /// When to send; absent: once, as soon as loaded.
    pub schedule: Option<Sp<RawSchedule>>,
    /// Rate limit across all daemon instances: `N/s`, `N/min` or `N/h`.
    #[schemars(regex(pattern = r"^[0-9]+/(s|min|h)$"))]
    pub throttle: Option<Sp<String>>,
    /// Open and click tracking (email only).
    pub tracking: Option<Sp<RawTracking>>,
}

/// The audience: exactly one of `file` and `recipients`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Audience")]
pub struct RawAudience {
    /// A UTF-8 CSV with a header row holding `id` and the channel's address column, relative to the delivery file.
    pub file: Option<Sp<String>>,
    /// An inline list of recipients, each a map with an `id`.
    pub recipients: Option<Sp<Vec<Sp<RawRecipient>>>>,
}

/// One inline recipient: a map of cells that must hold `id`.
pub type RawRecipient = BTreeMap<String, Sp<Cell>>;

/// A cell of an inline recipient, kept as written: `007` stays `007` and
/// `+33612345678` keeps its `+`; `~` (null) is an empty cell.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Cell(pub Option<String>);

impl Cell {
    /// The value as the text a template sees.
    pub fn to_text(&self) -> String {
        self.0.clone().unwrap_or_default()
    }
}

impl JsonSchema for Cell {
    fn schema_name() -> Cow<'static, str> {
        "Cell".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        schemars::json_schema!({
            "description": "A recipient's value: text, number or boolean, kept as written.",
            "type": ["string", "number", "boolean", "null"]
        })
    }
}

/// A content field: a template string, or a map of template strings (`headers`, `data`).
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum ContentValue {
    /// A template string.
    Text(String),
    /// A map of template strings (email `headers`, push `data`).
    Map(BTreeMap<String, String>),
}

// By hand rather than untagged: a number or boolean becomes its text, and
// anything else gets a message that says what a content field may be.
impl<'de> Deserialize<'de> for ContentValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ContentValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a template string, or a map of template strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ContentValue, E> {
                Ok(ContentValue::Text(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<ContentValue, E> {
                Ok(ContentValue::Text(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ContentValue, E> {
                Ok(ContentValue::Text(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ContentValue, E> {
                Ok(ContentValue::Text(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ContentValue, E> {
                Ok(ContentValue::Text(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ContentValue, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    out.insert(k, v);
                }
                Ok(ContentValue::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// When to send.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Schedule")]
pub struct RawSchedule {
    /// One run at this RFC 3339 instant with offset (`2026-12-01T09:00:00+01:00`).
    pub at: Option<Sp<String>>,
    /// Recurring: classic cron, 5 fields (or 6 with seconds first); day-of-month OR day-of-week as in Vixie cron.
    pub cron: Option<Sp<String>>,
    /// IANA zone for `cron` and for `starts`/`ends` given as dates; default UTC.
    pub timezone: Option<Sp<String>>,
    /// Report the runs of this window together; only with `cron`.
    #[schemars(with = "Option<AggregationName>")]
    pub aggregation: Option<Sp<String>>,
    /// Every run waits in `pending` for a confirmer.
    pub confirm: Option<Sp<bool>>,
    /// First occurrence allowed (inclusive): a date (whole day in the zone) or an RFC 3339 instant.
    pub starts: Option<Sp<String>>,
    /// Last occurrence allowed (inclusive): a date (whole day in the zone) or an RFC 3339 instant.
    pub ends: Option<Sp<String>>,
    /// What to do with occurrences missed while no daemon ran; default `latest`.
    #[schemars(with = "Option<CatchUpName>")]
    pub catch_up: Option<Sp<String>>,
    /// Prepare (and ask for confirmation) this long before each occurrence: `500ms`, `10s`, `5m`, `1h`, `90d`.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub prepare_ahead: Option<Sp<String>>,
    /// A pending run expires this long after its instant; default: the next occurrence, or 24h for one-shot.
    #[schemars(regex(pattern = r"^([0-9]+(ms|s|m|h|d))+$"))]
    pub confirm_deadline: Option<Sp<String>>,
}

/// Aggregation windows (schema only).
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum AggregationName {
    /// Each run stands alone.
    None,
    /// One period per day.
    Day,
    /// One period per ISO week.
    Week,
    /// One period per month.
    Month,
}

/// Catch-up policies (schema only).
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum CatchUpName {
    /// Run only the most recent missed occurrence.
    Latest,
    /// Run none of the missed occurrences.
    Skip,
}

/// Open and click tracking (email only).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tracking")]
pub struct RawTracking {
    /// Track opens with a pixel; default true.
    pub opens: Option<bool>,
    /// Rewrite links to track clicks; default true.
    pub clicks: Option<bool>,
}
