//! The outbox through the `Channel` trait, writing into a real folder.

use super::*;
use serde_json::json;
use std::path::Path;

fn outbox(dir: &Path, channels: &[&str]) -> Outbox {
    Outbox::create(&json!({"dir": dir, "channels": channels})).unwrap()
}

fn message(channel: &str, recipient: &str, content: &[(&str, &str)]) -> Message {
    Message {
        message_id: format!("promo@once/{recipient}"),
        run_id: "promo@once".to_owned(),
        recipient_id: recipient.to_owned(),
        channel: channel.to_owned(),
        address: format!("{recipient}@example.com"),
        content: content
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        headers: Default::default(),
        data: Default::default(),
    }
}

fn batch(messages: Vec<Message>) -> Batch {
    Batch {
        version: WIRE_VERSION,
        messages,
    }
}

fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn describes_outbox_and_the_configured_channels_with_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let description = outbox(dir.path(), &["email", "sms", "push", "fax", "email"]).describe();
    let summary: Vec<_> = description
        .channels
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.address_column.as_deref(),
                c.normalise,
                c.tracking,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("outbox", None, Normalisation::None, false),
            ("email", Some("email"), Normalisation::Email, true),
            ("sms", Some("phone"), Normalisation::E164, false),
            ("push", Some("push_token"), Normalisation::Token, false),
            ("fax", None, Normalisation::None, false),
        ]
    );
    assert_eq!(description.concurrency, 4);
}

#[test]
fn creates_a_missing_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    outbox(&nested, &[]);
    assert!(nested.is_dir());
}

#[test]
fn refuses_a_dir_it_cannot_create_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let error = Outbox::create(&json!({"dir": blocker.join("sub")})).unwrap_err();
    assert!(
        error.contains("`dir`") && error.contains("file/sub"),
        "{error}"
    );
}

#[test]
fn email_becomes_an_eml_file_and_other_channels_json() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = outbox(dir.path(), &["email", "sms"]);
    let results = outbox.send_batch(&batch(vec![
        message(
            "email",
            "ana",
            &[
                ("from", "Shop <s@shop.example>"),
                ("subject", "Hi"),
                ("text", "Hello"),
            ],
        ),
        message("sms", "bo", &[("body", "Shipped")]),
    ]));
    assert_eq!(
        files(dir.path()),
        ["promo%40once%2Fana.eml", "promo%40once%2Fbo.json"]
    );
    assert_eq!(
        results[0],
        MessageResult {
            message_id: "promo@once/ana".to_owned(),
            status: SendStatus::Accepted {
                provider_message_id: Some("promo%40once%2Fana.eml".to_owned())
            },
        }
    );
    let eml = std::fs::read_to_string(dir.path().join("promo%40once%2Fana.eml")).unwrap();
    assert!(
        eml.contains("\r\nTo: ana@example.com\r\n") && eml.contains("\r\nSubject: Hi\r\n"),
        "{eml}"
    );
    let json: Message =
        serde_json::from_slice(&std::fs::read(dir.path().join("promo%40once%2Fbo.json")).unwrap())
            .unwrap();
    assert_eq!(json, message("sms", "bo", &[("body", "Shipped")]));
}

#[test]
fn sending_the_same_message_id_twice_overwrites_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = outbox(dir.path(), &[]);
    outbox.send_batch(&batch(vec![message("outbox", "ana", &[("body", "first")])]));
    outbox.send_batch(&batch(vec![message(
        "outbox",
        "ana",
        &[("body", "second")],
    )]));
    assert_eq!(files(dir.path()), ["promo%40once%2Fana.json"]);
    let json: Message =
        serde_json::from_slice(&std::fs::read(dir.path().join("promo%40once%2Fana.json")).unwrap())
            .unwrap();
    assert_eq!(json.content["body"], "second");
}

#[test]
fn a_folder_that_vanished_gives_retry_results() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("box");
    let outbox = outbox(&target, &[]);
    std::fs::remove_dir(&target).unwrap();
    let results = outbox.send_batch(&batch(vec![message("outbox", "ana", &[])]));
    assert!(
        matches!(&results[0].status, SendStatus::Retry { reason, .. } if reason.contains("box")),
        "{results:?}"
    );
}
