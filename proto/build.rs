//! Compiles the `.proto` contract with protox (pure Rust): no protoc needed on the machine.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/lienthong/csdl/v1/csdl.proto",
    "proto/lienthong/gateway/v1/gateway.proto",
    "proto/lienthong/audit/v1/audit.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set is embedded for gRPC server reflection.
    std::fs::write(
        out_dir.join("lienthong_descriptor.bin"),
        fds.encode_to_vec(),
    )?;
    // The well-known types come from pbjson-types, which gives them the protobuf JSON mapping
    // (a Timestamp is an RFC 3339 string); pbjson-build does the same for every message, for
    // the gateway's HTTP/JSON API.
    let descriptors = fds.encode_to_vec();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".lienthong"])?;
    Ok(())
}
