//! Server start-up: the store, the worker pool, the model registry and the
//! tonic server on an already bound listener.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use candle_core::Device;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, ServerTlsConfig};
use tracing::{info, warn};

use super::auth::BearerAuth;
use super::metrics::{Metrics, MetricsSources, serve_metrics};
use super::service::{LabelaugService, ServiceLimits};
use crate::jobs::{DeviceSpec, QUEUE_CAPACITY, Store, WorkerPool};
use crate::model::ModelRoots;
use crate::pb::labelaug_server::LabelaugServer;
use crate::serve::{ClassifyLimits, ModelRegistry, register_model};

/// Default time between two checkpoints inside an epoch: a crash loses at
/// most this much training, and writing a small model takes well under a
/// second.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(600);
/// Default wait for running jobs at shutdown; a job checkpoints at its next
/// step, which takes seconds on CPU even for large encoders.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Default maximum size of one uploaded dataset file.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;
/// Default maximum size of an uploaded checkpoint folder (BERT-large in
/// float32 is 1.3 GB).
pub const DEFAULT_MAX_CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// One worker per entry.
    pub devices: Vec<DeviceSpec>,
    pub max_upload_bytes: u64,
    pub max_checkpoint_bytes: u64,
    /// Server folders that requests may name checkpoints and model folders
    /// in; none means requests may name no server path.
    pub model_roots: Vec<PathBuf>,
    /// Hugging Face classifier folders registered as models at start-up.
    pub imports: Vec<PathBuf>,
    pub queue_capacity: usize,
    /// Time between two checkpoints inside an epoch.
    pub checkpoint_interval: Duration,
    /// Time a shutdown waits for running jobs to write their checkpoints.
    pub shutdown_timeout: Duration,
    /// Bearer token every Labelaug and reflection call must carry; none
    /// means no authentication.
    pub auth_token: Option<String>,
    pub classify_limits: ClassifyLimits,
    /// PEM certificate chain and private key; the server speaks plain
    /// HTTP/2 without them.
    pub tls: Option<TlsIdentity>,
}

/// A server certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub certificate_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").finish_non_exhaustive()
    }
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            devices: vec![DeviceSpec::Cpu],
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            max_checkpoint_bytes: DEFAULT_MAX_CHECKPOINT_BYTES,
            model_roots: Vec::new(),
            imports: Vec::new(),
            queue_capacity: QUEUE_CAPACITY,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            auth_token: None,
            classify_limits: ClassifyLimits::default(),
            tls: None,
        }
    }
}

/// Runs the service on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_with_metrics(listener, None, config, shutdown).await
}

/// Runs the service on `listener`, and Prometheus metrics on
/// `metrics_listener` when given, until `shutdown` completes.
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    let roots = Arc::new(ModelRoots::new(&config.model_roots)?);
    for folder in &config.imports {
        let registered = register_model(&store, folder)
            .map_err(|e| anyhow::anyhow!("--import: {e}"))?;
        info!(
            model_id = %registered.row.id,
            folder = %folder.display(),
            existed = registered.existed,
            "imported model folder"
        );
    }
    let pool = Arc::new(WorkerPool::start(
        store.clone(),
        &config.devices,
        config.queue_capacity,
        config.checkpoint_interval,
    )?);
    let registry = Arc::new(ModelRegistry::new(store.clone(), Device::Cpu, config.classify_limits));
    let metrics = Arc::new(Metrics::default());
    let metrics_task = metrics_listener.map(|listener| {
        let sources = MetricsSources {
            metrics: metrics.clone(),
            store: store.clone(),
            pool: pool.clone(),
            registry: registry.clone(),
        };
        tokio::spawn(serve_metrics(listener, sources))
    });
    let limits = ServiceLimits {
        max_upload_bytes: config.max_upload_bytes,
        max_checkpoint_bytes: config.max_checkpoint_bytes,
    };
    let service = LabelaugService::new(store, pool.clone(), registry, roots, limits, metrics);
    let auth = BearerAuth::new(config.auth_token.as_deref());
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LabelaugServer<LabelaugService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    if config.auth_token.is_none() {
        warn!("no auth token is set: every client that reaches the port can use the service");
    }
    let address = listener.local_addr()?;
    info!(
        %address,
        data_dir = %config.data_dir.display(),
        workers = config.devices.len(),
        tls = config.tls.is_some(),
        "server listening"
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        let identity = Identity::from_pem(&tls.certificate_pem, &tls.key_pem);
        builder = builder.tls_config(ServerTlsConfig::new().identity(identity))?;
    }
    builder
        .add_service(health_service)
        .add_service(InterceptedService::new(reflection, auth.clone()))
        .add_service(LabelaugServer::with_interceptor(service, auth))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            shutdown.await;
            health.set_not_serving::<LabelaugServer<LabelaugService>>().await;
        })
        .await?;
    info!("stopped accepting requests; suspending running jobs");
    pool.shutdown(config.shutdown_timeout).await;
    if let Some(task) = metrics_task {
        task.abort();
    }
    info!("server stopped");
    Ok(())
}
