//! Loading: paths, symbols, versions, configs, descriptions, duplicates.

use super::*;

#[test]
fn bad_path_is_refused_naming_the_file() {
    let error = load_error(spec(
        "/nonexistent/libnothing.so".into(),
        serde_json::json!({}),
    ));
    assert!(matches!(error, LoadError::Open { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/libnothing.so"),
        "{error}"
    );
}

#[test]
fn library_without_the_symbol_is_refused_naming_file_and_symbol() {
    let path = rust_plugin("no_symbol");
    let error = load_error(spec(path.clone(), serde_json::json!({})));
    assert!(
        matches!(error, LoadError::MissingSymbol { .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("herald_channel_v1"),
        "{text}"
    );
}

#[test]
fn wrong_abi_version_is_refused_before_anything_is_called() {
    // The table's functions are null: reaching them would crash the test.
    let path = rust_plugin("wrong_abi");
    let error = load_error(spec(path.clone(), serde_json::json!({})));
    assert!(
        matches!(error, LoadError::Version { found: 99, .. }),
        "{error:?}"
    );
    let text = error.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("99"),
        "{text}"
    );
}

#[test]
fn null_table_is_refused_naming_the_file() {
    let path = rust_plugin("null_table");
    let error = load_error(spec(path.clone(), serde_json::json!({})));
    assert!(matches!(error, LoadError::NullTable { .. }), "{error:?}");
    assert!(error.to_string().contains(&path.display().to_string()));
}

#[test]
fn refused_config_carries_the_plugins_own_message() {
    let error = load_error(misbehave(
        serde_json::json!({"refuse": "`dir` is required: add it"}),
    ));
    let LoadError::Refused { message, path } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(message, "`dir` is required: add it");
    assert_eq!(path, &rust_plugin("misbehave"));
}

#[test]
fn panic_in_create_is_a_refusal_with_the_panic_message() {
    let error = load_error(misbehave(serde_json::json!({"panic_in_create": true})));
    assert!(matches!(error, LoadError::Refused { .. }), "{error:?}");
    assert!(
        error.to_string().contains("told to panic in create"),
        "{error}"
    );
}

#[test]
fn description_that_is_not_json_is_refused() {
    let error = load_error(spec(rust_plugin("raw"), serde_json::json!("bad_describe")));
    assert!(matches!(error, LoadError::Description { .. }), "{error:?}");
}

#[test]
fn description_with_zero_concurrency_is_refused() {
    let error = load_error(spec(
        rust_plugin("raw"),
        serde_json::json!("zero_concurrency"),
    ));
    assert!(error.to_string().contains("concurrency 0"), "{error}");
}

#[test]
fn two_plugins_serving_one_channel_are_refused_naming_both_paths() {
    let folder = tempfile::tempdir().unwrap();
    let copy = folder.path().join("libsecond.so");
    std::fs::copy(rust_plugin("misbehave"), &copy).unwrap();
    let specs = [
        misbehave(serde_json::json!({"channel": "email"})),
        spec(copy.clone(), serde_json::json!({"channel": "email"})),
    ];
    let error = PluginHost::load(&specs, Duration::from_secs(5)).expect_err("refused");
    let LoadError::DuplicateChannel {
        channel,
        first,
        second,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(
        (channel.as_str(), first, second),
        ("email", &rust_plugin("misbehave"), &copy)
    );
}
