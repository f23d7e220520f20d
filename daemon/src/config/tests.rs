use super::*;
use std::time::Duration;

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("herald.yaml"), text)
}

#[test]
fn an_empty_file_gives_the_documented_defaults() {
    let config = parse_str("").unwrap();
    assert_eq!(config.store.kind, StoreKind::Embedded);
    assert_eq!(config.sending.batch_size, 50);
    assert_eq!(config.sending.chunk_size, 1000);
    assert_eq!(config.sending.lease.get(), Duration::from_secs(30));
    assert_eq!(config.kpi.rates_interval.get(), Duration::from_secs(3600));
    assert_eq!(
        config.retention.runs.get(),
        Duration::from_secs(90 * 86_400)
    );
    assert_eq!(config.quarantine.soft_threshold, 5);
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8425");
}

#[test]
fn the_full_example_of_daemon_md_parses() {
    let text = r#"
deliveries_dir: deliveries
audience_roots: [/srv/herald/audiences]
store:
  kind: redis
  url: redis://127.0.0.1:6379/0
  key_prefix: herald
http:
  listen: 127.0.0.1:8425
  public_listen: 0.0.0.0:8426
  public_url: https://t.shop.example
  secret_file: var/secret
plugins:
  - path: plugins/libherald_email.so
    config:
      smtp_url: smtp://127.0.0.1:2525
      pool_size: 8
  - path: plugins/libherald_outbox.so
    config: { dir: var/outbox }
sending:
  batch_size: 50
  chunk_size: 1000
  lease: 30s
  retries: 3
  plugin_timeout: 60s
  shutdown_grace: 20s
kpi:
  flush_interval: 10s
  rates_interval: 1h
quarantine:
  soft_threshold: 5
confirmations:
  webhook: https://chat.example/hooks/abc
retention:
  runs: 90d
  history: 365d
users:
  - name: alice
    token_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
    roles: [start_deliveries]
"#;
    let config = parse_str(text).unwrap();
    assert_eq!(config.plugins.len(), 2);
    assert_eq!(config.plugins[0].config["pool_size"], 8);
    assert_eq!(config.users[0].roles, vec![Role::StartDeliveries]);
    assert_eq!(
        config.store.url.as_deref(),
        Some("redis://127.0.0.1:6379/0")
    );
}

#[test]
fn unknown_keys_are_errors_with_line_and_column() {
    let err = parse_str("store:\n  kind: embedded\n  pth: x\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("herald.yaml:3:"), "{text}");
    assert!(text.contains("pth"), "{text}");
}

#[test]
fn a_bad_duration_points_at_its_value() {
    let err = parse_str("sending:\n  lease: soon\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("herald.yaml:2:"), "{err}");
    assert!(err.contains("`soon` is not a duration"), "{err}");
}

#[test]
fn an_unknown_role_is_refused() {
    let text = "users:\n  - name: a\n    token_sha256: x\n    roles: [boss]\n";
    let err = parse_str(text).unwrap_err().to_string();
    assert!(err.contains("herald.yaml:4:"), "{err}");
}

#[test]
fn a_webhook_or_public_url_that_is_no_web_address_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.yaml");
    let load_text = |text: &str| {
        std::fs::write(&path, text).unwrap();
        load(&path)
    };
    for (text, field) in [
        (
            "confirmations:\n  webhook: chat room\n",
            "confirmations.webhook",
        ),
        (
            "confirmations:\n  webhook: ftp://chat.example/h\n",
            "confirmations.webhook",
        ),
        ("http:\n  public_url: t.shop.example\n", "http.public_url"),
    ] {
        let err = load_text(text).unwrap_err().to_string();
        assert!(err.contains(field) && err.contains("https://"), "{err}");
    }
    load_text("confirmations:\n  webhook: http://127.0.0.1:9/h\nhttp:\n  public_url: https://t.shop.example/\n").unwrap();
}

#[test]
fn a_plaintext_token_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.yaml");
    std::fs::write(
        &path,
        "users:\n  - {name: a, token_sha256: secret, roles: [viewer]}\n",
    )
    .unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("users[0].token_sha256"), "{err}");
    assert!(err.contains("herald hash-token"), "{err}");
}

#[test]
fn relative_paths_are_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.yaml");
    let text = "deliveries_dir: d\nstore: {path: var/h.db}\nplugins:\n  - path: p/libx.so\n    config: {dir: var/outbox, url: http://x/y, key_file: k, abs_dir: /abs}\n";
    std::fs::write(&path, text).unwrap();
    let config = load(&path).unwrap().config;
    assert_eq!(config.deliveries_dir, dir.path().join("d"));
    assert_eq!(config.store.path, dir.path().join("var/h.db"));
    assert_eq!(config.plugins[0].path, dir.path().join("p/libx.so"));
    let plugin = &config.plugins[0].config;
    assert_eq!(
        plugin["dir"],
        dir.path().join("var/outbox").to_str().unwrap()
    );
    assert_eq!(plugin["key_file"], dir.path().join("k").to_str().unwrap());
    assert_eq!(plugin["url"], "http://x/y");
    assert_eq!(plugin["abs_dir"], "/abs");
}

