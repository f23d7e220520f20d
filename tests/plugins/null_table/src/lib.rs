//! A plugin whose entry point returns a null table, for the host's test.

use herald_plugin_api::abi::HeraldChannelV1;

/// Returns null where the table should be.
#[unsafe(no_mangle)]
pub extern "C" fn herald_channel_v1() -> *const HeraldChannelV1 {
    std::ptr::null()
}
