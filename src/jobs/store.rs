//! The embedded store: one SQLite file for datasets, jobs and models, and
//! folders for uploaded files and model artefacts under the data dir.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::{JobState, JobsError};
use crate::data::Format;
use crate::train::{Evaluation, Progress, TrainingSpec};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    format TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    records INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    progress TEXT NOT NULL,
    evaluations TEXT NOT NULL,
    model_id TEXT,
    error TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER
);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
";

/// Returns a new id such as `job-3f9c0a6e1b2d4c58`.
pub fn new_id(prefix: &str) -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &uuid[..16])
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub id: String,
    pub file_name: String,
    pub format: Format,
    pub path: PathBuf,
    pub sha256: String,
    pub size_bytes: u64,
    pub records: u64,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub id: String,
    pub job_id: String,
    pub path: PathBuf,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: String,
    pub state: JobState,
    pub spec: TrainingSpec,
    pub progress: Progress,
    pub evaluations: Vec<Evaluation>,
    pub model_id: Option<String>,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
}

pub struct Store {
    connection: Mutex<Connection>,
    path: PathBuf,
    data_dir: PathBuf,
}

impl Store {
    /// Opens or creates the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, JobsError> {
        for dir in [data_dir.to_path_buf(), data_dir.join("datasets"), data_dir.join("models"), data_dir.join("tmp")] {
            std::fs::create_dir_all(&dir).map_err(|source| JobsError::Io { path: dir.clone(), source })?;
        }
        let path = data_dir.join("labelaug.sqlite");
        let sqlite = |source| JobsError::Sqlite { path: path.clone(), source };
        let connection = Connection::open(&path).map_err(sqlite)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        connection.pragma_update(None, "synchronous", "NORMAL").map_err(sqlite)?;
        connection.execute_batch(SCHEMA).map_err(sqlite)?;
        Ok(Self {
            connection: Mutex::new(connection),
            path: path.clone(),
            data_dir: data_dir.to_path_buf(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Folder for uploads in progress; a finished upload is renamed out of it.
    pub fn tmp_dir(&self) -> PathBuf {
        self.data_dir.join("tmp")
    }

    pub fn dataset_path(&self, id: &str) -> PathBuf {
        self.data_dir.join("datasets").join(id)
    }

    pub fn model_path(&self, id: &str) -> PathBuf {
        self.data_dir.join("models").join(id)
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, JobsError> {
        let connection = self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&connection).map_err(|source| JobsError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    pub fn insert_dataset(&self, row: &DatasetRow) -> Result<(), JobsError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO datasets (id, file_name, format, path, sha256, size_bytes, records, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    row.id,
                    row.file_name,
                    row.format.as_str(),
                    row.path.to_string_lossy(),
                    row.sha256,
                    row.size_bytes as i64,
                    row.records as i64,
                    row.created_at_ms
                ],
            )
            .map(|_| ())
        })
    }

    pub fn dataset(&self, id: &str) -> Result<Option<DatasetRow>, JobsError> {
        let row = self.with(|c| {
            c.query_row(
                "SELECT id, file_name, format, path, sha256, size_bytes, records, created_at FROM datasets WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )
            .optional()
        })?;
        let Some((id, file_name, format, path, sha256, size, records, created)) = row else {
            return Ok(None);
        };
        let format = format.parse::<Format>().map_err(|e| JobsError::Corrupt {
            record: format!("dataset {id}"),
            message: e.to_string(),
        })?;
        Ok(Some(DatasetRow {
            id,
            file_name,
            format,
            path: PathBuf::from(path),
            sha256,
            size_bytes: size as u64,
            records: records as u64,
            created_at_ms: created,
        }))
    }

    /// Inserts a new job in the queued state.
    pub fn insert_job(&self, id: &str, spec: &TrainingSpec) -> Result<(), JobsError> {
        let spec = to_json(spec)?;
        let progress = to_json(&Progress::default())?;
        self.with(|c| {
            c.execute(
                "INSERT INTO jobs (id, state, spec, progress, evaluations, created_at) VALUES (?1, ?2, ?3, ?4, '[]', ?5)",
                params![id, JobState::Queued.as_str(), spec, progress, now_ms()],
            )
            .map(|_| ())
        })
    }

    /// Deletes a job that never reached the queue.
    pub fn delete_job(&self, id: &str) -> Result<(), JobsError> {
        self.with(|c| c.execute("DELETE FROM jobs WHERE id = ?1", [id]).map(|_| ()))
    }

    pub fn job(&self, id: &str) -> Result<Option<JobRecord>, JobsError> {
        let row = self.with(|c| {
            c.query_row(
                "SELECT id, state, spec, progress, evaluations, model_id, error, created_at, started_at, finished_at
                 FROM jobs WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, Option<i64>>(9)?,
                    ))
                },
            )
            .optional()
        })?;
        let Some((id, state, spec, progress, evaluations, model_id, error, created, started, finished)) = row else {
            return Ok(None);
        };
        let corrupt = |message: String| JobsError::Corrupt {
            record: format!("job {id}"),
            message,
        };
        Ok(Some(JobRecord {
            state: state.parse().map_err(corrupt)?,
            spec: serde_json::from_str(&spec).map_err(|e| corrupt(e.to_string()))?,
            progress: serde_json::from_str(&progress).map_err(|e| corrupt(e.to_string()))?,
            evaluations: serde_json::from_str(&evaluations).map_err(|e| corrupt(e.to_string()))?,
            id: id.clone(),
            model_id,
            error,
            created_at_ms: created,
            started_at_ms: started,
            finished_at_ms: finished,
        }))
    }

    /// Ids of the jobs in `state`, oldest first.
    pub fn job_ids_in_state(&self, state: JobState) -> Result<Vec<String>, JobsError> {
        self.with(|c| {
            let mut statement = c.prepare("SELECT id FROM jobs WHERE state = ?1 ORDER BY created_at, id")?;
            let ids = statement
                .query_map([state.as_str()], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(ids)
        })
    }

    pub fn mark_running(&self, id: &str) -> Result<(), JobsError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?2, started_at = ?3 WHERE id = ?1",
                params![id, JobState::Running.as_str(), now_ms()],
            )
            .map(|_| ())
        })
    }

    pub fn update_progress(&self, id: &str, progress: &Progress) -> Result<(), JobsError> {
        let progress = to_json(progress)?;
        self.with(|c| {
            c.execute("UPDATE jobs SET progress = ?2 WHERE id = ?1", params![id, progress])
                .map(|_| ())
        })
    }

    pub fn add_evaluation(&self, id: &str, evaluation: &Evaluation) -> Result<(), JobsError> {
        let Some(job) = self.job(id)? else {
            return Ok(());
        };
        let mut evaluations = job.evaluations;
        evaluations.push(evaluation.clone());
        let evaluations = to_json(&evaluations)?;
        self.with(|c| {
            c.execute("UPDATE jobs SET evaluations = ?2 WHERE id = ?1", params![id, evaluations])
                .map(|_| ())
        })
    }

    /// Records the model and marks the job succeeded, in one transaction.
    pub fn finish_succeeded(&self, job_id: &str, model: &ModelRow) -> Result<(), JobsError> {
        self.with(|c| {
            let transaction = c.unchecked_transaction()?;
            transaction.execute(
                "INSERT INTO models (id, job_id, path, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![model.id, model.job_id, model.path.to_string_lossy(), model.created_at_ms],
            )?;
            transaction.execute(
                "UPDATE jobs SET state = ?2, model_id = ?3, finished_at = ?4 WHERE id = ?1",
                params![job_id, JobState::Succeeded.as_str(), model.id, now_ms()],
            )?;
            transaction.commit()
        })
    }

    /// Moves a job to a terminal state other than succeeded.
    pub fn finish_unsuccessful(&self, job_id: &str, state: JobState, error: &str) -> Result<(), JobsError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
                params![job_id, state.as_str(), error, now_ms()],
            )
            .map(|_| ())
        })
    }

    pub fn model(&self, id: &str) -> Result<Option<ModelRow>, JobsError> {
        self.with(|c| {
            c.query_row(
                "SELECT id, job_id, path, created_at FROM models WHERE id = ?1",
                [id],
                |r| {
                    Ok(ModelRow {
                        id: r.get(0)?,
                        job_id: r.get(1)?,
                        path: PathBuf::from(r.get::<_, String>(2)?),
                        created_at_ms: r.get(3)?,
                    })
                },
            )
            .optional()
        })
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, JobsError> {
    serde_json::to_string(value).map_err(|e| JobsError::Corrupt {
        record: "value to store".to_string(),
        message: e.to_string(),
    })
}
