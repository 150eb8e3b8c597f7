//! Server start-up: the store, the worker pool, the model registry and the
//! tonic server on an already bound listener.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::Device;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use super::service::LabelaugService;
use crate::jobs::{DeviceSpec, QUEUE_CAPACITY, Store, WorkerPool};
use crate::pb::labelaug_server::LabelaugServer;
use crate::serve::ModelRegistry;

/// Default maximum size of one uploaded dataset file.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 512 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// One worker per entry.
    pub devices: Vec<DeviceSpec>,
    pub max_upload_bytes: u64,
    pub queue_capacity: usize,
}

impl ServerConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            devices: vec![DeviceSpec::Cpu],
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            queue_capacity: QUEUE_CAPACITY,
        }
    }
}

/// Runs the service on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let store = Arc::new(Store::open(&config.data_dir)?);
    let pool = WorkerPool::start(store.clone(), &config.devices, config.queue_capacity)?;
    let registry = Arc::new(ModelRegistry::new(store.clone(), Device::Cpu));
    let service = LabelaugService::new(store, pool, registry, config.max_upload_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LabelaugServer<LabelaugService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let address = listener.local_addr()?;
    info!(
        %address,
        data_dir = %config.data_dir.display(),
        workers = config.devices.len(),
        "server listening"
    );
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(LabelaugServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    info!("server stopped");
    Ok(())
}
