//! Feeds arbitrary bytes to the delivery parser and validator, then
//! renders every inline recipient of what validates: nothing may panic or
//! hang, whatever the input.
#![no_main]

use herald::definitions::{ChannelCatalog, Renderer, ValidationContext, check_bytes};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A deliveries folder with an audience and a template, so that file
/// references in the input can resolve.
fn context() -> &'static (ValidationContext, PathBuf) {
    static CTX: OnceLock<(ValidationContext, PathBuf)> = OnceLock::new();
    CTX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("herald-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("audiences")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(dir.join("audiences/a.csv"), "id,email,phone,push_token,first_name\nc1,a@x.example,+33612345678,tok,Ana\n").unwrap();
        std::fs::write(dir.join("templates/t.html"), "<p>{{ first_name }}</p>\n").unwrap();
        let ctx = ValidationContext {
            deliveries_dir: dir.clone(),
            audience_roots: Vec::new(),
            channels: ChannelCatalog::builtin(),
        };
        (ctx, dir.join("fuzz.yaml"))
    })
}

fuzz_target!(|data: &[u8]| {
    let (ctx, path) = context();
    let report = check_bytes(path, data.to_vec(), ctx);
    if let Ok(delivery) = report.result {
        let _ = delivery.definition_hash();
        if let herald::definitions::Audience::Inline { recipients } = delivery.audience() {
            if let Ok(renderer) = Renderer::new(&delivery) {
                for row in recipients.iter().take(4) {
                    let _ = renderer.render(row, "fuzz@once");
                }
            }
        }
        let s = delivery.schedule();
        let t = chrono::DateTime::<chrono::Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        if let Some(next) = s.next_after(t) {
            let _ = s.confirm_deadline_for(next);
            let _ = s.aggregation_period(next);
        }
        let _ = s.latest_at_or_before(t);
    }
});
