//! `gatehouse-topology`: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    gatehouse_topology::cli::main()
}
