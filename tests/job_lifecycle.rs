//! WatchJob, CancelJob, ListJobs, ListModels and DeleteModel through gRPC.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, demo_file, best_evaluation, scratch_encoder, seq2seq, upload, wait_for_end};
use labelaug::client::{self, Client};
use labelaug::data::Format;
use labelaug::pb;
use tonic::Code;


async fn start(client: &mut Client, train: &str, test: &str, epochs: u32) -> String {
    let request = pb::StartTrainingRequest {
        train_dataset_id: train.to_string(),
        eval_dataset_id: test.to_string(),
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: scratch_encoder(1, 32, 2, 1000),
        tasks: seq2seq(0.2),
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(epochs),
            batch_size: Some(16),
            learning_rate: Some(3e-3),
            max_length: Some(32),
            seed: Some(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.start_training(request).await.expect("StartTraining").into_inner().job_id
}

async fn demo_data(client: &mut Client) -> (String, String) {
    let train = upload(client, &demo_file("train.csv"), Format::Csv).await;
    let test = upload(client, &demo_file("test.csv"), Format::Csv).await;
    (train, test)
}

fn state(job: &pb::Job) -> pb::JobState {
    pb::JobState::try_from(job.state).expect("known state")
}

/// Polls until `condition` holds for the job or `limit` passes.
async fn wait_until(client: &mut Client, job_id: &str, limit: Duration, condition: impl Fn(&pb::Job) -> bool) -> pb::Job {
    let deadline = Instant::now() + limit;
    loop {
        let job = client::job_status(client, job_id).await.expect("JobStatus");
        if condition(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "condition not reached within {limit:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_progress_until_end() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (train, test) = demo_data(&mut client).await;
    let job_id = start(&mut client, &train, &test, 3).await;

    let mut stream = client
        .watch_job(pb::JobStatusRequest { job_id: job_id.clone() })
        .await
        .expect("WatchJob")
        .into_inner();
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while let Some(job) = tokio::time::timeout(Duration::from_secs(60), stream.message())
        .await
        .expect("a message within 60 s")
        .expect("stream item")
    {
        messages.push(job);
        assert!(Instant::now() < deadline, "watch did not end");
    }
    let last = messages.last().expect("at least one message");
    assert_eq!(state(last), pb::JobState::Succeeded);
    assert_eq!(last.evaluations.len(), 3);
    assert!(messages.len() >= 4, "{} messages", messages.len());
    for pair in messages.windows(2) {
        assert_ne!(pair[0], pair[1], "a message repeated the previous one");
        assert!(pair[0].step <= pair[1].step, "steps went backwards");
        assert!(pair[0].evaluations.len() <= pair[1].evaluations.len());
    }
    let evaluations_seen: Vec<usize> = messages.iter().map(|m| m.evaluations.len()).collect();
    for count in 1..=3 {
        assert!(evaluations_seen.contains(&count), "no message after evaluation {count}");
    }

    let unknown = client
        .watch_job(pb::JobStatusRequest {
            job_id: "job-missing".to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_running_and_queued_jobs() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (train, test) = demo_data(&mut client).await;
    let running = start(&mut client, &train, &test, 200).await;
    let queued = start(&mut client, &train, &test, 2).await;
    wait_until(&mut client, &running, Duration::from_secs(120), |job| job.step > 0).await;

    // One worker: the second job waits in the queue and never starts.
    let job = client
        .cancel_job(pb::CancelJobRequest { job_id: queued.clone() })
        .await
        .expect("CancelJob")
        .into_inner();
    assert_eq!(state(&job), pb::JobState::Cancelled);
    assert!(job.started_at.is_none());

    client
        .cancel_job(pb::CancelJobRequest { job_id: running.clone() })
        .await
        .expect("CancelJob");
    let job = wait_end(&mut client, &running).await;
    assert_eq!(state(&job), pb::JobState::Cancelled);
    assert!(job.model_id.is_empty(), "a cancelled job published a model");
    assert!(job.step < job.total_steps);

    let again = client
        .cancel_job(pb::CancelJobRequest { job_id: running.clone() })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("cancelled"), "{}", again.message());

    let models = client.list_models(pb::ListModelsRequest {}).await.unwrap().into_inner().models;
    assert!(models.is_empty(), "{models:?}");
    let model_dirs = std::fs::read_dir(server.data_dir.path().join("models")).unwrap().count();
    assert_eq!(model_dirs, 0);
    server.stop().await;
}

async fn wait_end(client: &mut Client, job_id: &str) -> pb::Job {
    wait_for_end(client, job_id, Duration::from_secs(300)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_delete_models_and_jobs() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (train, test) = demo_data(&mut client).await;
    let first = start(&mut client, &train, &test, 1).await;
    let second = start(&mut client, &train, &test, 1).await;
    let first_job = wait_end(&mut client, &first).await;
    let second_job = wait_end(&mut client, &second).await;
    best_evaluation(&first_job);
    best_evaluation(&second_job);

    let all = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner();
    let ids: Vec<&str> = all.jobs.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, vec![second.as_str(), first.as_str()], "newest first");
    assert!(all.next_page_token.is_empty());

    let page = client
        .list_jobs(pb::ListJobsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.jobs[0].job_id, second);
    assert!(!page.next_page_token.is_empty());
    let rest = client
        .list_jobs(pb::ListJobsRequest {
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.jobs.len(), 1);
    assert_eq!(rest.jobs[0].job_id, first);

    let failed = client
        .list_jobs(pb::ListJobsRequest {
            state: pb::JobState::Failed as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(failed.jobs.is_empty());
    let bad_token = client
        .list_jobs(pb::ListJobsRequest {
            page_token: "nonsense".to_string(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().contains("page_token"));

    let models = client.list_models(pb::ListModelsRequest {}).await.unwrap().into_inner().models;
    assert_eq!(models.len(), 2);
    let model = models.iter().find(|m| m.model_id == first_job.model_id).expect("first model listed");
    assert_eq!(model.job_id, first);
    assert_eq!(model.num_labels, 10);
    // The request's float32 weight 0.2 is stored as the decimal 0.2.
    assert_eq!(model.tasks.get("seq2seq"), Some(&0.2));
    assert!(model.accuracy.is_some());

    client::classify(&mut client, &first_job.model_id, vec!["my card is lost".to_string()], 1)
        .await
        .expect("Classify before delete");
    client
        .delete_model(pb::DeleteModelRequest {
            model_id: first_job.model_id.clone(),
        })
        .await
        .expect("DeleteModel");
    let status = client
        .classify(pb::ClassifyRequest {
            model_id: first_job.model_id.clone(),
            texts: vec!["my card is lost".to_string()],
            top_k: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(!server.data_dir.path().join("models").join(&first_job.model_id).exists());
    let again = client
        .delete_model(pb::DeleteModelRequest {
            model_id: first_job.model_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    client::classify(&mut client, &second_job.model_id, vec!["my card is lost".to_string()], 1)
        .await
        .expect("the other model still classifies");
    server.stop().await;
}
