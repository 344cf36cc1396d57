//! `edgectl`: the command line for a region. All logic lives in the `edgectl` crate.

fn main() -> std::process::ExitCode {
    edgectl::cli::main()
}
