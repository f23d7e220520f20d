//! Just enough of RFC 5322 to read what the outbox plugin wrote: unfolded
//! headers, and the HTML part's links and image sources.

use std::collections::BTreeMap;
use std::path::Path;

/// One written message.
pub struct Eml {
    /// The provider message id the plugin returned: the file name.
    pub provider_id: String,
    /// Headers by lower-cased name.
    pub headers: BTreeMap<String, String>,
    /// The raw text (7-bit parts are plain).
    pub raw: String,
}

impl Eml {
    /// Reads the `.eml` file at `path`.
    pub fn read(path: &Path) -> Eml {
        let raw = std::fs::read_to_string(path).unwrap();
        let head = raw
            .split("\r\n\r\n")
            .next()
            .unwrap()
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        let headers = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Eml {
            provider_id: path.file_name().unwrap().to_string_lossy().into_owned(),
            headers,
            raw,
        }
    }

    /// `{run_id}/{recipient_id}`.
    pub fn recipient(&self) -> String {
        let id = &self.headers["x-herald-message-id"];
        id.rsplit_once('/').unwrap().1.to_owned()
    }

    /// The values of `attribute="..."` in the raw message, in order.
    pub fn attributes(&self, attribute: &str) -> Vec<String> {
        let needle = format!("{attribute}=\"");
        self.raw
            .match_indices(&needle)
            .map(|(at, _)| {
                let rest = &self.raw[at + needle.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .collect()
    }

    /// The URL of the `List-Unsubscribe` header.
    pub fn unsubscribe(&self) -> String {
        let value = &self.headers["list-unsubscribe"];
        value
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned()
    }
}

/// Every `.eml` of `dir` whose message id starts with `run_id/`, by recipient id.
pub fn of_run(dir: &Path, run_id: &str) -> BTreeMap<String, Eml> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| Eml::read(&p))
        .filter(|e| e.headers["x-herald-message-id"].starts_with(&format!("{run_id}/")))
        .map(|e| (e.recipient(), e))
        .collect()
}
