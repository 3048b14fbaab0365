//! What the end-to-end test binaries share (the gateway's and the mock database's); the
//! gateway's own helpers are in `tests/tests/gateway/helpers.rs`.

/// The services a server lists through reflection (v1 or v1alpha), sorted.
pub async fn reflected_services(channel: tonic::transport::Channel, v1alpha: bool) -> Vec<String> {
    macro_rules! list {
        ($v:ident) => {{
            use tonic_reflection::pb::$v::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut replies = ServerReflectionClient::new(channel)
                .server_reflection_info(tokio_stream::iter([request]))
                .await
                .unwrap()
                .into_inner();
            let reply = replies.message().await.unwrap().unwrap();
            let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
                panic!("unexpected reflection reply {reply:?}");
            };
            list.service.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }};
    }
    let mut names = if v1alpha { list!(v1alpha) } else { list!(v1) };
    names.sort();
    names
}
