//! UploadDataset: streams a file into the data dir with a size limit and a
//! SHA-256, checks its syntax, and records it. A failed upload leaves no
//! file behind.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;
use tonic::{Status, Streaming};
use tracing::{info, warn};

use super::convert::format_from_proto;
use super::status::{data_error, invalid, jobs_error, join_error};
use crate::data::{self, Format};
use crate::jobs::{DatasetRow, Store, new_id};
use crate::jobs::JobsError;
use crate::pb;

/// Maximum bytes of a file name given in the header.
const MAX_FILE_NAME_BYTES: usize = 255;

/// Removes the temporary file unless the upload completed.
struct PartialFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(error) = std::fs::remove_file(&self.path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    warn!(path = %self.path.display(), %error, "failed to remove a partial upload");
                }
            }
        }
    }
}

fn header(message: Option<pb::UploadDatasetRequest>) -> Result<(String, Format), Status> {
    let Some(pb::UploadDatasetRequest {
        part: Some(pb::upload_dataset_request::Part::Header(header)),
    }) = message
    else {
        return Err(Status::invalid_argument(
            "header: the first UploadDataset message must carry the header (file name and format)",
        ));
    };
    let name = header.file_name.trim();
    if name.is_empty() {
        return Err(invalid("header.file_name", "\"\"", "is required"));
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(invalid("header.file_name", name.len(), "exceeds 255 bytes"));
    }
    let format = format_from_proto(header.format, "header.format")?;
    Ok((name.to_string(), format))
}

pub async fn upload(
    store: Arc<Store>,
    mut stream: Streaming<pb::UploadDatasetRequest>,
    max_bytes: u64,
) -> Result<pb::UploadDatasetResponse, Status> {
    let (file_name, format) = header(stream.next().await.transpose()?)?;
    let id = new_id("ds");
    let partial_path = store.tmp_dir().join(format!("{id}.partial"));
    let mut partial = PartialFile {
        path: partial_path.clone(),
        keep: false,
    };
    let io_error = |path: &Path, source| jobs_error(&JobsError::Io { path: path.to_path_buf(), source });
    let mut file = tokio::fs::File::create(&partial_path)
        .await
        .map_err(|e| io_error(&partial_path, e))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(message) = stream.next().await {
        let message = message?;
        let chunk = match message.part {
            Some(pb::upload_dataset_request::Part::Chunk(chunk)) => chunk,
            Some(pb::upload_dataset_request::Part::Header(_)) => {
                return Err(Status::invalid_argument("header: only the first message may carry a header"));
            }
            None => continue,
        };
        size += chunk.len() as u64;
        if size > max_bytes {
            return Err(Status::resource_exhausted(format!(
                "{file_name}: the upload exceeds the maximum dataset size of {max_bytes} bytes"
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| io_error(&partial_path, e))?;
    }
    file.sync_all().await.map_err(|e| io_error(&partial_path, e))?;
    drop(file);

    let check_path = partial_path.clone();
    let check_name = file_name.clone();
    let records = tokio::task::spawn_blocking(move || data::check_syntax(&check_path, &check_name, format))
        .await
        .map_err(join_error)?
        .map_err(|e| data_error(&e))?;

    let final_path = store.dataset_path(&id);
    tokio::fs::rename(&partial_path, &final_path)
        .await
        .map_err(|e| io_error(&final_path, e))?;
    partial.keep = true;
    let sha256 = hex::encode(hasher.finalize());
    let row = DatasetRow {
        id: id.clone(),
        file_name: file_name.clone(),
        format,
        path: final_path.clone(),
        sha256: sha256.clone(),
        size_bytes: size,
        records: records as u64,
        created_at_ms: crate::jobs::now_ms(),
    };
    let insert_store = store.clone();
    let inserted = tokio::task::spawn_blocking(move || insert_store.insert_dataset(&row))
        .await
        .map_err(join_error)?;
    if let Err(error) = inserted {
        let _ = std::fs::remove_file(&final_path);
        return Err(jobs_error(&error));
    }
    info!(dataset_id = %id, file_name, size, records, "dataset uploaded");
    Ok(pb::UploadDatasetResponse {
        dataset_id: id,
        size_bytes: size,
        sha256,
        records: records as u64,
    })
}
