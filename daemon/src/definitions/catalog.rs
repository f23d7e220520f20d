//! What the validator needs to know about the world: the channels that
//! exist and where audiences may live.

use herald_plugin_api::{ChannelInfo, Normalisation};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The channels deliveries may name, with their address column and normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelCatalog {
    channels: BTreeMap<String, ChannelInfo>,
    authoritative: bool,
}

impl ChannelCatalog {
    /// The four in-tree channels, for `herald validate` without `--config`:
    /// an unknown channel there is only a warning, since a plugin may serve it.
    pub fn builtin() -> Self {
        let info = |name: &str, column: Option<&str>, normalise, tracking| ChannelInfo {
            name: name.to_string(),
            address_column: column.map(str::to_string),
            normalise,
            tracking,
        };
        ChannelCatalog::from_channels([
            info("email", Some("email"), Normalisation::Email, true),
            info("sms", Some("phone"), Normalisation::E164, false),
            info("push", Some("push_token"), Normalisation::Token, false),
            info("outbox", None, Normalisation::None, false),
        ])
        .non_authoritative()
    }

    /// The channels the loaded plugins serve: any other channel is an error.
    pub fn from_channels(channels: impl IntoIterator<Item = ChannelInfo>) -> Self {
        ChannelCatalog {
            channels: channels.into_iter().map(|c| (c.name.clone(), c)).collect(),
            authoritative: true,
        }
    }

    /// Marks the catalog as a guess: unknown channels become warnings.
    pub fn non_authoritative(mut self) -> Self {
        self.authoritative = false;
        self
    }

    /// Whether an unknown channel is an error (true) or a warning (false).
    pub fn is_authoritative(&self) -> bool {
        self.authoritative
    }

    /// The channel named `name`, if served.
    pub fn get(&self, name: &str) -> Option<&ChannelInfo> {
        self.channels.get(name)
    }

    /// The names of every channel, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.channels.keys().map(String::as_str)
    }
}

/// Everything `load_folder` and `load_file` need besides the files.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationContext {
    /// The deliveries folder; audiences and templates may live inside it.
    pub deliveries_dir: PathBuf,
    /// Other absolute folders audiences and templates may live in.
    pub audience_roots: Vec<PathBuf>,
    /// The channels deliveries may name.
    pub channels: ChannelCatalog,
}

impl ValidationContext {
    /// The folders files may be read from, canonicalised (missing ones dropped).
    pub(crate) fn canonical_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = Vec::new();
        for root in std::iter::once(&self.deliveries_dir).chain(&self.audience_roots) {
            if let Ok(real) = std::fs::canonicalize(root)
                && !roots.contains(&real)
            {
                roots.push(real);
            }
        }
        roots
    }
}
