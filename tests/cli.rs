//! The `labelaug` binary as a user runs it: the client commands with
//! `--json` against a server on 127.0.0.1, the refusal to listen openly
//! without a token, and JSON logs.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TestServer;
use serde_json::Value;

/// Runs the binary with `args` and returns its stdout parsed as JSON.
async fn run_json(args: Vec<String>) -> Value {
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_labelaug"))
            .args(&args)
            .env_remove("LABELAUG_SERVER")
            .output()
            .expect("run labelaug")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "labelaug failed: {}\nstdout: {stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_print_json() {
    let server = TestServer::start().await;
    let address = server.address.clone();
    let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo");
    let train = format!("{demo}/train.csv");
    let test = format!("{demo}/test.csv");
    let job = run_json(args(&[
        "train", "--server", &address, "--train", &train, "--eval", &test, "--label-field", "category",
        "--tasks", "seq2seq=0.2", "--epochs", "2", "--layers", "1", "--hidden-size", "32", "--heads", "2",
        "--vocab-size", "1000", "--max-len", "32", "--lr", "3e-3", "--wait", "--json",
    ]))
    .await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let job_id = job["job_id"].as_str().expect("job_id").to_string();
    let model_id = job["model_id"].as_str().expect("model_id").to_string();
    assert!(job["accuracy"].as_f64().is_some(), "{job}");
    assert!(job["macro_f1"].as_f64().is_some(), "{job}");
    assert_eq!(job["evaluations"].as_array().map(Vec::len), Some(2));
    assert!(job["losses"]["seq2seq"].as_f64().is_some(), "{job}");

    let status = run_json(args(&["status", "--server", &address, &job_id, "--json"])).await;
    assert_eq!(status["model_id"], model_id.as_str());
    let jobs = run_json(args(&["jobs", "--server", &address, "--state", "succeeded", "--json"])).await;
    assert_eq!(jobs["jobs"][0]["job_id"], job_id.as_str());
    let models = run_json(args(&["models", "--server", &address, "--json"])).await;
    assert_eq!(models["models"][0]["model_id"], model_id.as_str());
    assert_eq!(models["models"][0]["num_labels"], 10);

    let classified = run_json(args(&[
        "classify", "--server", &address, "--model", &model_id, "--top-k", "3", "--json", "my card is lost", "银行卡",
    ]))
    .await;
    let results = classified["results"].as_array().expect("results");
    assert_eq!(results.len(), 2);
    assert_eq!(results[1]["text"], "银行卡");
    assert_eq!(results[0]["labels"].as_array().map(Vec::len), Some(3));

    let deleted = run_json(args(&["delete-model", "--server", &address, &model_id, "--json"])).await;
    assert_eq!(deleted["deleted"], true);
    let models = run_json(args(&["models", "--server", &address, "--json"])).await;
    assert_eq!(models["models"].as_array().map(Vec::len), Some(0));
    server.stop().await;
}

#[test]
fn open_listen_without_token_is_refused() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_labelaug"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data_dir.path())
        .env_remove("LABELAUG_AUTH_TOKEN")
        .env_remove("LABELAUG_AUTH_TOKEN_FILE")
        .output()
        .expect("run labelaug serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without an auth token"), "{stderr}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_labelaug"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data_dir.path())
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start labelaug serve");
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut listening = None;
    for _ in 0..20 {
        let Ok(line) = receiver.recv_timeout(Duration::from_secs(30)) else {
            break;
        };
        let value: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value["timestamp"].is_string(), "{line}");
        if value["fields"]["message"] == "server listening" {
            listening = Some(value);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let listening = listening.expect("a `server listening` log line");
    assert!(listening["fields"]["address"].as_str().unwrap().starts_with("127.0.0.1:"));
}
