//! One loaded library and its instances: the only code in the daemon that
//! touches the raw table (everything `unsafe` about plugins lives here).

use super::error::LoadError;
use herald_plugin_api::abi::{
    self, CreateFn, DescribeFn, DestroyFn, EntryFn, FreeFn, HERALD_OK, HeraldChannelV1, SendBatchFn,
};
use herald_plugin_api::{Description, WIRE_VERSION};
use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

/// The oldest table layout this host can use.
pub const HOST_ABI_MIN: u32 = 1;
/// The newest table layout this host knows.
pub const HOST_ABI_MAX: u32 = abi::ABI_VERSION;

/// The table's functions, checked non-null once at load.
#[derive(Clone, Copy)]
struct Functions {
    create: CreateFn,
    describe: DescribeFn,
    send_batch: SendBatchFn,
    free: FreeFn,
    destroy: DestroyFn,
}

/// A plugin library whose entry point and version have been checked. The
/// library is never unloaded, so the table stays valid for the process.
#[derive(Clone)]
pub struct PluginLibrary {
    path: PathBuf,
    name: String,
    version: String,
    abi_version: u32,
    functions: Functions,
}

impl std::fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("abi_version", &self.abi_version)
            .finish_non_exhaustive()
    }
}

impl PluginLibrary {
    /// Loads the library at `path`, finds `herald_channel_v1`, and checks
    /// the table's version before reading anything else from it.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        // A bare file name would make dlopen search the library path.
        let lookup = if path.components().count() == 1 {
            Path::new(".").join(path)
        } else {
            path.to_path_buf()
        };
        let path = path.to_path_buf();
        // SAFETY: loading runs the library's initialisers; plugins are
        // trusted code the operator configured.
        let library =
            unsafe { libloading::Library::new(&lookup) }.map_err(|cause| LoadError::Open {
                path: path.clone(),
                cause,
            })?;
        // SAFETY: the symbol's type is the one the ABI fixes.
        let entry: EntryFn = match unsafe { library.get::<EntryFn>(abi::SYMBOL) } {
            Ok(symbol) => *symbol,
            Err(cause) => return Err(LoadError::MissingSymbol { path, cause }),
        };
        // Never unloaded: abandoned calls may still run in it, and tables,
        // strings and thread-locals of the library must outlive every use.
        std::mem::forget(library);
        // SAFETY: the entry point takes nothing and returns a pointer.
        let table = unsafe { entry() };
        let Some(table) = NonNull::new(table.cast_mut()) else {
            return Err(LoadError::NullTable { path });
        };
        // SAFETY: a non-null table of static lifetime per the ABI; the two
        // version fields come first in every layout.
        let table: &'static HeraldChannelV1 = unsafe { table.as_ref() };
        if !abi::is_compatible(
            table.abi_version,
            table.abi_min_compatible,
            HOST_ABI_MIN,
            HOST_ABI_MAX,
        ) {
            return Err(LoadError::Version {
                path,
                found: table.abi_version,
                min_compatible: table.abi_min_compatible,
                supported_min: HOST_ABI_MIN,
                supported_max: HOST_ABI_MAX,
            });
        }
        let name = read_str(&path, "name", table.name)?;
        let version = read_str(&path, "version", table.version)?;
        let missing = |field| LoadError::BadTable {
            path: path.clone(),
            field,
            problem: "null",
        };
        let functions = Functions {
            create: table.create.ok_or_else(|| missing("create"))?,
            describe: table.describe.ok_or_else(|| missing("describe"))?,
            send_batch: table.send_batch.ok_or_else(|| missing("send_batch"))?,
            free: table.free.ok_or_else(|| missing("free"))?,
            destroy: table.destroy.ok_or_else(|| missing("destroy"))?,
        };
        Ok(PluginLibrary {
            path,
            name,
            version,
            abi_version: table.abi_version,
            functions,
        })
    }

    /// The file this library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The plugin's name from its table.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's version from its table.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The table's ABI version.
    pub fn abi_version(&self) -> u32 {
        self.abi_version
    }

    /// Creates an instance from `config`; the plugin's refusal comes back
    /// as [`LoadError::Refused`] with its own message.
    pub fn create(&self, config: &serde_json::Value) -> Result<Arc<Instance>, LoadError> {
        let config = serde_json::to_vec(config).map_err(|e| LoadError::Refused {
            path: self.path.clone(),
            message: format!("cannot encode the config as JSON: {e}"),
        })?;
        let mut instance: *mut c_void = std::ptr::null_mut();
        let (mut err, mut err_len): (*mut u8, usize) = (std::ptr::null_mut(), 0);
        // SAFETY: valid input buffer and writable out slots, per `CreateFn`.
        let code = unsafe {
            (self.functions.create)(
                config.as_ptr(),
                config.len(),
                &mut instance,
                &mut err,
                &mut err_len,
            )
        };
        let message = self.take(err, err_len);
        match NonNull::new(instance) {
            Some(pointer) if code == HERALD_OK => Ok(Arc::new(Instance {
                library: self.clone(),
                pointer,
            })),
            _ => Err(LoadError::Refused {
                path: self.path.clone(),
                message: match message {
                    Some(text) if !text.is_empty() => String::from_utf8_lossy(&text).into_owned(),
                    _ if code == HERALD_OK => "create returned no instance".to_owned(),
                    _ => format!("create failed with code {code} and no message"),
                },
            }),
        }
    }

    /// Copies a plugin buffer and hands it back to the plugin's `free`.
    fn take(&self, pointer: *mut u8, len: usize) -> Option<Vec<u8>> {
        if pointer.is_null() {
            return None;
        }
        // SAFETY: the plugin wrote `len` readable bytes at `pointer`.
        let bytes = unsafe { std::slice::from_raw_parts(pointer, len) }.to_vec();
        // SAFETY: the buffer is the plugin's and is returned exactly once.
        unsafe { (self.functions.free)(pointer, len) };
        Some(bytes)
    }
}

