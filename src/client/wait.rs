//! Following a job until it ends, with a progress bar on stderr.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Client, job_status};
use crate::pb;

fn is_terminal(state: i32) -> bool {
    matches!(
        pb::JobState::try_from(state),
        Ok(pb::JobState::Succeeded | pb::JobState::Failed | pb::JobState::Cancelled)
    )
}

fn describe(job: &pb::Job) -> String {
    let mut losses: Vec<String> = job.losses.iter().map(|(name, value)| format!("{name} {value:.4}")).collect();
    losses.sort();
    let eta = job
        .eta_seconds
        .map(|s| format!(" | ETA {}", format_duration(s)))
        .unwrap_or_default();
    let last_eval = job
        .evaluations
        .last()
        .map(|e| format!(" | eval acc {:.2}% F1 {:.2}%", 100.0 * e.accuracy, 100.0 * e.macro_f1))
        .unwrap_or_default();
    format!(
        "epoch {}/{} step {}/{} | {} | {:.1} samples/s{eta}{last_eval}",
        job.epoch,
        job.epochs,
        job.step,
        job.total_steps,
        losses.join(", "),
        job.samples_per_second
    )
}

fn format_duration(seconds: f64) -> String {
    let total = seconds.round().max(0.0) as u64;
    format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
}

/// Follows the job through WatchJob until it ends and returns its final
/// status. With `show_progress`, draws a progress bar on stderr.
pub async fn wait_for_job(client: &mut Client, job_id: &str, show_progress: bool) -> anyhow::Result<pb::Job> {
    let bar = match show_progress {
        true => ProgressBar::new(100),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut stream = client
        .watch_job(pb::JobStatusRequest {
            job_id: job_id.to_string(),
        })
        .await
        .with_context(|| format!("watching job {job_id} failed"))?
        .into_inner();
    while let Some(job) = stream
        .message()
        .await
        .with_context(|| format!("watching job {job_id} failed"))?
    {
        if job.total_steps > 0 {
            bar.set_position(job.progress_percent.round() as u64);
        }
        match pb::JobState::try_from(job.state) {
            Ok(pb::JobState::Queued) => bar.set_message("queued"),
            _ => bar.set_message(describe(&job)),
        }
        if is_terminal(job.state) {
            bar.finish_and_clear();
            return Ok(job);
        }
    }
    bar.finish_and_clear();
    // The stream closed before the job ended, e.g. the server stopped.
    let job = job_status(client, job_id).await?;
    match is_terminal(job.state) {
        true => Ok(job),
        false => anyhow::bail!("the server closed the watch of job {job_id} before it ended"),
    }
}
