//! The `herald` binary: parse the command line, start logging, run the
//! command, choose the exit code. Everything else lives in the library.

// glibc's malloc cost a third of the daemon's CPU on the sending path
// (many small, short-lived buffers freed on other threads); mimalloc's
// per-thread free lists cost a fraction of that (benches/README.md, P1).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    herald::cli::main()
}
