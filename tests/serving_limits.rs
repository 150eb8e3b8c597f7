//! Classify limits and unusual texts, Classify under load while a job
//! trains, and interrupted uploads.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{TestServer, demo_file, upload, wait_for_end};
use labelaug::client::{self, Client};
use labelaug::data::Format;
use labelaug::pb;
use tonic::Code;


async fn start_job(client: &mut Client, train: &str, epochs: u32) -> String {
    let request = pb::StartTrainingRequest {
        train_dataset_id: train.to_string(),
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: common::scratch_encoder(1, 32, 2, 1000),
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(epochs),
            learning_rate: Some(3e-3),
            max_length: Some(16),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.start_training(request).await.expect("StartTraining").into_inner().job_id
}

async fn trained_model(client: &mut Client) -> String {
    let train = upload(client, &demo_file("train.csv"), Format::Csv).await;
    let job_id = start_job(client, &train, 1).await;
    let job = wait_for_end(client, &job_id, Duration::from_secs(300)).await;
    assert!(!job.model_id.is_empty(), "{}", job.error);
    job.model_id
}

fn request(model_id: &str, texts: &[&str]) -> pb::ClassifyRequest {
    pb::ClassifyRequest {
        model_id: model_id.to_string(),
        texts: texts.iter().map(|t| t.to_string()).collect(),
        top_k: 10,
        error_on_truncation: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classify_limits_and_unusual_texts() {
    let server = TestServer::start_with(|config| {
        config.classify_limits.max_texts = 3;
        config.classify_limits.max_text_bytes = 100;
    })
    .await;
    let mut client = server.client().await;
    let model_id = trained_model(&mut client).await;

    let status = client.classify(request(&model_id, &["a", "b", "c", "d"])).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("4 texts exceed the maximum of 3"), "{}", status.message());

    let long = "x".repeat(101);
    let status = client.classify(request(&model_id, &["ok", &long])).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("texts[1]: 101 bytes"), "{}", status.message());

    let wordy = "card ".repeat(19);
    let response = client.classify(request(&model_id, &[&wordy])).await.unwrap().into_inner();
    assert!(response.results[0].truncated, "16 tokens at most, 19 words given");
    let mut strict = request(&model_id, &["fine", &wordy]);
    strict.error_on_truncation = true;
    let status = client.classify(strict).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("texts[1]"), "{}", status.message());
    assert!(status.message().contains("maximum of 16 tokens"), "{}", status.message());

    // Emoji, mixed scripts, control characters, right-to-left text and
    // combining marks are classified like any other text.
    for text in ["😀🎉", "card 卡 カード карта", "card\u{0007}\u{001b}lost", "بطاقة", "e\u{0301}\u{0301}"] {
        let response = client.classify(request(&model_id, &[text])).await.unwrap().into_inner();
        let result = &response.results[0];
        assert_eq!(result.labels.len(), 10, "{text:?}");
        let total: f64 = result.labels.iter().map(|l| l.probability).sum();
        assert!((total - 1.0).abs() < 1e-6, "{text:?}: probabilities sum to {total}");
        assert!(!result.truncated);
    }
    for text in ["", "   ", "\t\n"] {
        let status = client.classify(request(&model_id, &[text])).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{text:?}");
        assert!(status.message().contains("texts[0]"), "{}", status.message());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_classify_while_training() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let model_id = trained_model(&mut client).await;
    let train = upload(&mut client, &demo_file("train.csv"), Format::Csv).await;
    let training = start_job(&mut client, &train, 200).await;
    let texts = ["my card has not arrived", "I forgot my PIN", "exchange rate for euros"];
    let expected = client.classify(request(&model_id, &texts)).await.unwrap().into_inner().results;

    // 8 clients, 25 calls each, all on 127.0.0.1.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = server.client().await;
        let model_id = model_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..25 {
                let response = client.classify(request(&model_id, &texts)).await.expect("Classify");
                results.push(response.into_inner().results);
            }
            results
        }));
    }
    let deadline = Duration::from_secs(300);
    for task in tasks {
        let results = tokio::time::timeout(deadline, task).await.expect("calls finish").expect("task");
        assert_eq!(results.len(), 25);
        for result in results {
            assert_eq!(result, expected);
        }
    }
    let job = client::job_status(&mut client, &training).await.unwrap();
    assert_eq!(job.state, pb::JobState::Running as i32, "training ran during the calls");
    client
        .cancel_job(pb::CancelJobRequest { job_id: training.clone() })
        .await
        .unwrap();
    wait_for_end(&mut client, &training, Duration::from_secs(120)).await;
    server.stop().await;
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_upload_leaves_nothing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    sender
        .send(pb::UploadDatasetRequest {
            part: Some(pb::upload_dataset_request::Part::Header(pb::DatasetHeader {
                file_name: "partial.csv".to_string(),
                format: pb::DataFormat::Csv as i32,
            })),
        })
        .await
        .unwrap();
    sender
        .send(pb::UploadDatasetRequest {
            part: Some(pb::upload_dataset_request::Part::Chunk(b"text,label\nhello,a\n".to_vec())),
        })
        .await
        .unwrap();
    let mut upload_client = client.clone();
    let upload = tokio::spawn(async move {
        upload_client
            .upload_dataset(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
    });

    let tmp = server.data_dir.path().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(30);
    while entries(&tmp) == 0 {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The client goes away in the middle of the stream.
    upload.abort();
    drop(sender);
    let deadline = Instant::now() + Duration::from_secs(30);
    while entries(&tmp) != 0 {
        assert!(Instant::now() < deadline, "the partial upload was not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(entries(&server.data_dir.path().join("datasets")), 0);
    server.stop().await;
}

/// ClassifyRequest with `texts` as raw bytes, to send invalid UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawClassifyRequest {
    #[prost(string, tag = "1")]
    model_id: String,
    #[prost(bytes = "vec", repeated, tag = "2")]
    texts: Vec<Vec<u8>>,
}

#[tokio::test]
async fn invalid_utf8_text_is_rejected_at_decoding() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(server.address.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = RawClassifyRequest {
        model_id: "model-any".to_string(),
        texts: vec![b"ok".to_vec(), vec![0xff, 0xfe, b'a']],
    };
    let codec = tonic_prost::ProstCodec::<RawClassifyRequest, pb::ClassifyResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/labelaug.v1.Labelaug/Classify");
    let status = grpc
        .unary(tonic::Request::new(request), path, codec)
        .await
        .unwrap_err();
    // The gRPC status-code table assigns INTERNAL to a request that cannot
    // be parsed; the handler never runs.
    assert_eq!(status.code(), Code::Internal);
    assert!(status.message().contains("UTF-8"), "{}", status.message());

    // The server still responds to well-formed calls.
    let mut client = server.client().await;
    let status = client.classify(request_for_missing()).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}

fn request_for_missing() -> pb::ClassifyRequest {
    request("model-any", &["fine"])
}
