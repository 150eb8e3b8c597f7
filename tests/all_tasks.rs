//! Every auxiliary task at once through gRPC: each task's loss is reported
//! and falls during training, and self-distillation starts in epoch 2.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{TestServer, best_evaluation, upload};
use labelaug::data::Format;
use labelaug::pb;

const TASKS: [(&str, f32); 5] = [
    ("seq2seq", 0.2),
    ("similarity", 0.5),
    ("similarity_masked", 0.5),
    ("description_records", 1.0),
    ("self_distill", 0.5),
];

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_loss_is_reported_and_falls() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let train = upload(&mut client, &common::demo_file("train.csv"), Format::Csv).await;
    let test = upload(&mut client, &common::demo_file("test.csv"), Format::Csv).await;
    let request = pb::StartTrainingRequest {
        train_dataset_id: train,
        eval_dataset_id: test,
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: common::scratch_encoder(1, 32, 2, 1000),
        tasks: TASKS
            .iter()
            .map(|(name, weight)| pb::TaskSpec {
                name: name.to_string(),
                weight: *weight,
                options: Default::default(),
            })
            .collect(),
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(6),
            batch_size: Some(16),
            learning_rate: Some(3e-3),
            max_length: Some(32),
            seed: Some(2),
            ..Default::default()
        }),
        ..Default::default()
    };
    let job_id = client.start_training(request).await.expect("StartTraining").into_inner().job_id;

    // Every reported loss value, by task, in the order the watch saw them.
    let mut history: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut stream = client
        .watch_job(pb::JobStatusRequest { job_id: job_id.clone() })
        .await
        .expect("WatchJob")
        .into_inner();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut last = None;
    while let Some(job) = tokio::time::timeout(Duration::from_secs(60), stream.message())
        .await
        .expect("a message within 60 s")
        .expect("stream item")
    {
        if job.epoch <= 1 {
            assert!(
                !job.losses.contains_key("self_distill"),
                "self-distillation is active in epoch 1: {:?}",
                job.losses
            );
        }
        for (name, value) in &job.losses {
            history.entry(name.clone()).or_default().push(*value);
        }
        last = Some(job);
        assert!(Instant::now() < deadline, "the job did not end");
    }
    let job = last.expect("at least one message");
    best_evaluation(&job);
    for (name, _) in TASKS.iter().chain([("classification", 1.0)].iter()) {
        let values = history.get(*name).unwrap_or_else(|| panic!("no {name} loss reported: {:?}", job.losses));
        assert!(values.len() >= 4, "{name}: only {} values", values.len());
        assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0), "{name}: {values:?}");
        if *name == "self_distill" {
            // The student starts every epoch equal to its teacher, so this
            // term measures the drift within an epoch rather than a fit
            // that improves over training.
            assert!(values.iter().any(|v| *v > 0.0), "self_distill never left 0");
            continue;
        }
        let third = values.len() / 3;
        let early = mean(&values[..third]);
        let late = mean(&values[values.len() - third..]);
        assert!(late < early, "{name} loss did not fall: {early} then {late}");
    }
    server.stop().await;
}
