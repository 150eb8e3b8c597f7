//! Client side of UploadCheckpoint and ExportModel: a local folder streamed
//! to the server, and a model's files written into a local folder.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{Client, UPLOAD_CHUNK_BYTES, read_chunk};
use crate::pb;
use crate::serve::check_file_name;

/// Lists the files of a checkpoint folder to upload: regular files directly
/// inside it, hidden ones left out, sorted by name.
pub fn checkpoint_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("failed to read the folder {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("failed to read the folder {}", dir.display()))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("{} contains no files to upload", dir.display());
    }
    Ok(files)
}

/// Streams the folder `dir` as a checkpoint named `name`.
pub async fn upload_checkpoint(
    client: &mut Client,
    dir: &Path,
    name: &str,
) -> anyhow::Result<pb::UploadCheckpointResponse> {
    let files = checkpoint_files(dir)?;
    let (sender, receiver) = mpsc::channel(4);
    let header = pb::UploadCheckpointRequest {
        part: Some(pb::upload_checkpoint_request::Part::Header(pb::CheckpointHeader {
            name: name.to_string(),
        })),
    };
    sender.send(header).await.context("the upload stream closed")?;

    let reader = tokio::spawn(async move {
        for path in files {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut file = tokio::fs::File::open(&path)
                .await
                .with_context(|| format!("failed to open {}", path.display()))?;
            let mut first = true;
            loop {
                let data = read_chunk(&mut file, &path).await?;
                let filled = data.len();
                // An empty file is sent as one chunk without data.
                if filled == 0 && !first {
                    break;
                }
                first = false;
                let chunk = pb::UploadCheckpointRequest {
                    part: Some(pb::upload_checkpoint_request::Part::File(pb::FileChunk {
                        path: file_name.clone(),
                        data,
                    })),
                };
                if sender.send(chunk).await.is_err() {
                    // The call ended early, and its status gives the reason.
                    return Ok(());
                }
                if filled < UPLOAD_CHUNK_BYTES {
                    break;
                }
            }
        }
        anyhow::Ok(())
    });

    let call = client.upload_checkpoint(ReceiverStream::new(receiver));
    tokio::pin!(call);
    let mut reader = reader;
    // A local read error must cancel the call: ending the stream cleanly
    // would let the server accept a cut-off folder.
    let response = tokio::select! {
        response = &mut call => response,
        read = &mut reader => {
            read.context("the file reader stopped")??;
            call.await
        }
    };
    let response = response.with_context(|| format!("upload of the checkpoint {} failed", dir.display()))?;
    Ok(response.into_inner())
}

/// Writes the files of model `model_id` into `out`, which must not exist
/// or be empty. The files arrive in a staging folder beside `out` that is
/// renamed into place, so a failed export leaves `out` as it was.
pub async fn export_model(client: &mut Client, model_id: &str, out: &Path) -> anyhow::Result<Vec<String>> {
    if out.exists() {
        let mut entries = std::fs::read_dir(out).with_context(|| format!("{} is not a readable folder", out.display()))?;
        if entries.next().is_some() {
            bail!("{} exists and is not empty; choose a new --out folder", out.display());
        }
    }
    let mut staging_name = out.file_name().unwrap_or_default().to_os_string();
    staging_name.push(format!(".{}.partial", uuid::Uuid::new_v4().simple()));
    let staging = out.with_file_name(staging_name);
    std::fs::create_dir_all(&staging).with_context(|| format!("failed to create {}", staging.display()))?;
    let written = receive_files(client, model_id, &staging).await;
    match written {
        Ok(files) => {
            // rename replaces an empty folder at `out`.
            if let Err(error) = std::fs::rename(&staging, out) {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(error).with_context(|| format!("failed to move the export to {}", out.display()));
            }
            Ok(files)
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(error)
        }
    }
}

async fn receive_files(client: &mut Client, model_id: &str, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut stream = client
        .export_model(pb::ExportModelRequest {
            model_id: model_id.to_string(),
        })
        .await
        .with_context(|| format!("export of model {model_id} failed"))?
        .into_inner();
    let mut files: Vec<String> = Vec::new();
    let mut current: Option<tokio::fs::File> = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("export of model {model_id} failed"))?;
        if files.last() != Some(&chunk.path) {
            check_file_name(&chunk.path).with_context(|| format!("the server sent {:?}", chunk.path))?;
            if files.contains(&chunk.path) {
                bail!("the server sent {} twice", chunk.path);
            }
            if let Some(file) = current.take() {
                file.sync_all().await?;
            }
            let path = dir.join(&chunk.path);
            current = Some(
                tokio::fs::File::create(&path)
                    .await
                    .with_context(|| format!("failed to create {}", path.display()))?,
            );
            files.push(chunk.path.clone());
        }
        if let Some(file) = current.as_mut() {
            file.write_all(&chunk.data).await.context("failed to write the export")?;
        }
    }
    if let Some(file) = current.take() {
        file.sync_all().await?;
    }
    if files.is_empty() {
        bail!("the server sent no files for model {model_id}");
    }
    Ok(files)
}
