//! Prometheus metrics, served as text on a separate HTTP port.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{info, warn};

use crate::jobs::{JobState, Store, WorkerPool};
use crate::serve::ModelRegistry;

/// Upper bounds of the Classify latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Largest HTTP request head read from a metrics client.
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Time a metrics client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters updated by the request handlers.
#[derive(Default)]
pub struct Metrics {
    classify_requests: AtomicU64,
    classify_errors: AtomicU64,
    classify_texts: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_count: AtomicU64,
    /// Sum of latencies in microseconds.
    latency_sum_micros: AtomicU64,
}

/// Sources the metrics server reads at each scrape.
#[derive(Clone)]
pub struct MetricsSources {
    pub metrics: Arc<Metrics>,
    pub store: Arc<Store>,
    pub pool: Arc<WorkerPool>,
    pub registry: Arc<ModelRegistry>,
}

impl Metrics {
    pub fn record_classify(&self, seconds: f64, texts: usize, ok: bool) {
        self.classify_requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.classify_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.classify_texts.fetch_add(texts as u64, Ordering::Relaxed);
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Renders every metric in the Prometheus text format.
    pub fn render(&self, store: &Store, pool: &WorkerPool, registry: &ModelRegistry) -> String {
        let mut out = String::new();
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);

        out.push_str("# HELP labelaug_jobs Jobs in the store by state.\n# TYPE labelaug_jobs gauge\n");
        for state in [JobState::Queued, JobState::Running, JobState::Succeeded, JobState::Failed, JobState::Cancelled] {
            match store.count_jobs(state) {
                Ok(count) => {
                    let _ = writeln!(out, "labelaug_jobs{{state=\"{state}\"}} {count}");
                }
                Err(error) => warn!(%error, "failed to count jobs for metrics"),
            }
        }
        out.push_str("# HELP labelaug_queue_length Jobs waiting for a worker.\n# TYPE labelaug_queue_length gauge\n");
        let _ = writeln!(out, "labelaug_queue_length {}", pool.queued());

        out.push_str(
            "# HELP labelaug_training_samples_per_second Training records per second of each running job.\n\
             # TYPE labelaug_training_samples_per_second gauge\n",
        );
        match store.list_jobs(Some(JobState::Running), None, 1000) {
            Ok(jobs) => {
                for job in jobs {
                    let _ = writeln!(
                        out,
                        "labelaug_training_samples_per_second{{job_id=\"{}\"}} {}",
                        job.id, job.progress.samples_per_second
                    );
                }
            }
            Err(error) => warn!(%error, "failed to list running jobs for metrics"),
        }

        out.push_str("# HELP labelaug_classify_requests_total Classify requests.\n# TYPE labelaug_classify_requests_total counter\n");
        let _ = writeln!(out, "labelaug_classify_requests_total {}", load(&self.classify_requests));
        out.push_str("# HELP labelaug_classify_errors_total Classify requests that returned an error.\n# TYPE labelaug_classify_errors_total counter\n");
        let _ = writeln!(out, "labelaug_classify_errors_total {}", load(&self.classify_errors));
        out.push_str("# HELP labelaug_classify_texts_total Texts classified.\n# TYPE labelaug_classify_texts_total counter\n");
        let _ = writeln!(out, "labelaug_classify_texts_total {}", load(&self.classify_texts));

        out.push_str(
            "# HELP labelaug_classify_latency_seconds Classify request latency.\n\
             # TYPE labelaug_classify_latency_seconds histogram\n",
        );
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(out, "labelaug_classify_latency_seconds_bucket{{le=\"{bound}\"}} {}", load(bucket));
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "labelaug_classify_latency_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "labelaug_classify_latency_seconds_sum {}",
            load(&self.latency_sum_micros) as f64 / 1e6
        );
        let _ = writeln!(out, "labelaug_classify_latency_seconds_count {count}");

        out.push_str("# HELP labelaug_model_cache_hits_total Classify calls served by a loaded model.\n# TYPE labelaug_model_cache_hits_total counter\n");
        let (hits, misses) = registry.cache_counts();
        let _ = writeln!(out, "labelaug_model_cache_hits_total {hits}");
        out.push_str("# HELP labelaug_model_cache_misses_total Classify calls that loaded a model from disk.\n# TYPE labelaug_model_cache_misses_total counter\n");
        let _ = writeln!(out, "labelaug_model_cache_misses_total {misses}");
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, sources: MetricsSources) {
    if let Ok(address) = listener.local_addr() {
        info!(%address, "metrics listening");
    }
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(error) => {
                warn!(%error, "failed to accept a metrics connection");
                continue;
            }
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            if let Err(error) = answer(stream, sources).await {
                warn!(%peer, %error, "metrics request failed");
            }
        });
    }
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_BYTES {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Ok(head)
}

async fn answer(mut stream: TcpStream, sources: MetricsSources) -> std::io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head timed out"))??;
    let head = String::from_utf8_lossy(&head);
    let request_line = head.lines().next().unwrap_or_default();
    let (status, body) = if request_line.starts_with("GET /metrics ") {
        let rendered = tokio::task::spawn_blocking(move || {
            sources.metrics.render(&sources.store, &sources.pool, &sources.registry)
        })
        .await
        .map_err(std::io::Error::other)?;
        ("200 OK", rendered)
    } else {
        ("404 Not Found", "only GET /metrics is served here\n".to_string())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
