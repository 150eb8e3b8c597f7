//! Bearer-token authentication and the Prometheus metrics endpoint.

mod common;

use std::time::Duration;

use common::{TestServer, upload, wait_for_end};
use labelaug::client;
use labelaug::data::Format;
use labelaug::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn calls_without_the_token_are_unauthenticated() {
    let server = TestServer::start_with(|config| config.auth_token = Some("let-me-in".to_string())).await;

    let mut anonymous = client::connect(&server.address).await.unwrap();
    let status = anonymous
        .job_status(pb::JobStatusRequest {
            job_id: "job-x".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("bearer token"), "{}", status.message());

    let mut wrong = client::connect_with_token(&server.address, Some("let-me-out")).await.unwrap();
    let status = wrong.list_models(pb::ListModelsRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let mut allowed = client::connect_with_token(&server.address, Some("let-me-in")).await.unwrap();
    let status = allowed
        .job_status(pb::JobStatusRequest {
            job_id: "job-x".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "authenticated calls reach the service");

    // Health checks stay open for load balancers.
    let channel = tonic::transport::Channel::from_shared(server.address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "labelaug.v1.Labelaug".to_string(),
        })
        .await;
    assert!(health.is_ok());
    server.stop().await;
}

async fn http_get(address: &str, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut response))
        .await
        .expect("metrics response within 10 s")
        .unwrap();
    response
}

fn metric(response: &str, name: &str) -> f64 {
    response
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing from:\n{response}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_jobs_and_classify_calls() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let train = upload(&mut client, &common::demo_file("train.csv"), Format::Csv).await;
    let request = pb::StartTrainingRequest {
        train_dataset_id: train,
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: common::scratch_encoder(1, 32, 2, 1000),
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(1),
            max_length: Some(32),
            ..Default::default()
        }),
        ..Default::default()
    };
    let job_id = client.start_training(request).await.unwrap().into_inner().job_id;
    let job = wait_for_end(&mut client, &job_id, Duration::from_secs(300)).await;
    assert!(!job.model_id.is_empty(), "{}", job.error);
    for _ in 0..3 {
        client::classify(&mut client, &job.model_id, vec!["card lost".to_string()], 1)
            .await
            .unwrap();
    }
    let _ = client::classify(&mut client, "model-missing", vec!["x".to_string()], 1).await;

    let response = http_get(&server.metrics_address, "/metrics").await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert_eq!(metric(&response, "labelaug_jobs{state=\"succeeded\"}"), 1.0);
    assert_eq!(metric(&response, "labelaug_jobs{state=\"running\"}"), 0.0);
    assert_eq!(metric(&response, "labelaug_queue_length"), 0.0);
    assert_eq!(metric(&response, "labelaug_classify_requests_total"), 4.0);
    assert_eq!(metric(&response, "labelaug_classify_errors_total"), 1.0);
    assert_eq!(metric(&response, "labelaug_classify_latency_seconds_count"), 4.0);
    assert_eq!(metric(&response, "labelaug_classify_latency_seconds_bucket{le=\"+Inf\"}"), 4.0);
    assert_eq!(metric(&response, "labelaug_model_cache_misses_total"), 2.0);
    assert_eq!(metric(&response, "labelaug_model_cache_hits_total"), 2.0);

    let missing = http_get(&server.metrics_address, "/other").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    server.stop().await;
}
