//! Compiles `proto/orders.proto` and `proto/catalog.proto` with protox (pure Rust, no `protoc`)
//! into tonic client and server code. Their `google.api.http` bindings import
//! `google/api/annotations.proto`, which the internal gateway ships (internal/proto).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/orders.proto");
    println!("cargo:rerun-if-changed=proto/catalog.proto");
    let fds = protox::compile(
        ["orders.proto", "catalog.proto"],
        ["proto", "../internal/proto"],
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
