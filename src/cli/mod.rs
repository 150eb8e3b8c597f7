//! Command-line arguments and the command implementations.

pub mod folders;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use labelaug::api::{ServerConfig, serve_with_metrics as run_server};
use labelaug::client::{self, DEFAULT_SERVER};
use labelaug::data::Format;
use labelaug::jobs::DeviceSpec;
use labelaug::pb;

#[derive(Parser)]
#[command(name = "labelaug", version, about = "Train text classifiers with label augmentation and serve them over gRPC")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Log level when `RUST_LOG` is unset: the server logs its work, the
    /// client only warnings.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Serve(_) => "info",
            _ => "warn",
        }
    }

    pub fn log_format(&self) -> LogFormat {
        match &self.command {
            Command::Serve(args) => args.log_format,
            _ => LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Start the gRPC server with the embedded store.
    Serve(ServeArgs),
    /// Upload data and start a training job.
    Train(TrainArgs),
    /// Show a job's state, progress and evaluations.
    Status(StatusArgs),
    /// Follow a job until it ends, with a progress bar on stderr.
    Watch(StatusArgs),
    /// Cancel a queued or running job.
    Cancel(StatusArgs),
    /// List jobs, newest first.
    Jobs(JobsArgs),
    /// List trained models, newest first.
    Models(JsonArgs),
    /// Delete a model and its files.
    DeleteModel(DeleteModelArgs),
    /// Classify texts with a trained model.
    Classify(ClassifyArgs),
    /// Upload a pretrained checkpoint folder; prints its checkpoint id.
    UploadCheckpoint(folders::UploadCheckpointArgs),
    /// Register a Hugging Face BERT classifier folder on the server as a model.
    RegisterModel(folders::RegisterModelArgs),
    /// Write a model as a Hugging Face BertForSequenceClassification folder.
    Export(folders::ExportArgs),
}

#[derive(Args)]
pub struct JobsArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Only jobs in this state: queued, running, succeeded, failed or cancelled.
    #[arg(long)]
    pub state: Option<String>,
    /// Maximum jobs to list.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct JsonArgs {
    #[command(flatten)]
    pub server: ServerArg,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DeleteModelArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Model id.
    pub model: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "LABELAUG_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// Folder of the embedded store: a SQLite file, uploaded datasets and models.
    #[arg(long, env = "LABELAUG_DATA_DIR", default_value = "./labelaug-data")]
    pub data_dir: PathBuf,
    /// Number of CPU training workers (ignored when --devices is given).
    #[arg(long, env = "LABELAUG_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Training devices, one worker each: `cpu` or `cuda:0,cuda:1` (needs the `cuda` feature).
    #[arg(long, env = "LABELAUG_DEVICES")]
    pub devices: Option<String>,
    /// Maximum size of one uploaded dataset, in bytes.
    #[arg(long, env = "LABELAUG_MAX_UPLOAD_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Seconds between two checkpoints of a running job inside an epoch (one is also written after every epoch).
    #[arg(long, env = "LABELAUG_CHECKPOINT_INTERVAL_SECS", default_value_t = 600)]
    pub checkpoint_interval_secs: u64,
    /// Seconds a shutdown waits for running jobs to checkpoint.
    #[arg(long, env = "LABELAUG_SHUTDOWN_TIMEOUT_SECS", default_value_t = 120)]
    pub shutdown_timeout_secs: u64,
    /// File holding the bearer token clients must send; `LABELAUG_AUTH_TOKEN` sets it directly.
    #[arg(long, env = "LABELAUG_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Allow listening on a non-loopback address without an auth token.
    #[arg(long)]
    pub insecure_listen: bool,
    /// PEM certificate chain for TLS; needs --tls-key.
    #[arg(long, env = "LABELAUG_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS; needs --tls-cert.
    #[arg(long, env = "LABELAUG_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Address of the Prometheus metrics endpoint (`GET /metrics`); off when unset.
    #[arg(long, env = "LABELAUG_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Maximum texts in one Classify request.
    #[arg(long, env = "LABELAUG_MAX_CLASSIFY_TEXTS", default_value_t = 256)]
    pub max_classify_texts: usize,
    /// Maximum UTF-8 bytes of one text in a Classify request.
    #[arg(long, env = "LABELAUG_MAX_TEXT_BYTES", default_value_t = 65536)]
    pub max_text_bytes: usize,
    /// Log format: text or json.
    #[arg(long, env = "LABELAUG_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Also train a small model on the bundled Banking77 example and classify with it.
    #[arg(long)]
    pub demo: bool,
    /// Folder whose subfolders requests may name as pretrained checkpoints
    /// or model folders (repeatable); without one, requests name no server path.
    #[arg(long = "model-root", env = "LABELAUG_MODEL_ROOTS", value_delimiter = ':')]
    pub model_roots: Vec<PathBuf>,
    /// Hugging Face BERT classifier folder to register as a model at start-up (repeatable).
    #[arg(long = "import")]
    pub imports: Vec<PathBuf>,
    /// Maximum size of one uploaded checkpoint folder, in bytes.
    #[arg(long, env = "LABELAUG_MAX_CHECKPOINT_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_checkpoint_bytes: u64,
}

