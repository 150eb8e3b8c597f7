//! Jobs survive the server process: after SIGKILL in the middle of an epoch,
//! or a graceful SIGTERM, a restarted server on the same data dir resumes
//! the job from its checkpoint and ends with exactly the metrics of an
//! uninterrupted run.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{best_evaluation, demo_file, upload, wait_for_end};
use labelaug::client::{self, Client};
use labelaug::data::Format;
use labelaug::pb;

/// A `labelaug serve` process on 127.0.0.1 and its log lines.
struct ServerProcess {
    child: Child,
    address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_labelaug"))
            .args(["serve", "--listen", "127.0.0.1:0", "--checkpoint-interval-secs", "1", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start labelaug serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (sender, receiver) = mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = line.split("address=").nth(1) {
                    let address = address.split_whitespace().next().unwrap_or_default().to_string();
                    let _ = sender.send(address);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start: {:?}", log.lock().unwrap()));
        Self {
            child,
            address: format!("http://{address}"),
            log,
        }
    }

    async fn client(&self) -> Client {
        client::connect(&self.address).await.expect("connect")
    }

    fn logged(&self, text: &str) -> bool {
        self.log.lock().unwrap().iter().any(|line| line.contains(text))
    }

    /// Sends SIGKILL and reaps the process.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }

    /// Sends SIGTERM and waits up to a minute for a clean exit.
    fn terminate(mut self) -> Self {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                assert!(status.success(), "server exited with {status}: {:?}", self.log.lock().unwrap());
                return self;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}


/// Uploads the demo data and starts a job long enough to interrupt.
async fn start_job(client: &mut Client) -> String {
    let train = upload(client, &demo_file("train.csv"), Format::Csv).await;
    let test = upload(client, &demo_file("test.csv"), Format::Csv).await;
    let request = pb::StartTrainingRequest {
        train_dataset_id: train,
        eval_dataset_id: test,
        fields: Some(pb::FieldMapping {
            label_field: "category".to_string(),
            ..Default::default()
        }),
        encoder: common::scratch_encoder(2, 64, 2, 2000),
        // MLM draws its masks from the step, so a resumed job must mask
        // exactly as the uninterrupted one.
        tasks: [
            common::seq2seq(0.2),
            vec![pb::TaskSpec {
                name: "mlm".to_string(),
                weight: 0.3,
                ..Default::default()
            }],
        ]
        .concat(),
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(6),
            batch_size: Some(8),
            learning_rate: Some(2e-3),
            max_length: Some(48),
            seed: Some(21),
            ..Default::default()
        }),
        ..Default::default()
    };
    client.start_training(request).await.expect("StartTraining").into_inner().job_id
}

/// Polls until the job has `evaluations` evaluations and is past the first
/// steps of the next epoch; panics if it ends first.
async fn wait_into_epoch(client: &mut Client, job_id: &str, evaluations: usize) -> pb::Job {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let job = client::job_status(client, job_id).await.expect("JobStatus");
        let steps_per_epoch = job.total_steps / u64::from(job.epochs.max(1));
        let into_epoch = job.step % steps_per_epoch.max(1);
        if job.evaluations.len() >= evaluations && into_epoch >= 3 {
            return job;
        }
        assert_ne!(job.state, pb::JobState::Succeeded as i32, "the job ended before it could be interrupted");
        assert!(Instant::now() < deadline, "job did not progress: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn final_metrics(job: &pb::Job) -> (Vec<pb::EpochEvaluation>, Option<u32>) {
    best_evaluation(job);
    (job.evaluations.clone(), job.best_epoch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_jobs_resume_with_identical_results() {
    // Uninterrupted reference run.
    let reference_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(reference_dir.path());
    let mut client = server.client().await;
    let job_id = start_job(&mut client).await;
    let reference = wait_for_end(&mut client, &job_id, Duration::from_secs(600)).await;
    let expected = final_metrics(&reference);
    server.kill();

    // SIGKILL in the middle of epoch 3, then a restart on the same data dir.
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path());
    let mut client = server.client().await;
    let job_id = start_job(&mut client).await;
    let before = wait_into_epoch(&mut client, &job_id, 2).await;
    server.kill();
    let server = ServerProcess::start(data_dir.path());
    let mut client = server.client().await;
    let job = wait_for_end(&mut client, &job_id, Duration::from_secs(600)).await;
    assert!(server.logged("resumed from checkpoint"), "the job did not resume from a checkpoint");
    assert_eq!(final_metrics(&job), expected, "resumed after SIGKILL at step {}", before.step);
    assert_eq!(job.created_at, before.created_at);
    client::classify(&mut client, &job.model_id, vec!["I lost my card".to_string()], 3)
        .await
        .expect("the resumed job's model classifies");
    let models = client.list_models(pb::ListModelsRequest {}).await.unwrap().into_inner().models;
    assert_eq!(models.len(), 1);
    assert!(!data_dir.path().join("checkpoints").join(&job_id).exists(), "checkpoints left behind");

    // SIGTERM: the running job writes a checkpoint and stops; the next
    // start resumes it.
    let job_id = start_job(&mut client).await;
    wait_into_epoch(&mut client, &job_id, 1).await;
    let stopped = server.terminate();
    assert!(stopped.logged("training suspended"), "{:?}", stopped.log.lock().unwrap());
    drop(stopped);
    let server = ServerProcess::start(data_dir.path());
    let mut client = server.client().await;
    let job = wait_for_end(&mut client, &job_id, Duration::from_secs(600)).await;
    assert_eq!(final_metrics(&job), expected, "resumed after SIGTERM");
    let models = client.list_models(pb::ListModelsRequest {}).await.unwrap().into_inner().models;
    assert_eq!(models.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_checkpoint_fails_the_job_with_the_reason() {
    let data_dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data_dir.path());
    let mut client = server.client().await;
    let job_id = start_job(&mut client).await;
    wait_into_epoch(&mut client, &job_id, 1).await;
    server.kill();

    let root = data_dir.path().join("checkpoints").join(&job_id);
    let latest = std::fs::read_to_string(root.join("LATEST")).expect("a checkpoint was written");
    std::fs::write(root.join(latest.trim()).join("weights.safetensors"), b"garbage").unwrap();

    let server = ServerProcess::start(data_dir.path());
    let mut client = server.client().await;
    let job = wait_for_end(&mut client, &job_id, Duration::from_secs(300)).await;
    assert_eq!(job.state, pb::JobState::Failed as i32);
    assert!(job.error.contains("weights.safetensors"), "{}", job.error);
    // The store and the other records are intact: the server still lists
    // the job and accepts new work.
    let jobs = client.list_jobs(pb::ListJobsRequest::default()).await.unwrap().into_inner().jobs;
    assert_eq!(jobs.len(), 1);
    drop(server);
}
