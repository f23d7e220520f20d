use super::*;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tracing::{info, info_span, warn};

/// A writer into a shared buffer, one per test.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'w self) -> Buffer {
        self.clone()
    }
}

/// What `emit` logs with the subscriber of `format`, as `init` builds it.
fn logged(format: LogFormat, emit: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let subscriber = subscriber(format, EnvFilter::new("info"), buffer.clone(), false);
    tracing::subscriber::with_default(subscriber, emit);
    buffer.text()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn json_lines_carry_the_fields_of_their_run_span_at_the_top_level() {
    let text = logged(LogFormat::Json, || {
        let span = info_span!("run", delivery_id = "spring", run_id = "spring@once");
        let _entered = span.enter();
        warn!(
            plugin = "email",
            timeout_ms = 1000_u64,
            "Plugin call abandoned after the timeout."
        );
    });
    let lines = json_lines(&text);
    assert_eq!(lines.len(), 1, "{text}");
    let line = &lines[0];
    assert_eq!(line["delivery_id"], "spring", "{text}");
    assert_eq!(line["run_id"], "spring@once", "{text}");
    assert_eq!(line["plugin"], "email");
    assert_eq!(line["timeout_ms"], 1000);
    assert_eq!(line["message"], "Plugin call abandoned after the timeout.");
    assert_eq!(line["level"], "WARN");
    assert!(
        line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{text}"
    );
    assert!(
        line.get("spans").is_none(),
        "span fields are flattened: {text}"
    );
}

#[test]
fn an_events_own_field_wins_over_its_spans_and_inner_spans_over_outer() {
    let text = logged(LogFormat::Json, || {
        let outer = info_span!("outer", run_id = "outer@once", chunk = 1_u64);
        let _outer = outer.enter();
        let inner = info_span!("inner", run_id = "inner@once");
        let _inner = inner.enter();
        info!("From the inner span.");
        info!(chunk = 7_u64, "With a chunk of its own.");
    });
    let lines = json_lines(&text);
    assert_eq!(lines[0]["run_id"], "inner@once");
    assert_eq!(lines[0]["chunk"], 1);
    assert_eq!(lines[1]["chunk"], 7);
}

#[test]
fn json_escapes_line_breaks_so_no_line_can_be_forged() {
    let text = logged(LogFormat::Json, || {
        info!(path = "/x\r\n{\"level\":\"ERROR\"}", "Request refused.");
    });
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(json_lines(&text)[0]["path"], "/x\r\n{\"level\":\"ERROR\"}");
}

#[test]
fn the_text_format_is_human_and_shows_the_run_span() {
    let text = logged(LogFormat::Text, || {
        let span = info_span!("run", delivery_id = "spring", run_id = "spring@once");
        let _entered = span.enter();
        info!("Chunk released.");
    });
    assert!(!text.starts_with('{'), "{text}");
    assert!(
        text.contains("delivery_id=\"spring\"") && text.contains("run_id=\"spring@once\""),
        "{text}"
    );
    assert!(text.contains("Chunk released."), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour without a terminal: {text}"
    );
}

#[test]
fn herald_log_unset_or_empty_means_info() {
    for given in [None, Some(""), Some("  ")] {
        let (filter, refused) = filter_from(given);
        assert_eq!(filter.to_string(), "info", "{given:?}");
        assert!(refused.is_none(), "{given:?}");
    }
}

#[test]
fn a_herald_log_that_is_not_a_filter_is_reported_not_silently_dropped() {
    let (filter, refused) = filter_from(Some("info,herald=loud"));
    assert_eq!(filter.to_string(), "info");
    let (given, error) = refused.expect("the bad filter is reported");
    assert_eq!(given, "info,herald=loud");
    assert!(!error.is_empty());
    let (filter, refused) = filter_from(Some("info,herald=debug"));
    assert!(refused.is_none());
    assert_eq!(filter.to_string(), "herald=debug,info");
}
