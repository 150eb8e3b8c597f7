//! Every auxiliary task at once through gRPC: each task's loss is reported
//! and falls during training, and self-distillation starts in epoch 2.
//! `distill` learns from a model trained first; a teacher with another label
//! set is refused, and a teacher in use cannot be deleted.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{TestServer, best_evaluation, upload};
use labelaug::data::Format;
use labelaug::pb;

const TASKS: [(&str, f32); 7] = [
    ("seq2seq", 0.2),
    ("similarity", 0.5),
    ("similarity_masked", 0.5),
    ("description_records", 1.0),
    ("mlm", 0.3),
    ("self_distill", 0.5),
    ("distill", 0.5),
];

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn training_request(train: &str, test: &str, tasks: Vec<pb::TaskSpec>, epochs: u32) -> pb::StartTrainingRequest {
    pb::StartTrainingRequest {
        train_dataset_id: train.to_string(),
        eval_dataset_id: test.to_string(),
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: common::scratch_encoder(1, 32, 2, 1000),
        tasks,
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(epochs),
            batch_size: Some(16),
            learning_rate: Some(3e-3),
            max_length: Some(32),
            seed: Some(2),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes the demo training records of the first three intents only.
fn three_intents(dir: &std::path::Path) -> std::path::PathBuf {
    let mut reader = csv::Reader::from_path(common::demo_file("train.csv")).expect("demo train.csv");
    let path = dir.join("three-intents.csv");
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(["text", "category"]).unwrap();
    let mut kept: Vec<String> = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        if !kept.contains(&record[1].to_string()) && kept.len() < 3 {
            kept.push(record[1].to_string());
        }
        if kept.contains(&record[1].to_string()) {
            writer.write_record(&record).unwrap();
        }
    }
    writer.flush().unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_loss_is_reported_and_falls() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let train = upload(&mut client, &common::demo_file("train.csv"), Format::Csv).await;
    let test = upload(&mut client, &common::demo_file("test.csv"), Format::Csv).await;

    // The distill teacher: a plain model on the same data.
    let teacher_job = client
        .start_training(training_request(&train, &test, Vec::new(), 4))
        .await
        .expect("StartTraining of the teacher")
        .into_inner()
        .job_id;
    let teacher = common::wait_for_end(&mut client, &teacher_job, Duration::from_secs(300)).await;
    best_evaluation(&teacher);
    let teacher_id = teacher.model_id.clone();
    let tasks: Vec<pb::TaskSpec> = TASKS
        .iter()
        .map(|(name, weight)| pb::TaskSpec {
            name: name.to_string(),
            weight: *weight,
            teacher_model_id: if *name == "distill" { teacher_id.clone() } else { String::new() },
            ..Default::default()
        })
        .collect();

    // A student whose data has three of the teacher's ten intents.
    let scratch = tempfile::tempdir().unwrap();
    let subset = upload(&mut client, &three_intents(scratch.path()), Format::Csv).await;
    let status = client
        .start_training(training_request(&subset, "", tasks.clone(), 1))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{}", status.message());
    assert!(status.message().contains("teacher_model_id"), "{}", status.message());
    assert!(status.message().contains("is in the teacher only"), "{}", status.message());
    let mut missing = tasks.clone();
    for task in &mut missing {
        task.teacher_model_id = String::new();
    }
    let status = client.start_training(training_request(&train, &test, missing, 1)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("tasks[distill].teacher_model_id"), "{}", status.message());

    let request = training_request(&train, &test, tasks, 6);
    let job_id = client.start_training(request).await.expect("StartTraining").into_inner().job_id;
    let status = client
        .delete_model(pb::DeleteModelRequest {
            model_id: teacher_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{}", status.message());
    assert!(status.message().contains(&job_id), "{}", status.message());

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
    // Once the student has ended, the teacher can go.
    client
        .delete_model(pb::DeleteModelRequest { model_id: teacher_id })
        .await
        .expect("DeleteModel of the teacher after the job");
    server.stop().await;
}
