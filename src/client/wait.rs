//! Following a job until it ends, with a progress bar on stderr.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{Client, job_status};
use crate::pb;

/// Interval between two JobStatus polls.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

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

/// Polls the job until it ends and returns its final status. With
/// `show_progress`, draws a progress bar on stderr.
pub async fn wait_for_job(client: &mut Client, job_id: &str, show_progress: bool) -> anyhow::Result<pb::Job> {
    let bar = match show_progress {
        true => ProgressBar::new(100),
        false => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    loop {
        let job = job_status(client, job_id).await?;
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
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
