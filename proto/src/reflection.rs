//! gRPC server reflection, v1 and v1alpha (the version many tools still ask for), listing exactly
//! the services one server serves: a tool pointed at a port sees what it can call there.

use tonic_reflection::server::{Builder, Error, v1, v1alpha};

/// The reflection services themselves, listed beside the served ones.
pub const REFLECTION: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn builder(services: &[&str]) -> Builder<'static> {
    let mut b = Builder::configure()
        .register_encoded_file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    for name in services.iter().chain(REFLECTION.iter()) {
        b = b.with_service_name(*name);
    }
    b
}

/// Reflection v1 and v1alpha for a server that serves `services` (fully qualified names).
#[allow(clippy::type_complexity)]
pub fn serve(
    services: &[&str],
) -> Result<
    (
        v1::ServerReflectionServer<impl v1::ServerReflection + use<>>,
        v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection + use<>>,
    ),
    Error,
> {
    Ok((
        builder(services).build_v1()?,
        builder(services).build_v1alpha()?,
    ))
}