#[test]
fn a_config_named_without_a_folder_resolves_against_the_current_folder() {
    let cwd = Path::new("/srv/herald");
    assert_eq!(base_dir(Path::new("herald.yaml"), cwd), cwd);
    assert_eq!(
        base_dir(Path::new("conf/herald.yaml"), cwd),
        cwd.join("conf")
    );
    assert_eq!(
        base_dir(Path::new("/etc/herald/herald.yaml"), cwd),
        Path::new("/etc/herald")
    );
    let mut config = parse_str("deliveries_dir: d\n").unwrap();
    resolve_paths(&mut config, &base_dir(Path::new("herald.yaml"), cwd));
    assert_eq!(config.deliveries_dir, cwd.join("d"));
    assert!(config.store.path.is_absolute(), "{:?}", config.store.path);
}

#[test]
fn a_plugin_timeout_no_plugin_could_meet_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.yaml");
    std::fs::write(&path, "sending: { plugin_timeout: 0s }\n").unwrap();
    let err = load(&path).unwrap_err().to_string();
    assert!(err.contains("`sending.plugin_timeout`"), "{err}");
    assert!(err.contains("at least 100ms"), "{err}");
    std::fs::write(&path, "sending: { plugin_timeout: 100ms }\n").unwrap();
    assert!(load(&path).is_ok());
}

#[test]
fn empty_environment_variables_count_as_unset() {
    use std::ffi::OsString;
    assert_eq!(
        choose_path(None, Some(OsString::new())),
        Path::new(DEFAULT_PATH)
    );
    assert_eq!(
        choose_path(None, Some(OsString::from("/srv/h.yaml"))),
        Path::new("/srv/h.yaml")
    );
    assert_eq!(
        choose_path(
            Some("flag.yaml".into()),
            Some(OsString::from("/srv/h.yaml"))
        ),
        Path::new("flag.yaml")
    );
    assert_eq!(redis_override(Some(String::new())), None);
    assert_eq!(redis_override(Some(" ".into())), None);
    assert_eq!(
        redis_override(Some("redis://r:6379/0".into())).as_deref(),
        Some("redis://r:6379/0")
    );
}

#[test]
fn redis_without_an_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.yaml");
    std::fs::write(&path, "store: {kind: redis}\n").unwrap();
    // HERALD_REDIS_URL would fill it; the test environment does not set it.
    if std::env::var_os("HERALD_REDIS_URL").is_none() {
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("store.url"), "{err}");
    }
}

/// The error `check` gives for a store block, or `None` when it passes.
fn store_error(store: &str) -> Option<String> {
    let path = Path::new("herald.yaml");
    let config = parse(path, &format!("store: {store}\n")).unwrap();
    check(path, &config).err().map(|e| e.to_string())
}

#[test]
fn a_cluster_or_sentinels_stand_in_for_the_url() {
    assert_eq!(
        store_error("{kind: redis, cluster_nodes: [\"127.0.0.1:7000\", \"127.0.0.1:7001\"]}"),
        None
    );
    assert_eq!(
        store_error("{kind: redis, sentinels: [\"127.0.0.1:26379\"], master_name: main}"),
        None
    );
    let config =
        parse_str("store:\n  kind: redis\n  sentinels: [a:1, b:2]\n  master_name: main\n").unwrap();
    assert_eq!(config.store.sentinels, ["a:1", "b:2"]);
    assert_eq!(config.store.master_name, "main");
}

#[test]
fn more_than_one_redis_topology_is_refused_naming_the_keys() {
    let err =
        store_error("{kind: redis, url: \"redis://h/0\", cluster_nodes: [\"h:7000\"]}").unwrap();
    assert!(err.contains("store.cluster_nodes"), "{err}");
    assert!(
        err.contains("`store.url` and `store.cluster_nodes`"),
        "{err}"
    );
    let err = store_error("{kind: redis, cluster_nodes: [\"h:7000\"], sentinels: [\"h:26379\"]}")
        .unwrap();
    assert!(err.contains("exactly one of"), "{err}");
    assert!(err.contains("`store.sentinels`"), "{err}");
    let err = store_error("{kind: redis, sentinels: [\"h:26379\"], master_name: \"\"}").unwrap();
    assert!(err.contains("store.master_name"), "{err}");
}

#[test]
fn garbage_is_a_clear_error_not_a_panic() {
    for text in [
        "\u{0}\u{1}\u{2}",
        "[[[[",
        "a: b: c",
        "- 1\n- 2\n",
        "deliveries_dir: [1, 2]",
    ] {
        let err = parse_str(text).unwrap_err().to_string();
        assert!(err.starts_with("herald.yaml:"), "{text:?} gave {err}");
    }
}
