//! The example deliveries under `config/deliveries/` load without a single
//! error or warning, and each passes the JSON Schema of `herald schema`.

use super::*;
use std::path::PathBuf;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/deliveries")
}

fn ctx() -> ValidationContext {
    ValidationContext {
        deliveries_dir: examples_dir(),
        audience_roots: Vec::new(),
        channels: ChannelCatalog::builtin(),
    }
}

#[test]
fn every_example_delivery_is_valid() {
    let loaded = load_folder(&ctx());
    assert!(loaded.errors.is_empty(), "{:#?}", loaded.errors);
    assert!(loaded.warnings.is_empty(), "{:#?}", loaded.warnings);
    let mut ids: Vec<&str> = loaded.deliveries.iter().map(Delivery::id).collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "daily-tip",
            "launch-approval",
            "order-shipped",
            "stock-report",
            "weekly-digest",
            "welcome-now"
        ]
    );
    let by_id = |id: &str| loaded.deliveries.iter().find(|d| d.id() == id).unwrap();
    assert_eq!(by_id("welcome-now").schedule().when(), &When::Once);
    assert_eq!(by_id("welcome-now").channel(), "email");
    assert!(by_id("weekly-digest").schedule().confirm());
    assert_eq!(by_id("launch-approval").schedule().when(), &When::Once);
    assert!(by_id("launch-approval").schedule().confirm());
    assert_eq!(
        by_id("daily-tip").schedule().aggregation(),
        Aggregation::Week
    );
    let channels: std::collections::BTreeSet<&str> =
        loaded.deliveries.iter().map(Delivery::channel).collect();
    assert_eq!(
        channels.into_iter().collect::<Vec<_>>(),
        ["email", "outbox", "push", "sms"]
    );
}

#[test]
fn every_example_renders_for_every_recipient_it_can() {
    for d in load_folder(&ctx()).deliveries {
        let renderer = Renderer::new(&d).unwrap();
        for row in d.audience().rows() {
            let row = row.unwrap();
            renderer
                .render(&row, "example@once")
                .unwrap_or_else(|e| panic!("{} for {}: {e}", d.id(), row.id));
        }
    }
}

fn yaml_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_passes_the_json_schema() {
    let schema = serde_json::to_value(schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let files = yaml_files();
    assert_eq!(files.len(), 6);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let value: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", file.display());
    }
}

#[test]
fn the_json_schema_refuses_a_misspelt_key() {
    let schema = serde_json::to_value(schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let text = std::fs::read_to_string(examples_dir().join("order-shipped.yaml")).unwrap();
    let value: serde_json::Value =
        serde_saphyr::from_str(&text.replace("schedule:", "shedule:")).unwrap();
    assert!(!validator.is_valid(&value));
}
