//! Which keys a SIGHUP reloads and which need a restart (daemon.md marks
//! the reloadable ones (R)), so a reload can name the keys it leaves alone.

use super::model::{Config, HttpConfig, KpiConfig, SendingConfig, StoreConfig};

/// The restart-only keys, dotted, whose value differs between the running
/// config and a reloaded one: they keep their running values until a restart.
pub fn restart_only_changes(running: &Config, reloaded: &Config) -> Vec<&'static str> {
    // Destructured without `..`: a key added to the config must be sorted
    // here into reloaded or restart-only, or this does not compile.
    let Config {
        // (R): the reload applies these.
        deliveries_dir: _,
        audience_roots: _,
        quarantine: _,
        confirmations: _,
        retention: _,
        users: _,
        // Restart only.
        store,
        http,
        plugins,
        sending,
        kpi,
    } = running;
    let StoreConfig {
        kind,
        path,
        url,
        cluster_nodes,
        sentinels,
        master_name,
        key_prefix,
    } = store;
    let HttpConfig {
        listen,
        public_listen,
        public_url,
        secret_file,
    } = http;
    let SendingConfig {
        batch_size,
        chunk_size,
        lease,
        retries,
        plugin_timeout,
        shutdown_grace,
    } = sending;
    let KpiConfig {
        flush_interval,
        rates_interval,
    } = kpi;
    let new = reloaded;
    [
        ("store.kind", *kind != new.store.kind),
        ("store.path", *path != new.store.path),
        ("store.url", *url != new.store.url),
        (
            "store.cluster_nodes",
            *cluster_nodes != new.store.cluster_nodes,
        ),
        ("store.sentinels", *sentinels != new.store.sentinels),
        ("store.master_name", *master_name != new.store.master_name),
        ("store.key_prefix", *key_prefix != new.store.key_prefix),
        ("http.listen", *listen != new.http.listen),
        (
            "http.public_listen",
            *public_listen != new.http.public_listen,
        ),
        ("http.public_url", *public_url != new.http.public_url),
        ("http.secret_file", *secret_file != new.http.secret_file),
        ("plugins", *plugins != new.plugins),
        ("sending.batch_size", *batch_size != new.sending.batch_size),
        ("sending.chunk_size", *chunk_size != new.sending.chunk_size),
        ("sending.lease", *lease != new.sending.lease),
        ("sending.retries", *retries != new.sending.retries),
        (
            "sending.plugin_timeout",
            *plugin_timeout != new.sending.plugin_timeout,
        ),
        (
            "sending.shutdown_grace",
            *shutdown_grace != new.sending.shutdown_grace,
        ),
        (
            "kpi.flush_interval",
            *flush_interval != new.kpi.flush_interval,
        ),
        (
            "kpi.rates_interval",
            *rates_interval != new.kpi.rates_interval,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use std::path::Path;

    fn config(text: &str) -> Config {
        parse(Path::new("herald.yaml"), text).unwrap()
    }

    #[test]
    fn reloadable_keys_are_not_reported_as_needing_a_restart() {
        let running = config("sending: { batch_size: 10 }\n");
        let reloaded = config(
            "deliveries_dir: elsewhere\naudience_roots: [/srv/lists]\nquarantine: { soft_threshold: 2 }\nconfirmations: { webhook: https://chat.example/h }\nretention: { runs: 1d, history: 2d }\nsending: { batch_size: 10 }\n",
        );
        assert_eq!(
            restart_only_changes(&running, &reloaded),
            Vec::<&str>::new()
        );
    }

    #[test]
    fn restart_only_keys_that_changed_are_named() {
        let running = config("sending: { batch_size: 10 }\n");
        let reloaded = config(
            "http: { listen: 127.0.0.1:9000 }\nplugins: [{ path: p/libx.so }]\nsending: { batch_size: 20 }\nkpi: { rates_interval: 5m }\nstore: { key_prefix: other }\n",
        );
        assert_eq!(
            restart_only_changes(&running, &reloaded),
            [
                "store.key_prefix",
                "http.listen",
                "plugins",
                "sending.batch_size",
                "kpi.rates_interval"
            ]
        );
    }
}
