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
    // Number fields go through our one-visitor reader (see src/json_num.rs for why).
    let serde_rs = out.join("distributed_match_engine.serde.rs");
    let generated = std::fs::read_to_string(&serde_rs)?;
    let patched = generated.replace(
        "::pbjson::private::NumberDeserialize",
        "crate::json_num::Num",
    );
    if patched == generated {
        return Err(
            "pbjson output has no NumberDeserialize to replace: check src/json_num.rs".into(),
        );
    }
    std::fs::write(&serde_rs, patched)?;
    Ok(())
}