#[derive(Args)]
pub struct ServerArg {
    /// Server address.
    #[arg(long, env = "LABELAUG_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// File holding the bearer token, for a server started with an auth token.
    #[arg(long, env = "LABELAUG_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificate to trust for an https:// server, besides the system roots.
    #[arg(long, env = "LABELAUG_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl ServerArg {
    /// Connects with the token from `--token-file`, else from `LABELAUG_TOKEN`.
    async fn connect(&self) -> anyhow::Result<client::Client> {
        let token = match &self.token_file {
            Some(path) => Some(read_token(path)?),
            None => std::env::var("LABELAUG_TOKEN").ok().filter(|t| !t.trim().is_empty()),
        };
        let ca = match &self.tls_ca {
            Some(path) => Some(std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?),
            None => None,
        };
        client::connect_with_options(&self.server, token.as_deref(), ca.as_deref()).await
    }
}

fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(path).with_context(|| format!("failed to read the token file {}", path.display()))?;
    let token = token.trim().to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", path.display());
    }
    Ok(token)
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Training data file.
    #[arg(long)]
    pub train: PathBuf,
    /// Evaluation data file; the best epoch on it is kept.
    #[arg(long)]
    pub eval: Option<PathBuf>,
    /// Record format: clue, jsonl, csv or tsv (default: from the file extension).
    #[arg(long)]
    pub format: Option<Format>,
    /// Field holding the text (default: `sentence` for clue, `text` otherwise).
    #[arg(long)]
    pub text_field: Option<String>,
    /// Field holding the label (default: `label`).
    #[arg(long)]
    pub label_field: Option<String>,
    /// Field holding each record's label description.
    #[arg(long)]
    pub description_field: Option<String>,
    /// File with one description per label (same format as --train).
    #[arg(long)]
    pub label_descriptions: Option<PathBuf>,
    /// Description field of --label-descriptions (default: `label_des`/`label_desc` for clue, `description` otherwise).
    #[arg(long)]
    pub label_descriptions_field: Option<String>,
    /// Auxiliary tasks as name=weight[:option=value], comma-separated, e.g.
    /// `seq2seq=0.2,similarity_masked=1:scale=10,description_records=1`.
    #[arg(long, value_delimiter = ',')]
    pub tasks: Vec<String>,
    #[arg(long)]
    pub epochs: Option<u32>,
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Peak learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Fraction of steps spent warming up the learning rate.
    #[arg(long)]
    pub warmup_ratio: Option<f64>,
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Maximum global gradient norm (0 disables clipping).
    #[arg(long)]
    pub max_grad_norm: Option<f64>,
    /// Maximum tokens per text, [CLS] and [SEP] included.
    #[arg(long)]
    pub max_len: Option<u32>,
    /// Maximum tokens per label description, its [SEP] included.
    #[arg(long)]
    pub max_description_len: Option<u32>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Encoder layers (encoder trained from scratch).
    #[arg(long)]
    pub layers: Option<u32>,
    /// Encoder hidden size.
    #[arg(long)]
    pub hidden_size: Option<u32>,
    /// Attention heads.
    #[arg(long)]
    pub heads: Option<u32>,
    /// Maximum WordPiece vocabulary size.
    #[arg(long)]
    pub vocab_size: Option<u32>,
    /// Dropout probability.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// Fine-tune the pretrained checkpoint in this server folder (inside a
    /// --model-root of the server) instead of training an encoder from scratch.
    #[arg(long, conflicts_with_all = ["checkpoint", "layers", "hidden_size", "heads", "vocab_size", "dropout"])]
    pub encoder: Option<String>,
    /// Fine-tune a checkpoint uploaded with upload-checkpoint, by id.
    #[arg(long, conflicts_with_all = ["layers", "hidden_size", "heads", "vocab_size", "dropout"])]
    pub checkpoint: Option<String>,
    /// Follow the job until it ends, with a progress bar on stderr.
    #[arg(long)]
    pub wait: bool,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Job id.
    pub job: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ClassifyArgs {
    #[command(flatten)]
    pub server: ServerArg,
    /// Model id.
    #[arg(long)]
    pub model: String,
    /// Labels to show per text.
    #[arg(long, default_value_t = 1)]
    pub top_k: u32,
    /// Fail instead of truncating texts longer than the model's maximum length.
    #[arg(long)]
    pub error_on_truncation: bool,
    #[arg(long)]
    pub json: bool,
    /// Texts to classify.
    #[arg(required = true)]
    pub texts: Vec<String>,
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let devices = match &args.devices {
        Some(list) => DeviceSpec::parse_list(list)?,
        None => {
            if args.workers == 0 {
                bail!("--workers must be at least 1");
            }
            vec![DeviceSpec::Cpu; args.workers]
        }
    };
    let auth_token = match &args.auth_token_file {
        Some(path) => Some(read_token(path)?),
        None => std::env::var("LABELAUG_AUTH_TOKEN").ok().filter(|t| !t.trim().is_empty()),
    };
    if auth_token.is_none() && !args.listen.ip().is_loopback() && !args.insecure_listen {
        bail!(
            "refusing to listen on {} without an auth token: set --auth-token-file or LABELAUG_AUTH_TOKEN, \
             or pass --insecure-listen",
            args.listen
        );
    }
    let mut config = ServerConfig::new(args.data_dir.clone());
    config.auth_token = auth_token;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let read = |path: &PathBuf| std::fs::read(path).with_context(|| format!("failed to read {}", path.display()));
        config.tls = Some(labelaug::api::TlsIdentity {
            certificate_pem: read(cert)?,
            key_pem: read(key)?,
        });
    }
    if args.max_classify_texts == 0 || args.max_text_bytes == 0 {
        bail!("--max-classify-texts and --max-text-bytes must be at least 1");
    }
    config.classify_limits = labelaug::serve::ClassifyLimits {
        max_texts: args.max_classify_texts,
        max_text_bytes: args.max_text_bytes,
    };
    config.devices = devices;
    config.max_upload_bytes = args.max_upload_bytes;
    config.max_checkpoint_bytes = args.max_checkpoint_bytes;
    config.model_roots = args.model_roots.clone();
    config.imports = args.imports.clone();
    config.checkpoint_interval = std::time::Duration::from_secs(args.checkpoint_interval_secs);
    config.shutdown_timeout = std::time::Duration::from_secs(args.shutdown_timeout_secs);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    if args.demo && config.tls.is_some() {
        bail!("--demo connects over plain HTTP/2 and cannot be combined with --tls-cert");
    }
    if args.demo {
        tokio::spawn(crate::demo::run(format!("http://{address}"), config.auth_token.clone()));
    }
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    };
    let metrics_listener = match args.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("failed to listen on {address} for metrics"))?,
        ),
        None => None,
    };
    run_server(listener, metrics_listener, config, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "failed to listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "failed to listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// Parses `name=weight[:option=value...]` task specifications, e.g.
/// `seq2seq=0.2`, `similarity_masked=1:scale=10` or
/// `distill=1:T=2:teacher=model-...`; the weight defaults to 1. Every option
/// is a number except `teacher`, the teacher model's id.
fn parse_tasks(specs: &[String]) -> anyhow::Result<Vec<pb::TaskSpec>> {
    let number = |spec: &str, text: &str| -> anyhow::Result<f64> {
        text.trim()
            .parse::<f64>()
            .with_context(|| format!("--tasks {spec}: {text:?} is not a number"))
    };
    specs
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|spec| {
            let mut parts = spec.split(':');
            let head = parts.next().unwrap_or_default();
            let (name, weight) = match head.split_once('=') {
                Some((name, weight)) => (name.trim(), number(spec, weight)?),
                None => (head.trim(), 1.0),
            };
            let mut options = std::collections::HashMap::new();
            let mut teacher_model_id = String::new();
            for option in parts {
                let Some((key, value)) = option.split_once('=') else {
                    bail!("--tasks {spec}: option {option:?} is not key=value");
                };
                match key.trim() {
                    "teacher" => teacher_model_id = value.trim().to_string(),
                    key => {
                        options.insert(key.to_string(), number(spec, value)?);
                    }
                }
            }
            Ok(pb::TaskSpec {
                name: name.to_string(),
                weight: weight as f32,
                options,
                teacher_model_id,
            })
        })
        .collect()
}

