//! UploadCheckpoint, RegisterModel and ExportModel: folders of files in
//! and out of the data dir.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use tracing::{info, warn};

use super::convert::model_to_proto;
use super::status::{invalid, jobs_error, join_error, root_error, transfer_error};
use crate::jobs::{JobsError, Store, new_id};
use crate::model::ModelRoots;
use crate::pb;
use crate::serve::{FolderTransferError, accept_checkpoint, check_file_name, folder_files, register_model};

/// Bytes per exported chunk.
const EXPORT_CHUNK_BYTES: usize = 1 << 20;
/// Most files one checkpoint upload may hold.
const MAX_CHECKPOINT_FILES: usize = 64;

/// Removes a staging folder unless the transfer completed.
struct StagingFolder {
    path: PathBuf,
    keep: bool,
}

impl Drop for StagingFolder {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(error) = std::fs::remove_dir_all(&self.path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    warn!(path = %self.path.display(), %error, "failed to remove a partial checkpoint upload");
                }
            }
        }
    }
}

fn io_status(path: &Path, source: std::io::Error) -> Status {
    jobs_error(&JobsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn file_name_status(error: &FolderTransferError, field: &str) -> Status {
    Status::invalid_argument(format!("{field}: {error}"))
}

/// Receives a checkpoint folder, checks it loads, and stores it under a
/// new checkpoint id.
///
/// NOTE: no RPC deletes an uploaded checkpoint yet, so each upload keeps its
/// disk space (up to --max-checkpoint-bytes) until an operator removes
/// `pretrained/<id>` from the data dir.
pub async fn upload_checkpoint(
    store: Arc<Store>,
    mut stream: Streaming<pb::UploadCheckpointRequest>,
    max_bytes: u64,
) -> Result<pb::UploadCheckpointResponse, Status> {
    let name = match stream.next().await.transpose()? {
        Some(pb::UploadCheckpointRequest {
            part: Some(pb::upload_checkpoint_request::Part::Header(header)),
        }) => header.name,
        _ => {
            return Err(Status::invalid_argument(
                "header: the first UploadCheckpoint message must carry the header",
            ));
        }
    };
    let id = new_id("ckpt");
    let staging = StagingFolder {
        path: store.tmp_dir().join(format!("{id}.partial")),
        keep: false,
    };
    tokio::fs::create_dir_all(&staging.path)
        .await
        .map_err(|e| io_status(&staging.path, e))?;

    let mut files: Vec<String> = Vec::new();
    let mut current: Option<(String, tokio::fs::File)> = None;
    let mut size = 0u64;
    while let Some(message) = stream.next().await {
        let chunk = match message?.part {
            Some(pb::upload_checkpoint_request::Part::File(chunk)) => chunk,
            Some(pb::upload_checkpoint_request::Part::Header(_)) => {
                return Err(Status::invalid_argument("header: only the first message may carry a header"));
            }
            None => continue,
        };
        let field = format!("file.path {:?}", chunk.path);
        if current.as_ref().is_none_or(|(path, _)| *path != chunk.path) {
            check_file_name(&chunk.path).map_err(|e| file_name_status(&e, "file.path"))?;
            if files.contains(&chunk.path) {
                return Err(invalid(&field, "", "the file was sent already; send a file's chunks together"));
            }
            if files.len() == MAX_CHECKPOINT_FILES {
                return Err(invalid(
                    &field,
                    "",
                    &format!("a checkpoint has at most {MAX_CHECKPOINT_FILES} files"),
                ));
            }
            if let Some((_, file)) = current.take() {
                file.sync_all().await.map_err(|e| io_status(&staging.path, e))?;
            }
            let path = staging.path.join(&chunk.path);
            let file = tokio::fs::File::create(&path).await.map_err(|e| io_status(&path, e))?;
            files.push(chunk.path.clone());
            current = Some((chunk.path.clone(), file));
        }
        size += chunk.data.len() as u64;
        if size > max_bytes {
            return Err(Status::resource_exhausted(format!(
                "checkpoint {name:?}: the upload exceeds the maximum checkpoint size of {max_bytes} bytes"
            )));
        }
        if let Some((_, file)) = current.as_mut() {
            file.write_all(&chunk.data).await.map_err(|e| io_status(&staging.path, e))?;
        }
    }
    if let Some((_, file)) = current.take() {
        file.sync_all().await.map_err(|e| io_status(&staging.path, e))?;
    }

    let target = store.pretrained_path(&id);
    // The staging guard moves into the check, so that a client leaving now
    // cannot remove the folder while it is checked and renamed.
    let accepted = tokio::task::spawn_blocking(move || {
        let mut staging = staging;
        let accepted = accept_checkpoint(&staging.path, &target);
        staging.keep = accepted.is_ok();
        accepted
    })
    .await
    .map_err(join_error)?;
    if let Err(error) = accepted {
        warn!(checkpoint_id = %id, name, %error, "checkpoint rejected");
        return Err(match error {
            FolderTransferError::Checkpoint { source, .. } => {
                Status::invalid_argument(format!("checkpoint {name:?}: {source}"))
            }
            other => transfer_error(&other),
        });
    }
    files.sort();
    info!(checkpoint_id = %id, name, size, files = files.len(), "checkpoint uploaded");
    Ok(pb::UploadCheckpointResponse {
        checkpoint_id: id,
        size_bytes: size,
        files,
    })
}

/// Registers a classifier folder named by a request, inside the roots.
pub async fn register(store: Arc<Store>, roots: Arc<ModelRoots>, path: String) -> Result<pb::Model, Status> {
    if path.is_empty() {
        return Err(invalid("path", "\"\"", "is required"));
    }
    let resolved = roots.resolve(&path).map_err(|e| root_error(&e))?;
    let registered = tokio::task::spawn_blocking(move || register_model(&store, &resolved))
        .await
        .map_err(join_error)?
        .map_err(|e| transfer_error(&e))?;
    if registered.existed {
        info!(model_id = %registered.row.id, path, "model was registered already");
    }
    Ok(model_to_proto(&registered.row))
}

/// Streams the files of a model folder in name order.
pub async fn export(store: Arc<Store>, model_id: String) -> Result<ReceiverStream<Result<pb::FileChunk, Status>>, Status> {
    if model_id.is_empty() {
        return Err(invalid("model_id", "\"\"", "is required"));
    }
    let lookup_store = store.clone();
    let lookup_id = model_id.clone();
    let row = tokio::task::spawn_blocking(move || lookup_store.model(&lookup_id))
        .await
        .map_err(join_error)?
        .map_err(|e| jobs_error(&e))?
        .ok_or_else(|| Status::not_found(format!("model {model_id:?} not found")))?;
    let files = folder_files(&row.path).map_err(|e| transfer_error(&e))?;
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for path in files {
            match send_file(&path, &sender) {
                Ok(true) => {}
                Ok(false) => {
                    info!(model_id = %model_id, "export stopped: the client went away");
                    return;
                }
                Err(status) => {
                    warn!(model_id = %model_id, path = %path.display(), error = %status.message(), "export failed");
                    let _ = sender.blocking_send(Err(status));
                    return;
                }
            }
        }
        info!(model_id = %model_id, "model exported");
    });
    Ok(ReceiverStream::new(receiver))
}

/// Sends one file in chunks, an empty file as one chunk without data.
/// Returns false when the client has gone away.
fn send_file(path: &Path, sender: &mpsc::Sender<Result<pb::FileChunk, Status>>) -> Result<bool, Status> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut file = std::fs::File::open(path).map_err(|e| io_status(path, e))?;
    let mut first = true;
    loop {
        let mut data = vec![0; EXPORT_CHUNK_BYTES];
        let read = read_full(&mut file, &mut data).map_err(|e| io_status(path, e))?;
        data.truncate(read);
        if read == 0 && !first {
            return Ok(true);
        }
        first = false;
        let chunk = pb::FileChunk {
            path: name.clone(),
            data,
        };
        if sender.blocking_send(Ok(chunk)).is_err() {
            return Ok(false);
        }
        if read < EXPORT_CHUNK_BYTES {
            return Ok(true);
        }
    }
}

/// Fills `buffer` unless the file ends first, and returns the bytes read.
fn read_full(file: &mut std::fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..])? {
            0 => break,
            read => filled += read,
        }
    }
    Ok(filled)
}
