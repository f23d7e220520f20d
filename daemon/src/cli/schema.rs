//! `herald schema`.

/// Prints the JSON Schema of delivery files.
pub fn run() -> super::Outcome {
    anyhow::bail!("`herald schema` is not built yet")
}