fn training_request(args: &TrainArgs, train_id: String, eval_id: String, descriptions_id: Option<String>) -> anyhow::Result<pb::StartTrainingRequest> {
    Ok(pb::StartTrainingRequest {
        train_dataset_id: train_id,
        eval_dataset_id: eval_id,
        fields: Some(pb::FieldMapping {
            text_field: args.text_field.clone().unwrap_or_default(),
            label_field: args.label_field.clone().unwrap_or_default(),
            description_field: args.description_field.clone().unwrap_or_default(),
        }),
        label_descriptions: descriptions_id.map(|dataset_id| pb::LabelDescriptions {
            dataset_id,
            label_field: String::new(),
            description_field: args.label_descriptions_field.clone().unwrap_or_default(),
        }),
        encoder: Some(encoder_request(args)),
        tasks: parse_tasks(&args.tasks)?,
        hyperparameters: Some(pb::Hyperparameters {
            epochs: args.epochs,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            warmup_ratio: args.warmup_ratio,
            weight_decay: args.weight_decay,
            max_grad_norm: args.max_grad_norm,
            max_length: args.max_len,
            max_description_length: args.max_description_len,
            seed: args.seed,
        }),
    })
}

fn encoder_request(args: &TrainArgs) -> pb::EncoderSpec {
    use pb::pretrained_encoder::Source;
    let pretrained = |source| pb::encoder_spec::Source::Pretrained(pb::PretrainedEncoder { source: Some(source) });
    let source = match (&args.encoder, &args.checkpoint) {
        (Some(path), _) => pretrained(Source::Path(path.clone())),
        (None, Some(id)) => pretrained(Source::CheckpointId(id.clone())),
        (None, None) => pb::encoder_spec::Source::Scratch(pb::ScratchEncoder {
            num_layers: args.layers.unwrap_or(0),
            hidden_size: args.hidden_size.unwrap_or(0),
            num_heads: args.heads.unwrap_or(0),
            intermediate_size: 0,
            vocab_size: args.vocab_size.unwrap_or(0),
            dropout: args.dropout,
        }),
    };
    pb::EncoderSpec { source: Some(source) }
}

