// See Cargo.toml: large blocks page-aligned and reused instead of re-faulted every step.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    foldsweep::cli::main()
}
