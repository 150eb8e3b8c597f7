//! A labelaug server on 127.0.0.1 with a temporary data dir, and helpers
//! that drive it through the generated gRPC client.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use labelaug::api::{ServerConfig, serve_with_metrics};
use labelaug::client::{self, Client};
use labelaug::data::Format;
use labelaug::pb;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestServer {
    pub address: String,
    /// `host:port` of the Prometheus metrics endpoint.
    pub metrics_address: String,
    pub data_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary data dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = format!("http://{}", listener.local_addr().expect("local address"));
        let (sender, receiver) = oneshot::channel();
        let metrics = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let metrics_address = metrics.local_addr().expect("local address").to_string();
        let mut config = ServerConfig::new(data_dir.path().to_path_buf());
        adjust(&mut config);
        let task = tokio::spawn(serve_with_metrics(listener, Some(metrics), config, async {
            let _ = receiver.await;
        }));
        Self {
            address,
            metrics_address,
            data_dir,
            shutdown: Some(sender),
            task: Some(task),
        }
    }

    pub async fn client(&self) -> Client {
        client::connect(&self.address).await.expect("connect to the test server")
    }

    pub async fn stop(mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}

/// Returns the path of a bundled demo file, `train.csv` or `test.csv`.
pub fn demo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo").join(name)
}

/// Returns the path of a file under `tests/data`.
pub fn data_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(relative)
}

pub async fn upload(client: &mut Client, path: &Path, format: Format) -> String {
    client::upload_file(client, path, format)
        .await
        .unwrap_or_else(|e| panic!("upload of {} failed: {e:#}", path.display()))
        .dataset_id
}

/// Polls JobStatus until the job ends or `limit` passes.
pub async fn wait_for_end(client: &mut Client, job_id: &str, limit: Duration) -> pb::Job {
    let deadline = Instant::now() + limit;
    loop {
        let job = client::job_status(client, job_id).await.expect("JobStatus");
        let state = pb::JobState::try_from(job.state).expect("known state");
        if matches!(state, pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled) {
            return job;
        }
        assert!(Instant::now() < deadline, "job {job_id} did not end within {limit:?}: {job:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn scratch_encoder(layers: u32, hidden: u32, heads: u32, vocab: u32) -> Option<pb::EncoderSpec> {
    Some(pb::EncoderSpec {
        source: Some(pb::encoder_spec::Source::Scratch(pb::ScratchEncoder {
            num_layers: layers,
            hidden_size: hidden,
            num_heads: heads,
            intermediate_size: 2 * hidden,
            vocab_size: vocab,
            dropout: Some(0.1),
        })),
    })
}

pub fn seq2seq(weight: f32) -> Vec<pb::TaskSpec> {
    vec![pb::TaskSpec {
        name: "seq2seq".to_string(),
        weight,
        ..Default::default()
    }]
}

/// Asserts that a job succeeded and returns its best evaluation.
pub fn best_evaluation(job: &pb::Job) -> pb::EpochEvaluation {
    assert_eq!(
        pb::JobState::try_from(job.state),
        Ok(pb::JobState::Succeeded),
        "job failed: {}",
        job.error
    );
    assert!(!job.model_id.is_empty(), "succeeded job has no model id");
    let best = job.best_epoch.expect("best epoch");
    job.evaluations
        .iter()
        .find(|e| e.epoch == best)
        .cloned()
        .expect("evaluation of the best epoch")
}

/// Reads the `field` of each JSON line of a file (first `count` lines).
pub fn json_lines(path: &Path, count: usize) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read data file")
        .split('\n')
        .filter(|line| !line.trim().is_empty())
        .take(count)
        .map(|line| serde_json::from_str(line.trim_end_matches('\r')).expect("JSON line"))
        .collect()
}

/// Returns the folder of all-MiniLM-L6-v2: `LABELAUG_MINILM_DIR`, or where
/// `scripts/fetch-test-models.sh` (run by the README's test command) unpacks it.
pub fn minilm_dir() -> PathBuf {
    let dir = match std::env::var_os("LABELAUG_MINILM_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/models/all-MiniLM-L6-v2"),
    };
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 is missing from {}; run scripts/fetch-test-models.sh first",
        dir.display()
    );
    dir
}