pub async fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format {
        Some(format) => format,
        None => client::format_from_extension(&args.train)?,
    };
    let mut connection = args.server.connect().await?;
    let train = client::upload_file(&mut connection, &args.train, format).await?;
    eprintln!("uploaded {} ({} records) as {}", args.train.display(), train.records, train.dataset_id);
    let eval_id = match &args.eval {
        Some(path) => {
            let eval = client::upload_file(&mut connection, path, format).await?;
            eprintln!("uploaded {} ({} records) as {}", path.display(), eval.records, eval.dataset_id);
            eval.dataset_id
        }
        None => String::new(),
    };
    let descriptions_id = match &args.label_descriptions {
        Some(path) => Some(client::upload_file(&mut connection, path, format).await?.dataset_id),
        None => None,
    };
    let request = training_request(&args, train.dataset_id, eval_id, descriptions_id)?;
    let job_id = connection
        .start_training(request)
        .await
        .context("StartTraining failed")?
        .into_inner()
        .job_id;
    if !args.wait {
        match args.json {
            true => println!("{}", serde_json::json!({"job_id": job_id, "state": "queued"})),
            false => println!("{job_id}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("job {job_id} queued");
    let job = client::wait_for_job(&mut connection, &job_id, true).await?;
    match args.json {
        true => println!("{}", client::job_json(&job)),
        false => client::print_job_summary(&job),
    }
    Ok(exit_code_for(&job))
}

fn exit_code_for(job: &pb::Job) -> ExitCode {
    match pb::JobState::try_from(job.state) {
        Ok(pb::JobState::Succeeded) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let job = client::job_status(&mut connection, &args.job).await?;
    match args.json {
        true => println!("{}", client::job_json(&job)),
        false => client::print_job_summary(&job),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn watch(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let job = client::wait_for_job(&mut connection, &args.job, true).await?;
    match args.json {
        true => println!("{}", client::job_json(&job)),
        false => client::print_job_summary(&job),
    }
    Ok(exit_code_for(&job))
}

pub async fn cancel(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let job = connection
        .cancel_job(pb::CancelJobRequest { job_id: args.job.clone() })
        .await
        .with_context(|| format!("cancelling job {} failed", args.job))?
        .into_inner();
    match args.json {
        true => println!("{}", client::job_json(&job)),
        false => client::print_job_summary(&job),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let state = match &args.state {
        Some(name) => client::state_from_name(name)? as i32,
        None => pb::JobState::Unspecified as i32,
    };
    let mut connection = args.server.connect().await?;
    let mut jobs = Vec::new();
    let mut page_token = String::new();
    while jobs.len() < args.limit as usize {
        let remaining = args.limit as usize - jobs.len();
        let page = connection
            .list_jobs(pb::ListJobsRequest {
                state,
                page_size: remaining.min(500) as u32,
                page_token: page_token.clone(),
            })
            .await
            .context("listing jobs failed")?
            .into_inner();
        jobs.extend(page.jobs);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    match args.json {
        true => println!("{}", serde_json::json!({ "jobs": jobs.iter().map(client::job_json).collect::<Vec<_>>() })),
        false => client::print_jobs(&jobs),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn models(args: JsonArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let models = connection
        .list_models(pb::ListModelsRequest {})
        .await
        .context("listing models failed")?
        .into_inner()
        .models;
    match args.json {
        true => println!(
            "{}",
            serde_json::json!({ "models": models.iter().map(client::model_json).collect::<Vec<_>>() })
        ),
        false => client::print_models(&models),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn delete_model(args: DeleteModelArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    connection
        .delete_model(pb::DeleteModelRequest {
            model_id: args.model.clone(),
        })
        .await
        .with_context(|| format!("deleting model {} failed", args.model))?;
    match args.json {
        true => println!("{}", serde_json::json!({ "model_id": args.model, "deleted": true })),
        false => println!("deleted model {}", args.model),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn classify(args: ClassifyArgs) -> anyhow::Result<ExitCode> {
    let mut connection = args.server.connect().await?;
    let response = connection
        .classify(pb::ClassifyRequest {
            model_id: args.model.clone(),
            texts: args.texts.clone(),
            top_k: args.top_k,
            error_on_truncation: args.error_on_truncation,
        })
        .await
        .context("classify failed")?
        .into_inner();
    client::print_classification(&args.texts, &response, args.json);
    Ok(ExitCode::SUCCESS)
}
