fn main() -> std::process::ExitCode {
    foldsweep::backend::use_all_cores_for_matrix_products();
    foldsweep::cli::main()
}
