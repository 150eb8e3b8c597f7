//! Same seed, same data, same machine: the same losses, metrics and weights.

mod common;

use std::time::Duration;

use common::{TestServer, demo_file, best_evaluation, scratch_encoder, seq2seq, upload, wait_for_end};
use labelaug::client::Client;
use labelaug::data::Format;
use labelaug::pb;


async fn train(client: &mut Client, train: &str, test: &str, seed: u64) -> pb::Job {
    let request = pb::StartTrainingRequest {
        train_dataset_id: train.to_string(),
        eval_dataset_id: test.to_string(),
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: scratch_encoder(1, 32, 2, 1000),
        tasks: seq2seq(0.5),
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(2),
            batch_size: Some(16),
            learning_rate: Some(3e-3),
            max_length: Some(32),
            seed: Some(seed),
            ..Default::default()
        }),
        ..Default::default()
    };
    let job_id = client.start_training(request).await.expect("StartTraining").into_inner().job_id;
    wait_for_end(client, &job_id, Duration::from_secs(300)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_gives_same_model() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let train_id = upload(&mut client, &demo_file("train.csv"), Format::Csv).await;
    let test_id = upload(&mut client, &demo_file("test.csv"), Format::Csv).await;

    let first = train(&mut client, &train_id, &test_id, 11).await;
    let second = train(&mut client, &train_id, &test_id, 11).await;
    let other = train(&mut client, &train_id, &test_id, 12).await;
    for job in [&first, &second, &other] {
        best_evaluation(job);
    }
    assert_eq!(first.losses, second.losses);
    assert_eq!(first.evaluations, second.evaluations);
    let weights = |job: &pb::Job| {
        let path = server.data_dir.path().join("models").join(&job.model_id).join("model.safetensors");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    assert!(weights(&first) == weights(&second), "same seed gave different weights");
    assert!(weights(&first) != weights(&other), "a different seed gave the same weights");
    server.stop().await;
}
