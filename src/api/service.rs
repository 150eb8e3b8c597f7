//! The `labelaug.v1.Labelaug` service.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status, Streaming};
use tracing::{info, info_span, Instrument};

use tokio_stream::wrappers::ReceiverStream;

use super::convert::{job_to_proto, training_spec};
use super::lifecycle;
use super::metrics::Metrics;
use super::status::{data_error, invalid, jobs_error, join_error, serve_error};
use super::transfer;
use super::upload::upload;
use crate::jobs::{Store, WorkerPool, new_id};
use crate::pb;
use crate::model::ModelRoots;
use crate::serve::ModelRegistry;
use crate::train::tasks::model_teacher;
use crate::train::{check_teacher_labels, load_training_data};

pub struct LabelaugService {
    store: Arc<Store>,
    pool: Arc<WorkerPool>,
    registry: Arc<ModelRegistry>,
    roots: Arc<ModelRoots>,
    limits: ServiceLimits,
    metrics: Arc<Metrics>,
}

/// Size limits of uploads.
#[derive(Debug, Clone, Copy)]
pub struct ServiceLimits {
    pub max_upload_bytes: u64,
    pub max_checkpoint_bytes: u64,
}

impl LabelaugService {
    pub fn new(
        store: Arc<Store>,
        pool: Arc<WorkerPool>,
        registry: Arc<ModelRegistry>,
        roots: Arc<ModelRoots>,
        limits: ServiceLimits,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            pool,
            registry,
            roots,
            limits,
            metrics,
        }
    }

    /// Runs blocking store or model work off the async executor.
    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        tokio::task::spawn_blocking(work).await.map_err(join_error)?
    }
}

#[tonic::async_trait]
impl pb::labelaug_server::Labelaug for LabelaugService {
    async fn upload_dataset(
        &self,
        request: Request<Streaming<pb::UploadDatasetRequest>>,
    ) -> Result<Response<pb::UploadDatasetResponse>, Status> {
        let response = upload(self.store.clone(), request.into_inner(), self.limits.max_upload_bytes)
            .instrument(info_span!("upload_dataset"))
            .await?;
        Ok(Response::new(response))
    }

    async fn start_training(
        &self,
        request: Request<pb::StartTrainingRequest>,
    ) -> Result<Response<pb::StartTrainingResponse>, Status> {
        let request = request.into_inner();
        let store = self.store.clone();
        let roots = self.roots.clone();
        let spec = Self::blocking(move || {
            let spec = training_spec(&store, &roots, &request)?;
            let data = load_training_data(&spec.data).map_err(|e| data_error(&e))?;
            if let Some(teacher) = model_teacher(&spec.tasks) {
                check_teacher_labels(&teacher.model_id, &teacher.dir, &data.labels)
                    .map_err(|e| Status::invalid_argument(format!("tasks[distill].teacher_model_id: {e}")))?;
            }
            Ok(spec)
        })
        .await?;

        let job_id = new_id("job");
        let store = self.store.clone();
        let insert_id = job_id.clone();
        let insert_spec = spec.clone();
        Self::blocking(move || store.insert_job(&insert_id, &insert_spec).map_err(|e| jobs_error(&e))).await?;
        if let Err(error) = self.pool.submit(&job_id) {
            let store = self.store.clone();
            let delete_id = job_id.clone();
            Self::blocking(move || store.delete_job(&delete_id).map_err(|e| jobs_error(&e))).await?;
            return Err(jobs_error(&error));
        }
        info!(
            job_id = %job_id,
            train = %spec.data.train.file_name,
            tasks = ?spec.tasks,
            epochs = spec.hyperparameters.epochs,
            "job queued"
        );
        Ok(Response::new(pb::StartTrainingResponse { job_id }))
    }

    async fn job_status(&self, request: Request<pb::JobStatusRequest>) -> Result<Response<pb::Job>, Status> {
        let job_id = request.into_inner().job_id;
        if job_id.is_empty() {
            return Err(invalid("job_id", "\"\"", "is required"));
        }
        let store = self.store.clone();
        let job = Self::blocking(move || {
            store
                .job(&job_id)
                .map_err(|e| jobs_error(&e))?
                .ok_or_else(|| Status::not_found(format!("job {job_id:?} not found")))
        })
        .await?;
        Ok(Response::new(job_to_proto(&job)))
    }

    type WatchJobStream = ReceiverStream<Result<pb::Job, Status>>;

