//! Commands that move folders: upload-checkpoint, register-model, export.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use labelaug::client;
use labelaug::pb;

use super::ServerArg;

#[derive(Args)]
pub struct UploadCheckpointArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Local checkpoint folder in the Hugging Face layout (config.json,
    /// model.safetensors or pytorch_model.bin, tokenizer.json or vocab.txt).
    pub dir: PathBuf,
    /// Name shown in the server's logs (default: the folder's name).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RegisterModelArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Hugging Face BERT classifier folder on the server, inside one of its
    /// --model-root folders.
    pub path: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Model id.
    #[arg(long)]
    pub model: String,
    /// Folder to write; must not exist or be empty.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub async fn upload_checkpoint(args: UploadCheckpointArgs) -> anyhow::Result<ExitCode> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => args
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let mut connection = args.server.connect().await?;
    let response = client::upload_checkpoint(&mut connection, &args.dir, &name).await?;
    match args.json {
        true => println!(
            "{}",
            serde_json::json!({
                "checkpoint_id": response.checkpoint_id,
                "size_bytes": response.size_bytes,
                "files": response.files,
            })
        ),
        false => {
            eprintln!(
                "uploaded {} ({} files, {} bytes)",
                args.dir.display(),
                response.files.len(),
                response.size_bytes
            );
            println!("{}", response.checkpoint_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn register_model(args: RegisterModelArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let model = connection
        .register_model(pb::RegisterModelRequest { path: args.path.clone() })
        .await
        .with_context(|| format!("registering {} failed", args.path))?
        .into_inner();
    match args.json {
        true => println!("{}", client::model_json(&model)),
        false => println!("{}", model.model_id),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let files = client::export_model(&mut connection, &args.model, &args.out).await?;
    match args.json {
        true => println!(
            "{}",
            serde_json::json!({ "model_id": args.model, "out": args.out, "files": files })
        ),
        false => println!("wrote model {} to {} ({})", args.model, args.out.display(), files.join(", ")),
    }
    Ok(ExitCode::SUCCESS)
}
