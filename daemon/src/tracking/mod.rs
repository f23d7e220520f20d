//! Open, click and unsubscribe tracking of e-mails (http-api.md, "Tracking
//! links"; kpis.md).
//!
//! - [`token`]: the signed tokens of the links.
//! - [`rewrite`]: the HTML part's links and open pixel (lol_html).
//! - [`buffer`]: tracked events kept in memory and flushed on the KPI timer.
//! - [`routes`]: `/t/o`, `/t/c` and `/u`, the only routes of the public listener.
//! - [`timers`]: the flush and the periodic recount of open and click figures.
//!
//! [`Tracking`] ties them together: the engine decorates each e-mail with
//! it before handing the message to the plugin, and the routes verify the
//! tokens and buffer what they record.

pub mod buffer;
pub mod rewrite;
pub mod routes;
pub mod timers;
pub mod token;

pub use routes::public_routes;

use crate::config::Config;
use crate::definitions::Tracking as TrackingChoice;
use crate::store::{SharedStore, StoreError};
use buffer::Buffer;
use herald_plugin_api::Message;
use rewrite::{Rewrite, rewrite_html};
use std::sync::OnceLock;
use token::{Claim, LinkKind, Signer};
use tracing::warn;

/// Name of the link key in the store's shared secrets.
const SECRET_NAME: &str = "tracking_links";

