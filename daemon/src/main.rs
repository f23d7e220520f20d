//! The `herald` binary: parse the command line, start logging, run the
//! command, choose the exit code. Everything else lives in the library.

fn main() -> std::process::ExitCode {
    herald::cli::main()
}
