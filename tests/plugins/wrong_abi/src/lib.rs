//! A plugin that declares an ABI version no host supports (99, not
//! compatible with 1), for the host's version check. Its functions are
//! null: the host must refuse it before it looks at them.

use herald_plugin_api::abi::HeraldChannelV1;

static TABLE: HeraldChannelV1 = HeraldChannelV1 {
    abi_version: 99,
    abi_min_compatible: 99,
    name: c"wrong_abi".as_ptr(),
    version: c"0.0.0".as_ptr(),
    create: None,
    describe: None,
    send_batch: None,
    free: None,
    destroy: None,
};

/// Returns the table with the wrong version.
#[unsafe(no_mangle)]
pub extern "C" fn herald_channel_v1() -> *const HeraldChannelV1 {
    &TABLE
}
