//! The plugin result decoder: a plugin's raw reply to `send_batch`, checked
//! against the batch it answers. Everything here comes from a library the
//! host does not trust, so nothing may panic (fuzzed by `fuzz/plugin_result`,
//! which drives this very function, as the pool does).

use super::error::SendError;
use super::library::RawReply;
use herald_plugin_api::{Batch, BatchResultsRef, SendStatus, WIRE_VERSION};

/// Decodes `raw` as the results of `batch`: the code must be `HERALD_OK`,
/// the bytes `BatchResults` JSON of the wire version, one result per
/// message, in the batch's order, with the batch's message ids. Returns
/// the status of each message, in the batch's order.
///
/// The ids are compared where they lie in the reply, not copied: the
/// reply is checked as UTF-8 once, whole, then read as a `str` (serde
/// then borrows every string without an escape instead of checking and
/// copying it), so only the statuses' own strings (provider ids,
/// reasons) are allocated.
pub fn decode_results(
    plugin: &str,
    channel: &str,
    batch: &Batch,
    raw: &RawReply,
) -> Result<Vec<SendStatus>, SendError> {
    let plugin = || plugin.to_owned();
    let channel = || channel.to_owned();
    if raw.code != herald_plugin_api::abi::HERALD_OK {
        let message = String::from_utf8_lossy(&raw.bytes).into_owned();
        return Err(SendError::Plugin {
            channel: channel(),
            plugin: plugin(),
            code: raw.code,
            message,
        });
    }
    let invalid = |reason: String| SendError::InvalidResults {
        channel: channel(),
        plugin: plugin(),
        reason,
    };
    let text = std::str::from_utf8(&raw.bytes)
        .map_err(|e| invalid(format!("not BatchResults JSON: not UTF-8: {e}")))?;
    let results: BatchResultsRef<'_> =
        serde_json::from_str(text).map_err(|e| invalid(format!("not BatchResults JSON: {e}")))?;
    if results.version != WIRE_VERSION {
        return Err(invalid(format!(
            "version {} where {WIRE_VERSION} was expected",
            results.version
        )));
    }
    if results.results.len() != batch.messages.len() {
        return Err(SendError::ResultCount {
            channel: channel(),
            plugin: plugin(),
            expected: batch.messages.len(),
            got: results.results.len(),
        });
    }
    let mismatch = batch
        .messages
        .iter()
        .zip(&results.results)
        .position(|(m, r)| m.message_id != r.message_id);
    if let Some(index) = mismatch {
        return Err(SendError::ResultId {
            channel: channel(),
            plugin: plugin(),
            index,
            expected: batch.messages[index].message_id.clone(),
            got: results.results[index].message_id.clone().into_owned(),
        });
    }
    Ok(results.results.into_iter().map(|r| r.status).collect())
}
