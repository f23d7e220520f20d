//! A library that exports no `herald_channel_v1`, for the host's
//! missing-symbol test.

/// Something exported under another name, so the library is not empty.
#[unsafe(no_mangle)]
pub extern "C" fn herald_channel_v0() -> u32 {
    0
}
