//! The wire contract of Liên Thông, generated from `proto/` at build time, and the one place
//! where wire types and domain types meet.
#![forbid(unsafe_code)]

pub mod csdl {
    //! `lienthong.csdl.v1`: the mock national population database.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("lienthong.csdl.v1");
        include!(concat!(env!("OUT_DIR"), "/lienthong.csdl.v1.serde.rs"));
    }
}

pub mod gateway {
    //! `lienthong.gateway.v1`: the gateway one-stop systems call.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("lienthong.gateway.v1");
        include!(concat!(env!("OUT_DIR"), "/lienthong.gateway.v1.serde.rs"));
    }
}

pub mod audit {
    //! `lienthong.audit.v1`: the audit trail, for reviewers.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("lienthong.audit.v1");
        include!(concat!(env!("OUT_DIR"), "/lienthong.audit.v1.serde.rs"));
    }
}

/// `google.protobuf.Timestamp`, with its protobuf JSON mapping (an RFC 3339 string).
pub use pbjson_types::Timestamp;

pub mod convert;
pub mod reflection;

/// The encoded `FileDescriptorSet` of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lienthong_descriptor.bin"));
