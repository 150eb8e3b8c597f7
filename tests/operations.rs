//! Generic gRPC tooling works: the health service and server reflection.

mod common;

use common::TestServer;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

async fn channel(server: &TestServer) -> Channel {
    Channel::from_shared(server.address.clone()).unwrap().connect().await.unwrap()
}

#[tokio::test]
async fn health_reports_serving() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(channel(&server).await);
    let response = health
        .check(HealthCheckRequest {
            service: "labelaug.v1.Labelaug".to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.status(), ServingStatus::Serving);
    let unknown = health
        .check(HealthCheckRequest {
            service: "no.such.Service".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    server.stop().await;
}

async fn reflect(server: &TestServer, request: MessageRequest) -> MessageResponse {
    let mut reflection = ServerReflectionClient::new(channel(&server).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().expect("one response");
    response.message_response.expect("message response")
}

#[tokio::test]
async fn reflection_lists_and_describes_services() {
    let server = TestServer::start().await;
    let MessageResponse::ListServicesResponse(list) = reflect(&server, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"labelaug.v1.Labelaug"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    let MessageResponse::FileDescriptorResponse(files) =
        reflect(&server, MessageRequest::FileContainingSymbol("labelaug.v1.Labelaug".to_string())).await
    else {
        panic!("expected file descriptors");
    };
    let descriptor = files.file_descriptor_proto.first().expect("a file descriptor");
    let text = String::from_utf8_lossy(descriptor);
    assert!(text.contains("labelaug/v1/labelaug.proto"), "descriptor names the proto file");
    assert!(text.contains("StartTraining"));
    server.stop().await;
}
