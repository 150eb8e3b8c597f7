//! `labelaug`: the server (`serve`) and its command-line client (`train`,
//! `status`, `watch`, `cancel`, `jobs`, `models`, `delete-model`, `classify`,
//! `upload-checkpoint`, `register-model`, `export`).

mod cli;
mod demo;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cli.default_log_filter()));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format() {
        cli::LogFormat::Text => logs.init(),
        cli::LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: failed to start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cli::serve(args).await,
            Command::Train(args) => cli::train(args).await,
            Command::Status(args) => cli::status(args).await,
            Command::Watch(args) => cli::watch(args).await,
            Command::Cancel(args) => cli::cancel(args).await,
            Command::Jobs(args) => cli::jobs(args).await,
            Command::Models(args) => cli::models(args).await,
            Command::DeleteModel(args) => cli::delete_model(args).await,
            Command::Classify(args) => cli::classify(args).await,
            Command::UploadCheckpoint(args) => cli::folders::upload_checkpoint(args).await,
            Command::RegisterModel(args) => cli::folders::register_model(args).await,
            Command::Export(args) => cli::folders::export(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
