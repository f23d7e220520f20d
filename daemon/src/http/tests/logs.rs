//! Nothing from a request reaches a log line unescaped: line breaks and
//! terminal escapes sent in paths and bodies are written as escapes, so a
//! client cannot forge a log line or recolour an operator's terminal.

use super::*;
use std::io::Write;
use std::sync::Mutex;

/// A `MakeWriter` that keeps everything written in memory (also used by
/// other modules' tests that check what a log line holds).
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far, as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

// Current-thread runtime: the handlers run on this thread, under the
// subscriber set below.
#[tokio::test]
async fn line_breaks_and_escapes_from_requests_are_escaped_in_logs() {
    let h = Harness::new().await;
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A delivery id with CR/LF and a forged line (logged by "Statistics recomputed.").
    let (status, _) = h
        .call(
            "POST",
            "/api/v1/deliveries/x%0D%0A2026-12-07T06:00:00Z%20ERROR%20forged/statistics",
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A push token with a terminal escape (logged by "Address suppressed.").
    let (status, body) = h
        .call(
            "PUT",
            "/api/v1/suppressions/denylist/tok%1B%5B31mred",
            Some(ADMIN),
            Some(r#"{"reason": "a\r\nERROR forged"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Confirming an unknown run with a name made of escapes.
    let (status, _) = h
        .call(
            "POST",
            "/api/v1/runs/%1B%5D0%3Bpwn%07%0A/confirm",
            Some(CONFIRMER),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("Statistics recomputed."), "{log}");
    assert!(log.contains("Address suppressed."), "{log}");
    assert!(
        !log.contains('\r') && !log.contains('\u{1b}') && !log.contains('\u{7}'),
        "{log:?}"
    );
    for line in log.lines() {
        assert!(
            !line.contains("ERROR forged") || line.contains("\\r\\n"),
            "{line}"
        );
    }
    assert!(
        log.contains(r#"x\r\n2026-12-07T06:00:00Z ERROR forged"#),
        "{log}"
    );
    assert!(log.contains(r#"tok\u{1b}[31mred"#), "{log}");
}
