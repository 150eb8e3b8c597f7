//! `serve --demo`: trains a small model on the bundled Banking77 slice
//! through the server's own gRPC API, logs its progress, then classifies a
//! few queries with it.

use std::time::Duration;

use anyhow::Context;
use labelaug::client;
use labelaug::data::Format;
use labelaug::pb;
use tracing::{error, info};

const TRAIN_CSV: &[u8] = include_bytes!("../examples/demo/train.csv");
const TEST_CSV: &[u8] = include_bytes!("../examples/demo/test.csv");
const QUERIES: [&str; 3] = [
    "my new card still has not arrived",
    "I forgot my PIN and now it is blocked",
    "what exchange rate do you use for euros?",
];

pub async fn run(server: String, token: Option<String>) {
    if let Err(error) = run_demo(&server, token.as_deref()).await {
        error!(error = format!("{error:#}"), "demo failed");
    }
}

async fn run_demo(server: &str, token: Option<&str>) -> anyhow::Result<()> {
    let folder = tempfile_folder()?;
    let train_path = folder.join("banking77-demo-train.csv");
    let test_path = folder.join("banking77-demo-test.csv");
    std::fs::write(&train_path, TRAIN_CSV).context("failed to write the demo training file")?;
    std::fs::write(&test_path, TEST_CSV).context("failed to write the demo test file")?;

    // The server starts listening right after this task is spawned.
    let mut attempts = 0;
    let mut connection = loop {
        match client::connect_with_token(server, token).await {
            Ok(connection) => break connection,
            Err(error) if attempts >= 100 => return Err(error),
            Err(_) => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let train = client::upload_file(&mut connection, &train_path, Format::Csv).await?;
    let test = client::upload_file(&mut connection, &test_path, Format::Csv).await?;
    let request = pb::StartTrainingRequest {
        train_dataset_id: train.dataset_id,
        eval_dataset_id: test.dataset_id,
        fields: Some(pb::FieldMapping {
            text_field: "text".to_string(),
            label_field: "category".to_string(),
            description_field: String::new(),
        }),
        label_descriptions: None,
        encoder: Some(pb::EncoderSpec {
            source: Some(pb::encoder_spec::Source::Scratch(pb::ScratchEncoder {
                num_layers: 1,
                hidden_size: 64,
                num_heads: 2,
                intermediate_size: 128,
                vocab_size: 2000,
                dropout: Some(0.1),
            })),
        }),
        tasks: vec![pb::TaskSpec {
            name: "seq2seq".to_string(),
            weight: 0.2,
            ..Default::default()
        }],
        hyperparameters: Some(pb::Hyperparameters {
            epochs: Some(15),
            batch_size: Some(16),
            learning_rate: Some(2e-3),
            max_length: Some(48),
            seed: Some(1),
            ..Default::default()
        }),
    };
    let job_id = connection.start_training(request).await?.into_inner().job_id;
    info!(job_id, "demo job started; follow it with `labelaug status {job_id}`");
    let job = client::wait_for_job(&mut connection, &job_id, false).await?;
    let summary = client::job_json(&job);
    info!(
        state = %summary["state"],
        accuracy = %summary["accuracy"],
        macro_f1 = %summary["macro_f1"],
        best_epoch = %summary["best_epoch"],
        "demo job ended"
    );
    if job.model_id.is_empty() {
        anyhow::bail!("demo job {job_id} ended without a model: {}", job.error);
    }
    let texts: Vec<String> = QUERIES.iter().map(|q| q.to_string()).collect();
    let response = client::classify(&mut connection, &job.model_id, texts, 1).await?;
    for (query, result) in QUERIES.iter().zip(&response.results) {
        if let Some(top) = result.labels.first() {
            info!(query, label = %top.label, probability = top.probability, "demo classification");
        }
    }
    info!(
        model_id = %job.model_id,
        "demo finished; try `labelaug classify --model {} \"my card is lost\"`",
        job.model_id
    );
    Ok(())
}

fn tempfile_folder() -> anyhow::Result<std::path::PathBuf> {
    let folder = std::env::temp_dir().join(format!("labelaug-demo-{}", std::process::id()));
    std::fs::create_dir_all(&folder).with_context(|| format!("failed to create {}", folder.display()))?;
    Ok(folder)
}