/// What makes a description unusable, if anything.
fn description_problem(description: &Description) -> Option<String> {
    if description.version != WIRE_VERSION {
        return Some(format!(
            "version {} where {WIRE_VERSION} was expected",
            description.version
        ));
    }
    if description.concurrency == 0 {
        return Some("concurrency 0; it must be at least 1".to_owned());
    }
    if description.channels.is_empty() {
        return Some("no channels; an instance must serve at least one".to_owned());
    }
    let empty = description
        .channels
        .iter()
        .position(|c| c.name.trim().is_empty());
    empty.map(|index| format!("channel {index} has an empty name"))
}

fn read_str(path: &Path, field: &'static str, text: *const c_char) -> Result<String, LoadError> {
    if text.is_null() {
        return Err(LoadError::BadTable {
            path: path.to_path_buf(),
            field,
            problem: "null",
        });
    }
    // SAFETY: non-null and NUL-terminated per the ABI, static for the library's life.
    let text = unsafe { CStr::from_ptr(text) };
    text.to_str()
        .map(str::to_owned)
        .map_err(|_| LoadError::BadTable {
            path: path.to_path_buf(),
            field,
            problem: "not UTF-8",
        })
}

/// One plugin instance. Destroyed when the last handle goes, which is
/// after the last call on it (even an abandoned one) has returned.
pub struct Instance {
    library: PluginLibrary,
    pointer: NonNull<c_void>,
}

// SAFETY: the ABI requires instances to be usable from any thread, and
// concurrently from up to `concurrency` threads for `send_batch`.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("library", &self.library)
            .finish_non_exhaustive()
    }
}

/// What `send_batch` returned, before any parsing.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// The return code.
    pub code: i32,
    /// The output buffer (results JSON, or error text), empty when none.
    pub bytes: Vec<u8>,
}

impl Instance {
    /// The library this instance came from.
    pub fn library(&self) -> &PluginLibrary {
        &self.library
    }

    /// Asks the instance what it serves, and checks the answer.
    pub fn describe(&self) -> Result<Description, LoadError> {
        let path = || self.library.path.clone();
        let (mut out, mut out_len): (*mut u8, usize) = (std::ptr::null_mut(), 0);
        // SAFETY: a live instance and writable out slots, per `DescribeFn`.
        let code = unsafe {
            (self.library.functions.describe)(self.pointer.as_ptr(), &mut out, &mut out_len)
        };
        let bytes = self.library.take(out, out_len).unwrap_or_default();
        if code != HERALD_OK {
            let reason = format!(
                "describe failed with code {code}: {}",
                String::from_utf8_lossy(&bytes)
            );
            return Err(LoadError::Description {
                path: path(),
                reason,
            });
        }
        let description: Description =
            serde_json::from_slice(&bytes).map_err(|e| LoadError::Description {
                path: path(),
                reason: format!("describe returned invalid JSON: {e}"),
            })?;
        match description_problem(&description) {
            Some(reason) => Err(LoadError::Description {
                path: path(),
                reason,
            }),
            None => Ok(description),
        }
    }

    /// Calls `send_batch` with encoded batch JSON. Blocks for as long as the
    /// plugin takes: call it only from a dedicated thread.
    pub fn send_batch(&self, batch: &[u8]) -> RawReply {
        let (mut out, mut out_len): (*mut u8, usize) = (std::ptr::null_mut(), 0);
        // SAFETY: a live instance, a readable batch, writable out slots,
        // per `SendBatchFn`; the plugin declared itself thread-safe.
        let code = unsafe {
            (self.library.functions.send_batch)(
                self.pointer.as_ptr(),
                batch.as_ptr(),
                batch.len(),
                &mut out,
                &mut out_len,
            )
        };
        RawReply {
            code,
            bytes: self.library.take(out, out_len).unwrap_or_default(),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone, so no call runs or will follow.
        unsafe { (self.library.functions.destroy)(self.pointer.as_ptr()) };
    }
}
