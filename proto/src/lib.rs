//! The wire contract of Liên Thông, generated from `proto/` at build time, and the one place
//! where wire types and domain types meet.
#![forbid(unsafe_code)]

pub mod csdl {
    //! `lienthong.csdl.v1`: the mock national population database.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("lienthong.csdl.v1");
    }
}

pub mod gateway {
    //! `lienthong.gateway.v1`: the gateway one-stop systems call.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("lienthong.gateway.v1");
    }
}

pub mod audit {
    //! `lienthong.audit.v1`: the audit trail, for reviewers.
    pub mod v1 {
        #![allow(clippy::all)]
        tonic::include_proto!("lienthong.audit.v1");
    }
}

pub mod convert;
pub mod reflection;

/// The encoded `FileDescriptorSet` of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/lienthong_descriptor.bin"));
