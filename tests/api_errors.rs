//! Bad requests and unknown ids get the right gRPC code and a message that
//! names the field (or file and line) and the value; nothing is stored.

mod common;

use std::path::Path;

use common::{TestServer, upload};
use labelaug::client::{self, Client};
use labelaug::data::Format;
use labelaug::pb;
use tonic::Code;

fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

const GOOD_JSONL: &str = "{\"text\": \"the card never came\", \"label\": \"card\"}\n\
{\"text\": \"what is the rate\", \"label\": \"rate\"}\n\
{\"text\": \"where is my card\", \"label\": \"card\"}\n";

async fn start_request(client: &mut Client, request: pb::StartTrainingRequest) -> tonic::Status {
    client.start_training(request).await.expect_err("request must be rejected")
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = client::job_status(&mut client, "job-missing").await.unwrap_err();
    let status = status.downcast_ref::<tonic::Status>().expect("gRPC status");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("job-missing"), "{}", status.message());

    let status = client
        .classify(pb::ClassifyRequest {
            model_id: "model-missing".to_string(),
            texts: vec!["hello".to_string()],
            top_k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("model-missing"));

    let status = start_request(
        &mut client,
        pb::StartTrainingRequest {
            train_dataset_id: "ds-missing".to_string(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("train_dataset_id"), "{}", status.message());
    assert!(status.message().contains("ds-missing"), "{}", status.message());
    server.stop().await;
}

#[tokio::test]
async fn invalid_uploads_name_file_and_line_and_leave_nothing() {
    let server = TestServer::start_with(|config| config.max_upload_bytes = 1000).await;
    let dir = tempfile::tempdir().unwrap();
    let mut client = server.client().await;

    let broken = write(dir.path(), "broken.jsonl", "{\"text\": \"a\", \"label\": 1}\n\n{\"text\": \"b\", \n");
    let error = client::upload_file(&mut client, &broken, Format::Jsonl).await.unwrap_err();
    let status = error.downcast_ref::<tonic::Status>().expect("gRPC status");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("broken.jsonl"), "{}", status.message());
    assert!(status.message().contains("line 3"), "{}", status.message());

    let large = write(dir.path(), "large.csv", &format!("text,label\n{}", "hello,a\n".repeat(200)));
    let error = client::upload_file(&mut client, &large, Format::Csv).await.unwrap_err();
    let status = error.downcast_ref::<tonic::Status>().expect("gRPC status");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("1000 bytes"), "{}", status.message());

    let chunk_first = client
        .upload_dataset(tokio_stream::iter(vec![pb::UploadDatasetRequest {
            part: Some(pb::upload_dataset_request::Part::Chunk(b"text,label\n".to_vec())),
        }]))
        .await
        .unwrap_err();
    assert_eq!(chunk_first.code(), Code::InvalidArgument);
    assert!(chunk_first.message().contains("header"));

    let no_format = client
        .upload_dataset(tokio_stream::iter(vec![pb::UploadDatasetRequest {
            part: Some(pb::upload_dataset_request::Part::Header(pb::DatasetHeader {
                file_name: "x.csv".to_string(),
                format: 0,
            })),
        }]))
        .await
        .unwrap_err();
    assert_eq!(no_format.code(), Code::InvalidArgument);
    assert!(no_format.message().contains("header.format"), "{}", no_format.message());

    let data_dir = server.data_dir.path().to_path_buf();
    assert!(files_in(&data_dir.join("tmp")).is_empty(), "{:?}", files_in(&data_dir.join("tmp")));
    assert!(files_in(&data_dir.join("datasets")).is_empty());
    server.stop().await;
}

fn request_for(train: &str) -> pb::StartTrainingRequest {
    pb::StartTrainingRequest {
        train_dataset_id: train.to_string(),
        ..Default::default()
    }
}

#[tokio::test]
async fn invalid_training_requests_name_the_field() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut client = server.client().await;
    let good = upload(&mut client, &write(dir.path(), "good.jsonl", GOOD_JSONL), Format::Jsonl).await;

    let mut request = request_for(&good);
    request.hyperparameters = Some(pb::Hyperparameters {
        epochs: Some(0),
        ..Default::default()
    });
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("hyperparameters.epochs = 0"), "{}", status.message());

    let mut request = request_for(&good);
    request.hyperparameters = Some(pb::Hyperparameters {
        learning_rate: Some(f64::NAN),
        ..Default::default()
    });
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("hyperparameters.learning_rate"), "{}", status.message());

    let mut request = request_for(&good);
    request.tasks = vec![pb::TaskSpec {
        name: "similarity_x".to_string(),
        weight: 1.0,
        ..Default::default()
    }];
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("tasks[0].name = similarity_x"), "{}", status.message());

    let mut request = request_for(&good);
    request.tasks = vec![pb::TaskSpec {
        name: "seq2seq".to_string(),
        weight: -0.5,
        ..Default::default()
    }];
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("tasks[seq2seq].weight = -0.5"), "{}", status.message());

    let mut request = request_for(&good);
    request.encoder = Some(pb::EncoderSpec {
        source: Some(pb::encoder_spec::Source::Scratch(pb::ScratchEncoder {
            hidden_size: 100,
            num_heads: 3,
            ..Default::default()
        })),
    });
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("encoder.scratch.num_heads = 3"), "{}", status.message());

    let mut request = request_for(&good);
    request.encoder = Some(pb::EncoderSpec {
        source: Some(pb::encoder_spec::Source::Pretrained(pb::PretrainedEncoder {
            source: Some(pb::pretrained_encoder::Source::Path("/models/bert".to_string())),
        })),
    });
    let status = start_request(&mut client, request).await;
    // The server has no --model-root, so it reads no server path.
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("/models/bert"), "{}", status.message());

    let mut request = request_for(&good);
    request.encoder = Some(pb::EncoderSpec {
        source: Some(pb::encoder_spec::Source::Pretrained(pb::PretrainedEncoder { source: None })),
    });
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("encoder.pretrained"), "{}", status.message());

    let mut request = request_for(&good);
    request.fields = Some(pb::FieldMapping {
        text_field: "sentence".to_string(),
        ..Default::default()
    });
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("good.jsonl line 1"), "{}", status.message());
    assert!(status.message().contains("sentence"), "{}", status.message());

    let single = upload(
        &mut client,
        &write(dir.path(), "single.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\", \"label\": 1}\n"),
        Format::Jsonl,
    )
    .await;
    let status = start_request(&mut client, request_for(&single)).await;
    assert_eq!(status.code(), Code::InvalidArgument);

    let foreign = upload(
        &mut client,
        &write(dir.path(), "eval.jsonl", "{\"text\": \"c\", \"label\": \"card\"}\n{\"text\": \"d\", \"label\": \"loan\"}\n"),
        Format::Jsonl,
    )
    .await;
    let mut request = request_for(&good);
    request.eval_dataset_id = foreign;
    let status = start_request(&mut client, request).await;
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("eval.jsonl"), "{}", status.message());
    assert!(status.message().contains("loan"), "{}", status.message());

    let status = client
        .job_status(pb::JobStatusRequest { job_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("job_id"));
    server.stop().await;
}

#[tokio::test]
async fn classify_rejects_empty_texts() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = client
        .classify(pb::ClassifyRequest {
            model_id: String::new(),
            texts: vec!["a".to_string()],
            top_k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("model_id"));

    let status = client
        .classify(pb::ClassifyRequest {
            model_id: "model-any".to_string(),
            texts: vec!["fine".to_string(), " \t".to_string()],
            top_k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("texts[1]"), "{}", status.message());
    server.stop().await;
}
