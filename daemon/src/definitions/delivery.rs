//! The validated delivery: once a [`Delivery`] exists it is valid. It is
//! also the snapshot a run stores, with template files already inlined.

use super::audience::Audience;
use super::duration::Throttle;
use super::schedule::Schedule;
use herald_plugin_api::ChannelInfo;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The message templates, with `html_file` and `text_file` read into `html` and `text`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Content {
    /// Content fields by name (`from`, `subject`, `html`, `text`, `body`, `title`, `image`, ...).
    pub fields: BTreeMap<String, String>,
    /// Extra e-mail headers.
    pub headers: BTreeMap<String, String>,
    /// Push data.
    pub data: BTreeMap<String, String>,
}

/// Open and click tracking of an e-mail delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracking {
    /// Track opens with a pixel.
    pub opens: bool,
    /// Rewrite links to track clicks.
    pub clicks: bool,
}

/// A valid delivery definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub(crate) id: String,
    pub(crate) label: Option<String>,
    pub(crate) channel: ChannelInfo,
    pub(crate) audience: Audience,
    pub(crate) content: Content,
    pub(crate) schedule: Schedule,
    pub(crate) throttle: Option<Throttle>,
    pub(crate) tracking: Option<Tracking>,
    pub(crate) source: PathBuf,
    #[serde(skip)]
    pub(crate) hash: HashCache,
}

/// The definition hash, computed on first use: rescans, plans and run
/// creation ask for it often, and it costs a JSON encoding and a SHA-256.
/// Not part of the definition: it never makes two deliveries differ.
#[derive(Debug, Clone, Default)]
pub(crate) struct HashCache(std::sync::OnceLock<String>);

impl PartialEq for HashCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Delivery {
    /// The delivery id (`[a-z0-9][a-z0-9_-]{0,63}`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Free text shown to confirmers.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// The channel name.
    pub fn channel(&self) -> &str {
        &self.channel.name
    }

    /// The channel as the catalog described it (address column, normalisation).
    pub fn channel_info(&self) -> &ChannelInfo {
        &self.channel
    }

    /// Who receives it.
    pub fn audience(&self) -> &Audience {
        &self.audience
    }

    /// The templates.
    pub fn content(&self) -> &Content {
        &self.content
    }

    /// When it runs.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The rate limit, if any.
    pub fn throttle(&self) -> Option<Throttle> {
        self.throttle
    }

    /// Tracking: as written for e-mail (both on by default), off for other channels.
    pub fn tracking(&self) -> Tracking {
        match self.tracking {
            Some(t) => t,
            None if self.channel.name == "email" => Tracking {
                opens: true,
                clicks: true,
            },
            None => Tracking {
                opens: false,
                clicks: false,
            },
        }
    }

    /// The file it was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// `sha256:<hex>` of the definition's canonical JSON (the source path
    /// left out, so moving a file does not change it).
    pub fn definition_hash(&self) -> String {
        self.hash.0.get_or_init(|| self.compute_hash()).clone()
    }

    fn compute_hash(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.remove("source");
        }
        let canonical = canonical_json(&value);
        format!(
            "sha256:{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        )
    }
}

/// JSON with object keys sorted at every level, whatever serde_json's features.
fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical_json(v)
                    )
                })
                .collect();
            format!("{{{}}}", body.join(","))
        }
        serde_json::Value::Array(items) => {
            let body: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", body.join(","))
        }
        other => other.to_string(),
    }
}
