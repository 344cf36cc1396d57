//! Compiles the control-plane protos with protox (pure Rust: no `protoc` needed), generates the
//! tonic services (server and client), and writes a descriptor set for gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(
        ["objects.proto", "controller.proto", "notify.proto"],
        ["proto"],
    )?;
    std::fs::write(
        out.join("edgeplane_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
