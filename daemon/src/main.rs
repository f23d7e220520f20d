//! The `herald` binary: parse the command line, start logging, run the
//! command, choose the exit code. Everything else lives in the library.

/// jemalloc, not glibc's malloc: the daemon allocates small and often
/// from several threads, and glibc's arenas made `malloc`/`free` a third
/// of its CPU and their locks a good share of its thread switches
/// (benches/README.md, P4 (b) session 6: daemon CPU per one-recipient
/// run halved, P1's per recipient down a quarter, P6's growth within
/// its target).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    herald::cli::main()
}
