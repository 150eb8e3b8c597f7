//! Human-readable and JSON renderings of responses. JSON keys follow the
//! proto field names.

use serde_json::{Value, json};

use crate::pb;

fn state_name(state: i32) -> &'static str {
    match pb::JobState::try_from(state) {
        Ok(pb::JobState::Queued) => "queued",
        Ok(pb::JobState::Running) => "running",
        Ok(pb::JobState::Succeeded) => "succeeded",
        Ok(pb::JobState::Failed) => "failed",
        Ok(pb::JobState::Cancelled) => "cancelled",
        _ => "unspecified",
    }
}

/// Formats a timestamp as RFC 3339 in UTC, e.g. `2026-12-04T20:34:35.120Z`.
pub fn timestamp_rfc3339(timestamp: &prost_types::Timestamp) -> String {
    let days = timestamp.seconds.div_euclid(86_400);
    let seconds_of_day = timestamp.seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        seconds_of_day / 3600,
        seconds_of_day / 60 % 60,
        seconds_of_day % 60,
        timestamp.nanos / 1_000_000
    )
}

fn best(job: &pb::Job) -> Option<&pb::EpochEvaluation> {
    let epoch = job.best_epoch?;
    job.evaluations.iter().find(|e| e.epoch == epoch)
}

/// Renders the job as one JSON object, with the best evaluation's
/// `accuracy` and `macro_f1` at the top level.
pub fn job_json(job: &pb::Job) -> Value {
    let best = best(job);
    json!({
        "job_id": job.job_id,
        "state": state_name(job.state),
        "epoch": job.epoch,
        "epochs": job.epochs,
        "step": job.step,
        "total_steps": job.total_steps,
        "progress_percent": job.progress_percent,
        "eta_seconds": job.eta_seconds,
        "losses": job.losses,
        "samples_per_second": job.samples_per_second,
        "evaluations": job.evaluations.iter().map(|e| json!({
            "epoch": e.epoch,
            "accuracy": e.accuracy,
            "macro_f1": e.macro_f1,
            "loss": e.loss,
            "records": e.records,
        })).collect::<Vec<_>>(),
        "best_epoch": job.best_epoch,
        "accuracy": best.map(|e| e.accuracy),
        "macro_f1": best.map(|e| e.macro_f1),
        "model_id": (!job.model_id.is_empty()).then_some(&job.model_id),
        "error": (!job.error.is_empty()).then_some(&job.error),
        "created_at": job.created_at.as_ref().map(timestamp_rfc3339),
        "started_at": job.started_at.as_ref().map(timestamp_rfc3339),
        "finished_at": job.finished_at.as_ref().map(timestamp_rfc3339),
    })
}

/// Renders a model as one JSON object.
pub fn model_json(model: &pb::Model) -> Value {
    json!({
        "model_id": model.model_id,
        "job_id": model.job_id,
        "created_at": model.created_at.as_ref().map(timestamp_rfc3339),
        "accuracy": model.accuracy,
        "macro_f1": model.macro_f1,
        "num_labels": model.num_labels,
        "tasks": model.tasks,
        "imported_from": Some(&model.imported_from).filter(|path| !path.is_empty()),
    })
}

/// Prints one line per model: id, accuracy, macro-F1, labels, tasks.
pub fn print_models(models: &[pb::Model]) {
    for model in models {
        let percent = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{:.2}%", 100.0 * v));
        let mut tasks: Vec<String> = model.tasks.iter().map(|(k, v)| format!("{k}={v}")).collect();
        tasks.sort();
        let origin = match model.job_id.is_empty() {
            true => format!("imported from {}", model.imported_from),
            false => format!("job {}", model.job_id),
        };
        println!(
            "{}  accuracy {}  macro-F1 {}  {} labels  tasks [{}]  {}",
            model.model_id,
            percent(model.accuracy),
            percent(model.macro_f1),
            model.num_labels,
            tasks.join(","),
            origin
        );
    }
}

/// Prints one line per job: id, state, progress, best accuracy, model.
pub fn print_jobs(jobs: &[pb::Job]) {
    for job in jobs {
        let accuracy = best(job).map_or("-".to_string(), |e| format!("{:.2}%", 100.0 * e.accuracy));
        let created = job.created_at.as_ref().map(timestamp_rfc3339).unwrap_or_default();
        println!(
            "{}  {:<9}  {:>5.1}%  accuracy {}  {}  {}",
            job.job_id,
            state_name(job.state),
            job.progress_percent,
            accuracy,
            created,
            job.model_id
        );
    }
}

/// Prints a job's state, evaluations and model id to stdout.
pub fn print_job_summary(job: &pb::Job) {
    println!("job {}: {}", job.job_id, state_name(job.state));
    println!(
        "progress: epoch {}/{}, step {}/{} ({:.1}%)",
        job.epoch, job.epochs, job.step, job.total_steps, job.progress_percent
    );
    if !job.losses.is_empty() {
        let mut losses: Vec<String> = job.losses.iter().map(|(k, v)| format!("{k} {v:.4}")).collect();
        losses.sort();
        println!("losses: {}", losses.join(", "));
    }
    if job.samples_per_second > 0.0 {
        println!("samples/s: {:.1}", job.samples_per_second);
    }
    for e in &job.evaluations {
        let marker = if Some(e.epoch) == job.best_epoch { " (best)" } else { "" };
        println!(
            "epoch {}: accuracy {:.2}%, macro-F1 {:.2}%, loss {:.4} on {} records{marker}",
            e.epoch,
            100.0 * e.accuracy,
            100.0 * e.macro_f1,
            e.loss,
            e.records
        );
    }
    if !job.model_id.is_empty() {
        println!("model: {}", job.model_id);
    }
    if !job.error.is_empty() {
        println!("error: {}", job.error);
    }
}

/// Prints each text's labels, or the whole response as JSON.
pub fn print_classification(texts: &[String], response: &pb::ClassifyResponse, as_json: bool) {
    if as_json {
        let value = json!({
            "model_id": response.model_id,
            "tokenize_ms": response.tokenize_ms,
            "compute_ms": response.compute_ms,
            "results": texts.iter().zip(&response.results).map(|(text, result)| json!({
                "text": text,
                "truncated": result.truncated,
                "labels": result.labels.iter().map(|l| json!({
                    "label": l.label,
                    "description": l.description,
                    "probability": l.probability,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        println!("{value}");
        return;
    }
    for (text, result) in texts.iter().zip(&response.results) {
        let truncated = if result.truncated { " (truncated)" } else { "" };
        println!("{text}{truncated}");
        for label in &result.labels {
            println!("  {:>6.2}%  {}  {}", 100.0 * label.probability, label.label, label.description);
        }
    }
    eprintln!(
        "tokenize {:.1} ms, compute {:.1} ms",
        response.tokenize_ms, response.compute_ms
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let epoch = prost_types::Timestamp { seconds: 0, nanos: 0 };
        assert_eq!(timestamp_rfc3339(&epoch), "1970-01-01T00:00:00.000Z");
        let leap = prost_types::Timestamp {
            seconds: 1_709_210_096,
            nanos: 250_000_000,
        };
        assert_eq!(timestamp_rfc3339(&leap), "2024-02-29T12:34:56.250Z");
    }
}
