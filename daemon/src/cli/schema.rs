//! `herald schema`.

use std::process::ExitCode;

/// Prints the JSON Schema of delivery files, derived from the parser's types.
pub fn run() -> super::Outcome {
    println!(
        "{}",
        serde_json::to_string_pretty(&crate::definitions::schema())?
    );
    Ok(ExitCode::SUCCESS)
}
