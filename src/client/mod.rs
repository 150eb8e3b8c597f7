//! The command-line client: uploads files, starts jobs, follows them and
//! classifies texts over gRPC.

mod folders;
mod output;
mod wait;

use std::path::Path;

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::data::Format;
use crate::pb;
use crate::pb::labelaug_client::LabelaugClient;

pub use output::{
    job_json, model_json, print_classification, print_job_summary, print_jobs, print_models, timestamp_rfc3339,
};
pub use folders::{checkpoint_files, export_model, upload_checkpoint};
pub use wait::wait_for_job;

/// Server address used when neither `--server` nor `LABELAUG_SERVER` is set.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";
/// Bytes per UploadDataset message, well under gRPC's 4 MiB default limit.
const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

pub type Client = LabelaugClient<InterceptedService<Channel, TokenHeader>>;

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone)]
pub struct TokenHeader {
    value: Option<MetadataValue<Ascii>>,
}

impl Interceptor for TokenHeader {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.value {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Connects to a labelaug server, sending `token` as a bearer token when given.
pub async fn connect_with_token(server: &str, token: Option<&str>) -> anyhow::Result<Client> {
    connect_with_options(server, token, None).await
}

/// Connects to a labelaug server. An `https://` address uses TLS and trusts
/// the system's root certificates plus `ca_pem` when given.
pub async fn connect_with_options(server: &str, token: Option<&str>, ca_pem: Option<&[u8]>) -> anyhow::Result<Client> {
    let value = match token {
        Some(token) => Some(
            format!("Bearer {}", token.trim())
                .parse::<MetadataValue<Ascii>>()
                .context("the token must be printable ASCII")?,
        ),
        None => None,
    };
    let mut endpoint =
        Channel::from_shared(server.to_string()).with_context(|| format!("invalid server address {server:?}"))?;
    if server.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(pem) = ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        endpoint = endpoint.tls_config(tls).context("invalid TLS configuration")?;
    } else if ca_pem.is_some() {
        bail!("a CA certificate was given but the server address {server} is not https://");
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("failed to connect to the labelaug server at {server}"))?;
    Ok(LabelaugClient::with_interceptor(channel, TokenHeader { value }))
}

/// Connects to a labelaug server without a token.
pub async fn connect(server: &str) -> anyhow::Result<Client> {
    connect_with_token(server, None).await
}

/// Parses a job state name (`queued`, `running`, `succeeded`, `failed`,
/// `cancelled`) for ListJobs.
pub fn state_from_name(name: &str) -> anyhow::Result<pb::JobState> {
    match name {
        "queued" => Ok(pb::JobState::Queued),
        "running" => Ok(pb::JobState::Running),
        "succeeded" => Ok(pb::JobState::Succeeded),
        "failed" => Ok(pb::JobState::Failed),
        "cancelled" => Ok(pb::JobState::Cancelled),
        other => bail!("unknown job state {other:?}; expected queued, running, succeeded, failed or cancelled"),
    }
}

pub fn format_to_proto(format: Format) -> pb::DataFormat {
    match format {
        Format::Jsonl => pb::DataFormat::Jsonl,
        Format::Clue => pb::DataFormat::Clue,
        Format::Csv => pb::DataFormat::Csv,
        Format::Tsv => pb::DataFormat::Tsv,
    }
}

/// Picks the format from the file extension: `.csv`, `.tsv`, or JSON Lines
/// for `.json` and `.jsonl`.
pub fn format_from_extension(path: &Path) -> anyhow::Result<Format> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => Ok(Format::Csv),
        "tsv" => Ok(Format::Tsv),
        "json" | "jsonl" => Ok(Format::Jsonl),
        _ => bail!(
            "cannot tell the format of {} from its extension; pass --format clue|jsonl|csv|tsv",
            path.display()
        ),
    }
}

/// Reads the next `UPLOAD_CHUNK_BYTES` of `file`, fewer at its end. An empty
/// chunk means the file has ended.
pub(crate) async fn read_chunk(file: &mut tokio::fs::File, path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut chunk = vec![0u8; UPLOAD_CHUNK_BYTES];
    let mut filled = 0;
    while filled < chunk.len() {
        let read = file
            .read(&mut chunk[filled..])
            .await
            .with_context(|| format!("failed to read {}", path.display()))?;
        if read == 0 {
            break;
        }
        filled += read;
    }
    chunk.truncate(filled);
    Ok(chunk)
}

/// Streams a local file to the server and returns its upload response.
pub async fn upload_file(client: &mut Client, path: &Path, format: Format) -> anyhow::Result<pb::UploadDatasetResponse> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("failed to open {}", path.display()))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut messages = vec![pb::UploadDatasetRequest {
        part: Some(pb::upload_dataset_request::Part::Header(pb::DatasetHeader {
            file_name,
            format: format_to_proto(format) as i32,
        })),
    }];
    loop {
        let chunk = read_chunk(&mut file, path).await?;
        if chunk.is_empty() {
            break;
        }
        messages.push(pb::UploadDatasetRequest {
            part: Some(pb::upload_dataset_request::Part::Chunk(chunk)),
        });
    }
    let response = client
        .upload_dataset(tokio_stream::iter(messages))
        .await
        .with_context(|| format!("upload of {} failed", path.display()))?;
    Ok(response.into_inner())
}

pub async fn job_status(client: &mut Client, job_id: &str) -> anyhow::Result<pb::Job> {
    let response = client
        .job_status(pb::JobStatusRequest {
            job_id: job_id.to_string(),
        })
        .await
        .with_context(|| format!("status of job {job_id} failed"))?;
    Ok(response.into_inner())
}

pub async fn classify(client: &mut Client, model_id: &str, texts: Vec<String>, top_k: u32) -> anyhow::Result<pb::ClassifyResponse> {
    let response = client
        .classify(pb::ClassifyRequest {
            model_id: model_id.to_string(),
            texts,
            top_k,
            error_on_truncation: false,
        })
        .await
        .context("classify failed")?;
    Ok(response.into_inner())
}