    async fn watch_job(&self, request: Request<pb::JobStatusRequest>) -> Result<Response<Self::WatchJobStream>, Status> {
        let job_id = request.into_inner().job_id;
        if job_id.is_empty() {
            return Err(invalid("job_id", "\"\"", "is required"));
        }
        Ok(Response::new(lifecycle::watch(self.store.clone(), job_id).await?))
    }

    async fn cancel_job(&self, request: Request<pb::CancelJobRequest>) -> Result<Response<pb::Job>, Status> {
        let job_id = request.into_inner().job_id;
        if job_id.is_empty() {
            return Err(invalid("job_id", "\"\"", "is required"));
        }
        let job = lifecycle::cancel(self.store.clone(), &self.pool, &job_id)
            .instrument(info_span!("cancel_job", job_id = %job_id))
            .await?;
        Ok(Response::new(job))
    }

    async fn list_jobs(&self, request: Request<pb::ListJobsRequest>) -> Result<Response<pb::ListJobsResponse>, Status> {
        Ok(Response::new(lifecycle::list_jobs(self.store.clone(), request.into_inner()).await?))
    }

    async fn list_models(
        &self,
        _request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        Ok(Response::new(lifecycle::list_models(self.store.clone()).await?))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
        let model_id = request.into_inner().model_id;
        if model_id.is_empty() {
            return Err(invalid("model_id", "\"\"", "is required"));
        }
        let span = info_span!("delete_model", model_id = %model_id);
        lifecycle::delete_model(self.store.clone(), self.registry.clone(), model_id)
            .instrument(span)
            .await?;
        Ok(Response::new(pb::DeleteModelResponse {}))
    }

    async fn upload_checkpoint(
        &self,
        request: Request<Streaming<pb::UploadCheckpointRequest>>,
    ) -> Result<Response<pb::UploadCheckpointResponse>, Status> {
        let response = transfer::upload_checkpoint(
            self.store.clone(),
            request.into_inner(),
            self.limits.max_checkpoint_bytes,
        )
        .instrument(info_span!("upload_checkpoint"))
        .await?;
        Ok(Response::new(response))
    }

    async fn register_model(&self, request: Request<pb::RegisterModelRequest>) -> Result<Response<pb::Model>, Status> {
        let path = request.into_inner().path;
        let span = info_span!("register_model", path = %path);
        let model = transfer::register(self.store.clone(), self.roots.clone(), path)
            .instrument(span)
            .await?;
        Ok(Response::new(model))
    }

    type ExportModelStream = ReceiverStream<Result<pb::FileChunk, Status>>;

    async fn export_model(
        &self,
        request: Request<pb::ExportModelRequest>,
    ) -> Result<Response<Self::ExportModelStream>, Status> {
        let model_id = request.into_inner().model_id;
        let span = info_span!("export_model", model_id = %model_id);
        Ok(Response::new(transfer::export(self.store.clone(), model_id).instrument(span).await?))
    }

    async fn classify(&self, request: Request<pb::ClassifyRequest>) -> Result<Response<pb::ClassifyResponse>, Status> {
        let request = request.into_inner();
        if request.model_id.is_empty() {
            return Err(invalid("model_id", "\"\"", "is required"));
        }
        let registry = self.registry.clone();
        let span = info_span!("classify", model_id = %request.model_id, texts = request.texts.len());
        let model_id = request.model_id.clone();
        let texts = request.texts.len();
        let started = Instant::now();
        let output = Self::blocking(move || {
            let _entered = span.enter();
            registry
                .classify(
                    &request.model_id,
                    &request.texts,
                    request.top_k as usize,
                    request.error_on_truncation,
                )
                .map_err(|e| serve_error(&e))
        })
        .await;
        self.metrics
            .record_classify(started.elapsed().as_secs_f64(), texts, output.is_ok());
        let output = output?;
        Ok(Response::new(pb::ClassifyResponse {
            model_id,
            results: output
                .results
                .into_iter()
                .map(|result| pb::Classification {
                    labels: result
                        .labels
                        .into_iter()
                        .map(|score| pb::LabelScore {
                            label: score.label,
                            description: score.description,
                            probability: score.probability,
                        })
                        .collect(),
                    truncated: result.truncated,
                })
                .collect(),
            tokenize_ms: output.tokenize_ms,
            compute_ms: output.compute_ms,
        }))
    }
}
