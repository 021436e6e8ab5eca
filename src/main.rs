//! The `foldsweep` binary: the process allocator and the command line. Everything else is the
//! library's (see `lib.rs` for the module map).

mod alloc;

fn main() -> std::process::ExitCode {
    foldsweep::cli::main()
}
