//! Compiles the floor service with protox (no `protoc`), reusing the DME's messages (`dme-api`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=../dme/api/proto");
    let fds = protox::compile(["floor.proto"], ["proto", "../dme/api/proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".distributed_match_engine", "::dme_api::proto")
        .compile_fds(fds)?;
    Ok(())
}
