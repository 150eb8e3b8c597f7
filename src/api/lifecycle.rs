//! Job and model management: WatchJob, CancelJob, ListJobs, ListModels and
//! DeleteModel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tracing::{info, warn};

use super::convert::{job_to_proto, model_to_proto, state_from_proto};
use super::status::{invalid, jobs_error, join_error};
use crate::jobs::{JobCursor, JobRecord, JobState, JobsError, Store, WorkerPool};
use crate::pb;
use crate::serve::ModelRegistry;
use crate::train::tasks::model_teacher;

/// Interval between two reads of a watched job. Progress is stored at most
/// every 500 ms, so this sends every change with little delay.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// Messages buffered per watcher before the watch waits for the client.
const WATCH_BUFFER: usize = 16;
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 500;

async fn read_job(store: &Arc<Store>, job_id: &str) -> Result<JobRecord, Status> {
    let store = store.clone();
    let id = job_id.to_string();
    tokio::task::spawn_blocking(move || {
        store
            .job(&id)
            .map_err(|e| jobs_error(&e))?
            .ok_or_else(|| Status::not_found(format!("job {id:?} not found")))
    })
    .await
    .map_err(join_error)?
}

/// Streams the job's status at each change until it ends.
pub async fn watch(store: Arc<Store>, job_id: String) -> Result<ReceiverStream<Result<pb::Job, Status>>, Status> {
    let first = job_to_proto(&read_job(&store, &job_id).await?);
    let (sender, receiver) = mpsc::channel(WATCH_BUFFER);
    tokio::spawn(async move {
        let mut last = first;
        if sender.send(Ok(last.clone())).await.is_err() {
            return;
        }
        while !is_terminal(&last) {
            tokio::time::sleep(WATCH_INTERVAL).await;
            let job = match read_job(&store, &job_id).await {
                Ok(job) => job_to_proto(&job),
                Err(status) => {
                    warn!(job_id, error = %status.message(), "watch failed to read the job");
                    let _ = sender.send(Err(status)).await;
                    return;
                }
            };
            if job == last {
                continue;
            }
            if sender.send(Ok(job.clone())).await.is_err() {
                return;
            }
            last = job;
        }
    });
    Ok(ReceiverStream::new(receiver))
}

fn is_terminal(job: &pb::Job) -> bool {
    matches!(
        pb::JobState::try_from(job.state),
        Ok(pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled)
    )
}

/// Cancels a queued or running job.
pub async fn cancel(store: Arc<Store>, pool: &WorkerPool, job_id: &str) -> Result<pb::Job, Status> {
    let job = read_job(&store, job_id).await?;
    if job.state.is_terminal() {
        return Err(Status::failed_precondition(format!(
            "job {job_id:?} already ended ({}); only queued or running jobs can be cancelled",
            job.state
        )));
    }
    let cancel_store = store.clone();
    let id = job_id.to_string();
    let cancelled = tokio::task::spawn_blocking(move || cancel_store.cancel_queued(&id))
        .await
        .map_err(join_error)?
        .map_err(|e| jobs_error(&e))?;
    if cancelled {
        info!(job_id, "queued job cancelled");
    } else if pool.request_stop(job_id) {
        info!(job_id, "running job asked to stop");
    }
    let job = read_job(&store, job_id).await?;
    if job.state.is_terminal() && job.state != JobState::Cancelled {
        return Err(Status::failed_precondition(format!(
            "job {job_id:?} ended ({}) before it could be cancelled",
            job.state
        )));
    }
    Ok(job_to_proto(&job))
}

fn parse_page_token(token: &str) -> Result<Option<JobCursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || invalid("page_token", token, "is not a token returned by ListJobs");
    let (created, id) = token.split_once(':').ok_or_else(bad)?;
    let created_at_ms = created.parse().map_err(|_| bad())?;
    Ok(Some(JobCursor {
        created_at_ms,
        id: id.to_string(),
    }))
}

pub async fn list_jobs(store: Arc<Store>, request: pb::ListJobsRequest) -> Result<pb::ListJobsResponse, Status> {
    let state = state_from_proto(request.state)?;
    let after = parse_page_token(&request.page_token)?;
    let page_size = match request.page_size as usize {
        0 => DEFAULT_PAGE_SIZE,
        size if size > MAX_PAGE_SIZE => {
            return Err(invalid("page_size", size, "must be at most 500"));
        }
        size => size,
    };
    let jobs = tokio::task::spawn_blocking(move || store.list_jobs(state, after.as_ref(), page_size + 1))
        .await
        .map_err(join_error)?
        .map_err(|e| jobs_error(&e))?;
    let more = jobs.len() > page_size;
    let page = &jobs[..jobs.len().min(page_size)];
    let next_page_token = match (more, page.last()) {
        (true, Some(last)) => format!("{}:{}", last.created_at_ms, last.id),
        _ => String::new(),
    };
    Ok(pb::ListJobsResponse {
        jobs: page.iter().map(job_to_proto).collect(),
        next_page_token,
    })
}

pub async fn list_models(store: Arc<Store>) -> Result<pb::ListModelsResponse, Status> {
    let models = tokio::task::spawn_blocking(move || store.list_models())
        .await
        .map_err(join_error)?
        .map_err(|e| jobs_error(&e))?;
    Ok(pb::ListModelsResponse {
        models: models.iter().map(model_to_proto).collect(),
    })
}

/// Deletes a model's record, evicts it from the cache and removes its files.
/// A model that a queued or running job learns from is FAILED_PRECONDITION.
///
/// NOTE: the teacher check and the deletion are two steps, so a StartTraining
/// that validates its teacher between them starts a job that fails when it
/// loads the deleted teacher.
pub async fn delete_model(store: Arc<Store>, registry: Arc<ModelRegistry>, model_id: String) -> Result<(), Status> {
    tokio::task::spawn_blocking(move || {
        let row = store
            .model(&model_id)
            .map_err(|e| jobs_error(&e))?
            .ok_or_else(|| Status::not_found(format!("model {model_id:?} not found")))?;
        if let Some(job_id) = job_using_teacher(&store, &model_id).map_err(|e| jobs_error(&e))? {
            return Err(Status::failed_precondition(format!(
                "model {model_id:?} is the distill teacher of job {job_id}, which has not ended; \
                 cancel the job or wait for it to end"
            )));
        }
        store.delete_model(&model_id).map_err(|e| jobs_error(&e))?;
        registry.evict(&model_id);
        if let Err(error) = std::fs::remove_dir_all(&row.path) {
            warn!(model_id, path = %row.path.display(), %error, "failed to remove the model's files");
        }
        info!(model_id, "model deleted");
        Ok(())
    })
    .await
    .map_err(join_error)?
}

/// Finds a queued or running job whose `distill` task learns from `model_id`.
fn job_using_teacher(store: &Store, model_id: &str) -> Result<Option<String>, JobsError> {
    for state in [JobState::Queued, JobState::Running] {
        for job_id in store.job_ids_in_state(state)? {
            let Some(job) = store.job(&job_id)? else { continue };
            if model_teacher(&job.spec.tasks).is_some_and(|teacher| teacher.model_id == model_id) {
                return Ok(Some(job_id));
            }
        }
    }
    Ok(None)
}
