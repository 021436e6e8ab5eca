fn main() -> std::process::ExitCode {
    foldsweep::cli::main()
}
