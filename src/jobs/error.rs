use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("stored {record} is corrupt: {message}")]
    Corrupt { record: String, message: String },
    #[error("failed to create {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the job queue is full ({capacity} jobs waiting); retry when a job has finished")]
    QueueFull { capacity: usize },
    #[error("the worker pool has stopped")]
    PoolStopped,
    #[error("invalid device {value:?}: {reason}")]
    InvalidDevice { value: String, reason: String },
}
