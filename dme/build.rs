//! Compiles the DME wire protos with protox (pure Rust: no `protoc` needed), generates the tonic
//! services, serde (grpc-gateway style JSON: proto field names, enums by name) for REST, and a
//! descriptor set for gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(["app-client.proto"], ["proto"])?;
    let descriptor_path = out.join("dme_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .build(&[".distributed_match_engine"])?;
    Ok(())
}
