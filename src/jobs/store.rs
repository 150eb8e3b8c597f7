//! The embedded store: one SQLite file for datasets, jobs and models, and
//! folders for uploaded files and model artefacts under the data dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Row, params};

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
    created_at INTEGER NOT NULL,
    num_labels INTEGER NOT NULL,
    accuracy REAL,
    macro_f1 REAL,
    tasks TEXT NOT NULL,
    imported_from TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_creation ON jobs (created_at DESC, id DESC);
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
    pub num_labels: usize,
    /// Best evaluation of the training job, when it had an evaluation set.
    pub accuracy: Option<f64>,
    pub macro_f1: Option<f64>,
    /// Auxiliary tasks and their weights.
    pub tasks: BTreeMap<String, f64>,
    /// For a registered model, the folder it was copied from.
    pub imported_from: Option<String>,
}

/// Position after the last job of a page, for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    pub created_at_ms: i64,
    pub id: String,
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
        for dir in [
            data_dir.to_path_buf(),
            data_dir.join("datasets"),
            data_dir.join("models"),
            data_dir.join("checkpoints"),
            data_dir.join("pretrained"),
            data_dir.join("tmp"),
        ] {
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
        add_missing_columns(&connection).map_err(sqlite)?;
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

    pub fn checkpoint_path(&self, job_id: &str) -> PathBuf {
        self.data_dir.join("checkpoints").join(job_id)
    }

    pub fn model_path(&self, id: &str) -> PathBuf {
        self.data_dir.join("models").join(id)
    }

    /// Folder of an uploaded pretrained checkpoint.
    pub fn pretrained_path(&self, id: &str) -> PathBuf {
        self.data_dir.join("pretrained").join(id)
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
            c.query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), [id], RawJob::read)
                .optional()
        })?;
        row.map(RawJob::parse).transpose()
    }

    /// Returns up to `limit` jobs, newest first, optionally only those in
    /// `state` and only those after `after` in that order.
    pub fn list_jobs(
        &self,
        state: Option<JobState>,
        after: Option<&JobCursor>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, JobsError> {
        let rows = self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs
                 WHERE (?1 IS NULL OR state = ?1)
                   AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
                 ORDER BY created_at DESC, id DESC
                 LIMIT ?4"
            ))?;
            let rows = statement
                .query_map(
                    params![
                        state.map(JobState::as_str),
                        after.map(|a| a.created_at_ms),
                        after.map(|a| a.id.as_str()),
                        limit as i64
                    ],
                    RawJob::read,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter().map(RawJob::parse).collect()
    }

    pub fn count_jobs(&self, state: JobState) -> Result<u64, JobsError> {
        self.with(|c| {
            c.query_row("SELECT COUNT(*) FROM jobs WHERE state = ?1", [state.as_str()], |r| r.get::<_, i64>(0))
                .map(|count| count as u64)
        })
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

    /// Moves a queued job to running; returns false when it is no longer
    /// queued (cancelled meanwhile).
    pub fn mark_running(&self, id: &str) -> Result<bool, JobsError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?2, started_at = COALESCE(started_at, ?3) WHERE id = ?1 AND state = ?4",
                params![id, JobState::Running.as_str(), now_ms(), JobState::Queued.as_str()],
            )
            .map(|changed| changed == 1)
        })
    }

    /// Cancels a job that is still queued; returns false when it is not.
    pub fn cancel_queued(&self, id: &str) -> Result<bool, JobsError> {
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1 AND state = ?5",
                params![
                    id,
                    JobState::Cancelled.as_str(),
                    "cancelled before it started",
                    now_ms(),
                    JobState::Queued.as_str()
                ],
            )
            .map(|changed| changed == 1)
        })
    }

    pub fn update_progress(&self, id: &str, progress: &Progress) -> Result<(), JobsError> {
        let progress = to_json(progress)?;
        self.with(|c| {
            c.execute("UPDATE jobs SET progress = ?2 WHERE id = ?1", params![id, progress])
                .map(|_| ())
        })
    }

    /// Puts jobs that were running when the server stopped back in the
    /// queued state, so that they resume from their checkpoints. Returns
    /// their ids, oldest first.
    pub fn requeue_interrupted(&self) -> Result<Vec<String>, JobsError> {
        let ids = self.job_ids_in_state(JobState::Running)?;
        self.with(|c| {
            c.execute(
                "UPDATE jobs SET state = ?1 WHERE state = ?2",
                params![JobState::Queued.as_str(), JobState::Running.as_str()],
            )
            .map(|_| ())
        })?;
        Ok(ids)
    }

    /// Replaces the stored evaluations, when a job resumes from a checkpoint.
    pub fn set_evaluations(&self, id: &str, evaluations: &[Evaluation]) -> Result<(), JobsError> {
        let evaluations = to_json(&evaluations)?;
        self.with(|c| {
            c.execute("UPDATE jobs SET evaluations = ?2 WHERE id = ?1", params![id, evaluations])
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

    /// Records a model that no job of this store trained.
    pub fn insert_model(&self, model: &ModelRow) -> Result<(), JobsError> {
        let tasks = to_json(&model.tasks)?;
        self.with(|c| insert_model_row(c, model, &tasks))
    }

    /// Records the model and marks the job succeeded, in one transaction.
    pub fn finish_succeeded(&self, job_id: &str, model: &ModelRow) -> Result<(), JobsError> {
        let tasks = to_json(&model.tasks)?;
        self.with(|c| {
            let transaction = c.unchecked_transaction()?;
            insert_model_row(&transaction, model, &tasks)?;
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
        let row = self.with(|c| {
            c.query_row(&format!("SELECT {MODEL_COLUMNS} FROM models WHERE id = ?1"), [id], RawModel::read)
                .optional()
        })?;
        row.map(RawModel::parse).transpose()
    }

    /// Returns every model, newest first.
    pub fn list_models(&self) -> Result<Vec<ModelRow>, JobsError> {
        let rows = self.with(|c| {
            let mut statement = c.prepare(&format!(
                "SELECT {MODEL_COLUMNS} FROM models ORDER BY created_at DESC, id DESC"
            ))?;
            let rows = statement.query_map([], RawModel::read)?.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })?;
        rows.into_iter().map(RawModel::parse).collect()
    }

    /// Deletes a model's record; returns false when there was none.
    pub fn delete_model(&self, id: &str) -> Result<bool, JobsError> {
        self.with(|c| c.execute("DELETE FROM models WHERE id = ?1", [id]).map(|changed| changed == 1))
    }
}

const JOB_COLUMNS: &str =
    "id, state, spec, progress, evaluations, model_id, error, created_at, started_at, finished_at";
const MODEL_COLUMNS: &str = "id, job_id, path, created_at, num_labels, accuracy, macro_f1, tasks, imported_from";

fn insert_model_row(connection: &Connection, model: &ModelRow, tasks: &str) -> rusqlite::Result<()> {
    connection
        .execute(
            "INSERT INTO models (id, job_id, path, created_at, num_labels, accuracy, macro_f1, tasks, imported_from)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                model.id,
                model.job_id,
                model.path.to_string_lossy(),
                model.created_at_ms,
                model.num_labels as i64,
                model.accuracy,
                model.macro_f1,
                tasks,
                model.imported_from
            ],
        )
        .map(|_| ())
}

/// Adds the columns that later versions introduced to a store created
/// before them.
fn add_missing_columns(connection: &Connection) -> rusqlite::Result<()> {
    let mut statement = connection.prepare("SELECT name FROM pragma_table_info('models')")?;
    let columns = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !columns.iter().any(|column| column == "imported_from") {
        connection.execute_batch("ALTER TABLE models ADD COLUMN imported_from TEXT")?;
    }
    Ok(())
}

/// A jobs row as stored, before its JSON columns are parsed.
struct RawJob {
    id: String,
    state: String,
    spec: String,
    progress: String,
    evaluations: String,
    model_id: Option<String>,
    error: Option<String>,
    created_at_ms: i64,
    started_at_ms: Option<i64>,
    finished_at_ms: Option<i64>,
}

impl RawJob {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            state: row.get(1)?,
            spec: row.get(2)?,
            progress: row.get(3)?,
            evaluations: row.get(4)?,
            model_id: row.get(5)?,
            error: row.get(6)?,
            created_at_ms: row.get(7)?,
            started_at_ms: row.get(8)?,
            finished_at_ms: row.get(9)?,
        })
    }

    fn parse(self) -> Result<JobRecord, JobsError> {
        let corrupt = |message: String| JobsError::Corrupt {
            record: format!("job {}", self.id),
            message,
        };
        Ok(JobRecord {
            state: self.state.parse().map_err(corrupt)?,
            spec: serde_json::from_str(&self.spec).map_err(|e| corrupt(e.to_string()))?,
            progress: serde_json::from_str(&self.progress).map_err(|e| corrupt(e.to_string()))?,
            evaluations: serde_json::from_str(&self.evaluations).map_err(|e| corrupt(e.to_string()))?,
            id: self.id.clone(),
            model_id: self.model_id,
            error: self.error,
            created_at_ms: self.created_at_ms,
            started_at_ms: self.started_at_ms,
            finished_at_ms: self.finished_at_ms,
        })
    }
}

/// A models row as stored, before its JSON column is parsed.
struct RawModel {
    row: ModelRow,
    tasks: String,
}

impl RawModel {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            row: ModelRow {
                id: row.get(0)?,
                job_id: row.get(1)?,
                path: PathBuf::from(row.get::<_, String>(2)?),
                created_at_ms: row.get(3)?,
                num_labels: row.get::<_, i64>(4)? as usize,
                accuracy: row.get(5)?,
                macro_f1: row.get(6)?,
                tasks: BTreeMap::new(),
                imported_from: row.get(8)?,
            },
            tasks: row.get(7)?,
        })
    }

    fn parse(self) -> Result<ModelRow, JobsError> {
        let tasks = serde_json::from_str(&self.tasks).map_err(|e| JobsError::Corrupt {
            record: format!("model {}", self.row.id),
            message: e.to_string(),
        })?;
        Ok(ModelRow { tasks, ..self.row })
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, JobsError> {
    serde_json::to_string(value).map_err(|e| JobsError::Corrupt {
        record: "value to store".to_string(),
        message: e.to_string(),
    })
}