/// Why the link key could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `http.secret_file` could not be read or is empty.
    #[error(
        "cannot use `http.secret_file` {path}: {problem}; write at least 32 random bytes to it (e.g. `head -c 32 /dev/urandom > {path}`) or remove the key to let the store keep one"
    )]
    SecretFile {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The store could not keep or give the shared key.
    #[error("cannot read or create the tracking key in the store: {0}")]
    Store(#[from] StoreError),
}

/// Signs links, decorates e-mails and buffers tracked events.
pub struct Tracking {
    /// Set once: from `http.secret_file` at start, or from the store as
    /// soon as it answers (a daemon may start while Redis is down).
    signer: OnceLock<Signer>,
    /// Where the shared key comes from while `signer` is unset.
    store: Option<SharedStore>,
    public_url: String,
    buffer: Buffer,
}

impl Tracking {
    /// Tracking with `signer`, making links under `public_url`.
    pub fn new(signer: Signer, public_url: &str) -> Tracking {
        Tracking {
            signer: OnceLock::from(signer),
            store: None,
            public_url: public_url.trim_end_matches('/').to_owned(),
            buffer: Buffer::default(),
        }
    }

    /// Tracking as the config asks: the key of `http.secret_file`, or the
    /// one the store keeps for every instance (created on first use).
    ///
    /// A store that does not answer yet is not an error: the daemon starts,
    /// `/readyz` says why it is not ready, and the key is fetched by
    /// [`Tracking::load_key`] once the store is back.
    pub async fn from_config(config: &Config, store: &SharedStore) -> Result<Tracking, KeyError> {
        let public_url = config.http.public_url.clone().unwrap_or_else(|| {
            // The links' routes are served on the public listener when there
            // is one, and only there (http-api.md).
            let served_on = match config.http.public_listen {
                Some(public) => {
                    warn!(%public, "Tracking and unsubscribe links point to the public listener's own address, as `http.public_url` is not set; set it to the address recipients reach.");
                    public
                }
                None => config.http.listen,
            };
            format!("http://{served_on}")
        });
        if let Some(path) = &config.http.secret_file {
            return Ok(Tracking::new(
                Signer::new(read_secret_file(path)?),
                &public_url,
            ));
        }
        let tracking = Tracking {
            signer: OnceLock::new(),
            store: Some(store.clone()),
            public_url: public_url.trim_end_matches('/').to_owned(),
            buffer: Buffer::default(),
        };
        match tracking.load_key().await {
            Ok(_) => {}
            Err(error @ StoreError::Unavailable(_)) => {
                warn!(%error, "The tracking key is not in hand: the store does not answer. Links wait for it.");
            }
            Err(error) => return Err(error.into()),
        }
        Ok(tracking)
    }

    /// Fetches the store's shared key unless the key is in hand already;
    /// e-mails are decorated only after this succeeded.
    pub async fn load_key(&self) -> Result<&Signer, StoreError> {
        if let Some(signer) = self.signer.get() {
            return Ok(signer);
        }
        let Some(store) = &self.store else {
            return Err(StoreError::Other(
                "tracking has neither a key nor a store to get one from".to_owned(),
            ));
        };
        let candidate: [u8; 32] = rand::random();
        let key = store.shared_secret(SECRET_NAME, &candidate).await?;
        // Concurrent fetchers read the same key (the store sets it once).
        Ok(self.signer.get_or_init(|| Signer::new(key)))
    }

    /// The signer of the links; `None` until the key is in hand.
    pub fn signer(&self) -> Option<&Signer> {
        self.signer.get()
    }

    /// The buffer of tracked events.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// The link of `kind` for a recipient of a run (`url` for a click).
    /// `None` until the key is in hand.
    pub fn link(&self, kind: LinkKind, run: &str, recipient: &str, url: &str) -> Option<String> {
        Some(self.link_signed(self.signer.get()?, kind, run, recipient, url))
    }

    fn link_signed(
        &self,
        signer: &Signer,
        kind: LinkKind,
        run: &str,
        recipient: &str,
        url: &str,
    ) -> String {
        let path = match kind {
            LinkKind::Open => "t/o",
            LinkKind::Click => "t/c",
            LinkKind::Unsubscribe => "u",
        };
        let token = signer.sign(&Claim {
            kind,
            run: run.to_owned(),
            recipient: recipient.to_owned(),
            url: url.to_owned(),
        });
        format!("{}/{path}/{token}", self.public_url)
    }

    /// Adds the unsubscribe headers to an e-mail and, as `choice` asks,
    /// rewrites the links and adds the open pixel of its HTML part.
    pub fn decorate(&self, message: &mut Message, choice: TrackingChoice) -> Result<(), String> {
        let Some(signer) = self.signer.get() else {
            // Unreachable in the daemon: a run is sent only after
            // `load_key` succeeded (dispatch), and the key is never unset.
            return Err("the tracking key is not in hand yet".to_owned());
        };
        let (run, recipient) = (message.run_id.as_str(), message.recipient_id.as_str());
        let link = |kind, url: &str| self.link_signed(signer, kind, run, recipient, url);
        let unsubscribe = link(LinkKind::Unsubscribe, "");
        message
            .headers
            .insert("List-Unsubscribe".to_owned(), format!("<{unsubscribe}>"));
        message.headers.insert(
            "List-Unsubscribe-Post".to_owned(),
            "List-Unsubscribe=One-Click".to_owned(),
        );
        if !(choice.opens || choice.clicks) {
            return Ok(());
        }
        let Some(html) = message.content.get("html") else {
            return Ok(());
        };
        let click = |url: &str| link(LinkKind::Click, url);
        let pixel = link(LinkKind::Open, "");
        let rewritten = rewrite_html(
            html,
            &Rewrite {
                click: choice.clicks.then_some(&click as &dyn Fn(&str) -> String),
                pixel: choice.opens.then_some(pixel.as_str()),
            },
        )
        .map_err(|e| e.to_string())?;
        message.content.insert("html".to_owned(), rewritten);
        Ok(())
    }
}

fn read_secret_file(path: &std::path::Path) -> Result<Vec<u8>, KeyError> {
    let problem = |problem: String| KeyError::SecretFile {
        path: path.display().to_string(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| problem(e.to_string()))?;
    // A key written by an editor ends with a newline that is not part of it.
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if end < 16 {
        return Err(problem(format!(
            "it holds {end} bytes, fewer than the 16 a signing key needs"
        )));
    }
    Ok(bytes[..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn message(html: Option<&str>) -> Message {
        let mut content = BTreeMap::from([("subject".to_owned(), "Hi".to_owned())]);
        if let Some(html) = html {
            content.insert("html".to_owned(), html.to_owned());
        }
        Message {
            message_id: "d@once/c1".into(),
            run_id: "d@once".into(),
            recipient_id: "c1".into(),
            channel: "email".into(),
            address: "a@x.example".into(),
            content,
            headers: BTreeMap::new(),
            data: BTreeMap::new(),
        }
    }

    fn tracking() -> Tracking {
        Tracking::new(Signer::new(vec![9; 32]), "https://t.example/")
    }

    fn token_of(link: &str, prefix: &str) -> Claim {
        let token = link.strip_prefix(prefix).unwrap();
        tracking().signer().unwrap().verify(token).unwrap()
    }

    #[test]
    fn every_email_gets_one_click_unsubscribe_headers_naming_its_recipient() {
        let mut m = message(None);
        tracking()
            .decorate(
                &mut m,
                TrackingChoice {
                    opens: false,
                    clicks: false,
                },
            )
            .unwrap();
        assert_eq!(
            m.headers["List-Unsubscribe-Post"],
            "List-Unsubscribe=One-Click"
        );
        let header = &m.headers["List-Unsubscribe"];
        let link = header.trim_start_matches('<').trim_end_matches('>');
        let claim = token_of(link, "https://t.example/u/");
        assert_eq!(
            (claim.kind, claim.run.as_str(), claim.recipient.as_str()),
            (LinkKind::Unsubscribe, "d@once", "c1")
        );
    }

    #[test]
    fn links_and_pixel_carry_signed_tokens_of_the_run_recipient_and_url() {
        let mut m = message(Some(
            r#"<body><a href="https://shop.example/x">x</a></body>"#,
        ));
        tracking()
            .decorate(
                &mut m,
                TrackingChoice {
                    opens: true,
                    clicks: true,
                },
            )
            .unwrap();
        let html = &m.content["html"];
        let href = html
            .split("href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let claim = token_of(href, "https://t.example/t/c/");
        assert_eq!(claim.url, "https://shop.example/x");
        assert_eq!(claim.recipient, "c1");
        let src = html
            .split("src=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(token_of(src, "https://t.example/t/o/").kind, LinkKind::Open);
    }

    #[test]
    fn tracking_off_keeps_the_html_part_as_rendered() {
        let html = r#"<body><a href="https://shop.example/x">x</a></body>"#;
        let mut m = message(Some(html));
        tracking()
            .decorate(
                &mut m,
                TrackingChoice {
                    opens: false,
                    clicks: false,
                },
            )
            .unwrap();
        assert_eq!(m.content["html"], html);
    }

    #[test]
    fn a_short_secret_file_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "short\n").unwrap();
        let error = read_secret_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("secret") && error.contains("/dev/urandom"),
            "{error}"
        );
        std::fs::write(&path, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap().len(), 32);
    }

    /// Without `http.public_url`, links point to the listener that serves
    /// their routes: the public one when there is one, else `listen`.
    #[tokio::test]
    async fn without_a_public_url_links_point_to_the_listener_serving_them() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "0123456789abcdef0123456789abcdef\n").unwrap();
        let store: SharedStore = std::sync::Arc::new(
            crate::store::embedded::EmbeddedStore::open(dir.path().join("db"))
                .await
                .unwrap(),
        );
        let mut config = Config::default();
        config.http.secret_file = Some(secret);
        config.http.listen = "127.0.0.1:8425".parse().unwrap();
        let open_link = |tracking: Tracking| {
            tracking
                .link(LinkKind::Open, "d@once", "c1", "")
                .expect("the key is in hand")
        };
        let private = Tracking::from_config(&config, &store).await.unwrap();
        assert!(open_link(private).starts_with("http://127.0.0.1:8425/t/o/"));
        config.http.public_listen = Some("127.0.0.1:8426".parse().unwrap());
        let public = Tracking::from_config(&config, &store).await.unwrap();
        assert!(open_link(public).starts_with("http://127.0.0.1:8426/t/o/"));
    }
}
