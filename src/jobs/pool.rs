//! The bounded job queue and the worker pool. Each worker is an OS thread
//! that owns one device and runs one job at a time, so training never runs
//! on the async executor.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use candle_core::Device;
use tracing::{error, info, info_span, warn};

use super::store::{ModelRow, Store, new_id};
use super::{DeviceSpec, JobState, JobsError};
use crate::train::{self, Evaluation, JobControl, Progress, ProgressSink, TrainContext, TrainError};

/// Jobs that may wait for a worker. Each waiting job holds only its
/// specification, so the bound is about fairness and feedback rather than
/// memory: a client whose job would wait behind this many learns at once.
pub const QUEUE_CAPACITY: usize = 64;

/// Minimum interval between two progress writes to the store.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(500);

/// Controls of the running jobs, by job id.
type RunningJobs = Arc<Mutex<HashMap<String, Arc<JobControl>>>>;

pub struct WorkerPool {
    sender: Mutex<Option<SyncSender<String>>>,
    capacity: usize,
    running: RunningJobs,
    workers: Mutex<Vec<thread::JoinHandle<()>>>,
    /// Jobs sent to the queue and not yet taken by a worker.
    queued: Arc<AtomicUsize>,
}

impl WorkerPool {
    /// Starts one worker per device, then queues again the jobs found
    /// queued in the store and those that were running when the server
    /// stopped. The latter resume from their latest checkpoints.
    pub fn start(
        store: Arc<Store>,
        devices: &[DeviceSpec],
        capacity: usize,
        checkpoint_interval: Duration,
    ) -> Result<Self, JobsError> {
        let opened = devices
            .iter()
            .map(|spec| spec.open().map(|device| (*spec, device)))
            .collect::<Result<Vec<_>, _>>()?;
        let (sender, receiver) = sync_channel::<String>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let running: RunningJobs = Arc::default();
        let queued = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::with_capacity(opened.len());
        for (index, (spec, device)) in opened.into_iter().enumerate() {
            let worker = Worker {
                index,
                spec,
                device,
                store: store.clone(),
                running: running.clone(),
                checkpoint_interval,
                queued: queued.clone(),
            };
            let receiver = receiver.clone();
            let handle = thread::Builder::new()
                .name(format!("worker-{index}-{spec}"))
                .spawn(move || worker.run(receiver))
                .map_err(|source| JobsError::Io {
                    path: "worker thread".into(),
                    source,
                })?;
            workers.push(handle);
        }
        let pool = Self {
            sender: Mutex::new(Some(sender)),
            capacity,
            running,
            workers: Mutex::new(workers),
            queued,
        };
        for id in store.requeue_interrupted()? {
            info!(job_id = %id, "job was running when the server stopped; it resumes from its latest checkpoint");
        }
        for id in store.job_ids_in_state(JobState::Queued)? {
            info!(job_id = %id, "queueing job again after restart");
            if let Err(error) = pool.submit(&id) {
                store.finish_unsuccessful(&id, JobState::Failed, &error.to_string())?;
            }
        }
        Ok(pool)
    }

