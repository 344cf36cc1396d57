//! Compiles the control-plane protos with protox (pure Rust: no `protoc` needed), generates the
//! tonic services (server and client), serde for the messages (the controller's REST mirror and
//! `edgectl -o json`: proto field names, enums by name, as the DME's REST), and writes a
//! descriptor set for gRPC server reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(
        ["objects.proto", "controller.proto", "notify.proto"],
        ["proto"],
    )?;
    let descriptors = prost::Message::encode_to_vec(&fds);
    std::fs::write(out.join("edgeplane_descriptor.bin"), &descriptors)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .build(&[".edgeplane.v1"])?;
    Ok(())
}
