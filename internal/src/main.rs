//! `gatehouse-internal`: parses the command line and hands over to the library.

/// mimalloc instead of glibc's malloc: about a third less CPU per proxied request, and the
/// memory of closed or parked connections goes back to the system (bench/RESULTS.md, issue 17).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    gatehouse_internal::main()
}