    /// Queues a job already stored as queued.
    pub fn submit(&self, job_id: &str) -> Result<(), JobsError> {
        let sender = self.sender.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(sender) = sender.as_ref() else {
            return Err(JobsError::PoolStopped);
        };
        self.queued.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(job_id.to_string()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(JobsError::QueueFull {
                    capacity: self.capacity,
                })
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(JobsError::PoolStopped)
            }
        }
    }

    /// Jobs in the queue, cancelled ones included until a worker skips them.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Asks a running job to stop at its next step; returns false when the
    /// job is not running on this pool.
    pub fn request_stop(&self, job_id: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match running.get(job_id) {
            Some(control) => {
                control.cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Stops taking jobs, requests running jobs to write a checkpoint and stop,
    /// and waits up to `limit` for the workers to finish. Suspended jobs
    /// stay in the running state and resume at the next start.
    pub async fn shutdown(&self, limit: Duration) {
        self.sender.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        for (job_id, control) in self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter() {
            info!(job_id = %job_id, "suspending job for shutdown");
            control.suspend.store(true, Ordering::Relaxed);
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        let joined = tokio::task::spawn_blocking(move || {
            for worker in workers {
                if worker.join().is_err() {
                    error!("a worker thread panicked");
                }
            }
        });
        match tokio::time::timeout(limit, joined).await {
            Ok(_) => info!("workers stopped"),
            Err(_) => warn!(seconds = limit.as_secs_f64(), "workers did not stop in time"),
        }
    }
}

/// One worker thread and the device it owns.
struct Worker {
    index: usize,
    spec: DeviceSpec,
    device: Device,
    store: Arc<Store>,
    running: RunningJobs,
    checkpoint_interval: Duration,
    queued: Arc<AtomicUsize>,
}

impl Worker {
    fn run(self, receiver: Arc<Mutex<Receiver<String>>>) {
        info!(worker = self.index, device = %self.spec, "worker started");
        loop {
            let next = {
                let receiver = receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                receiver.recv()
            };
            let Ok(job_id) = next else {
                info!(worker = self.index, "worker stopped");
                return;
            };
            self.queued.fetch_sub(1, Ordering::Relaxed);
            let span = info_span!("job", job_id = %job_id, worker = self.index, device = %self.spec);
            let _entered = span.enter();
            let control = Arc::new(JobControl::default());
            self.lock_running().insert(job_id.clone(), control.clone());
            self.run_job(&job_id, &control);
            self.lock_running().remove(&job_id);
        }
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<JobControl>>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn run_job(&self, job_id: &str, control: &JobControl) {
        run_job(job_id, &self.device, &self.store, control, self.checkpoint_interval);
    }
}

fn run_job(job_id: &str, device: &Device, store: &Store, control: &JobControl, checkpoint_interval: Duration) {
    let job = match store.job(job_id) {
        Ok(Some(job)) => job,
        Ok(None) => {
            warn!("queued job is not in the store; skipping it");
            return;
        }
        Err(error) => {
            error!(%error, "failed to read the queued job");
            return;
        }
    };
    match store.mark_running(job_id) {
        Ok(true) => {}
        Ok(false) => {
            info!(state = %job.state, "job is no longer queued; skipping it");
            return;
        }
        Err(error) => {
            error!(%error, "failed to mark the job running");
            return;
        }
    }
    let model_id = new_id("model");
    let model_dir = store.model_path(&model_id);
    let sink = StoreSink::new(store, job_id);
    info!(model_id = %model_id, "training started");
    let started = Instant::now();
    let context = TrainContext {
        job_id,
        model_id: &model_id,
        model_dir: model_dir.clone(),
        device,
        control,
        progress: &sink,
        checkpoint_dir: store.checkpoint_path(job_id),
        checkpoint_interval,
    };
    let result = catch_unwind(AssertUnwindSafe(|| train::train(&job.spec, &context)));
    let seconds = started.elapsed().as_secs_f64();
    if matches!(result, Ok(Err(TrainError::Suspended))) {
        info!(seconds, "training suspended; the job resumes at the next start");
        return;
    }
    train::remove_checkpoints(&store.checkpoint_path(job_id));
    let finished = match result {
        Ok(Ok(outcome)) => {
            info!(
                model_id = %model_id,
                seconds,
                accuracy = outcome.best.as_ref().map(|e| e.accuracy),
                "training succeeded"
            );
            let row = ModelRow {
                id: model_id.clone(),
                job_id: job_id.to_string(),
                path: model_dir,
                created_at_ms: super::store::now_ms(),
                num_labels: outcome.num_labels,
                accuracy: outcome.best.as_ref().map(|e| e.accuracy),
                macro_f1: outcome.best.as_ref().map(|e| e.macro_f1),
                tasks: job.spec.tasks.iter().map(|(task, setting)| (task.clone(), setting.weight)).collect(),
                imported_from: None,
            };
            store.finish_succeeded(job_id, &row)
        }
        Ok(Err(TrainError::Suspended)) => Ok(()),
        Ok(Err(TrainError::Cancelled)) => {
            info!(seconds, "training cancelled");
            store.finish_unsuccessful(job_id, JobState::Cancelled, "cancelled")
        }
        Ok(Err(failure)) => {
            error!(error = %failure, seconds, "training failed");
            store.finish_unsuccessful(job_id, JobState::Failed, &failure.to_string())
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            error!(panic = %message, "training panicked");
            store.finish_unsuccessful(job_id, JobState::Failed, &format!("internal error: {message}"))
        }
    };
    if let Err(error) = finished {
        error!(%error, "failed to record the end of the job");
    }
}

/// Writes progress to the store, at most every [`PROGRESS_INTERVAL`] and
/// always at the last step; every evaluation is written.
struct StoreSink<'a> {
    store: &'a Store,
    job_id: &'a str,
    last_write: Mutex<Option<Instant>>,
}

impl<'a> StoreSink<'a> {
    fn new(store: &'a Store, job_id: &'a str) -> Self {
        Self {
            store,
            job_id,
            last_write: Mutex::new(None),
        }
    }
}

impl ProgressSink for StoreSink<'_> {
    fn on_progress(&self, progress: &Progress) {
        let mut last = self.last_write.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let due = last.is_none_or(|at| at.elapsed() >= PROGRESS_INTERVAL);
        let epoch_end = progress.step * u64::from(progress.epochs) % progress.total_steps.max(1) == 0;
        if !(due || epoch_end || progress.step == progress.total_steps) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(error) = self.store.update_progress(self.job_id, progress) {
            error!(%error, "failed to store job progress");
        }
    }

    fn on_evaluation(&self, evaluation: &Evaluation) {
        if let Err(error) = self.store.add_evaluation(self.job_id, evaluation) {
            error!(%error, "failed to store an evaluation");
        }
    }

    fn on_resume(&self, evaluations: &[Evaluation]) {
        if let Err(error) = self.store.set_evaluations(self.job_id, evaluations) {
            error!(%error, "failed to store the evaluations of a resumed job");
        }
    }
}
