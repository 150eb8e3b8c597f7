//! labelaug's encoder on real checkpoints against Hugging Face transformers
//! (PyTorch, float32): token ids must be equal and hidden states, pooled
//! outputs and logits within 1e-4 absolute. The reference values and the
//! script that produced them are in tests/fixtures/parity/.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use labelaug::model::folder::{self, FolderConfig};
use labelaug::model::mask::{attention_bias, padding_mask};
use labelaug::model::{ForwardMode, ModelArtifact, ParamStore, TextClassifier};
use labelaug::text::{TextTokenizer, encode_pair, encode_text};
use serde_json::Value;

const TOLERANCE: f32 = 1e-4;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn ids(value: &Value) -> Vec<u32> {
    value.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

fn floats(value: &Value) -> Vec<f32> {
    match value {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(number) => vec![number.as_f64().unwrap() as f32],
        other => panic!("not a number: {other}"),
    }
}

/// Largest absolute difference, after checking the lengths agree.
fn max_error(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "value count");
    actual
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Encodes an example with labelaug's tokenizer in the layout the reference
/// used: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.
fn encode(tokenizer: &TextTokenizer, example: &Value) -> (Vec<u32>, Vec<u32>) {
    let text = tokenizer.tokenize(example["text"].as_str().unwrap()).unwrap();
    match example.get("text_pair").and_then(Value::as_str) {
        Some(pair) => {
            let pair = tokenizer.tokenize(pair).unwrap();
            let encoded = encode_pair(&text, &pair, 512, 512, tokenizer.special());
            (encoded.ids, encoded.type_ids)
        }
        None => {
            let encoded = encode_text(&text, 512, tokenizer.special());
            let types = vec![0; encoded.ids.len()];
            (encoded.ids, types)
        }
    }
}

/// Runs one unpadded example through the model: hidden states `[L, H]`
/// flattened, pooled output, logits.
fn run(model: &TextClassifier, ids: &[u32], type_ids: &[u32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let length = ids.len();
    let device = Device::Cpu;
    let ids = Tensor::from_vec(ids.to_vec(), (1, length), &device).unwrap();
    let types = Tensor::from_vec(type_ids.to_vec(), (1, length), &device).unwrap();
    let bias = attention_bias(&padding_mask(&[length], length), DType::F32, &device).unwrap();
    let output = model.forward(&ids, &types, &bias, &mut ForwardMode::Eval).unwrap();
    let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    (flat(&output.hidden), flat(&output.pooled), flat(&output.logits))
}

/// Loads a checkpoint folder as a training job does: every tensor it has,
/// the missing heads drawn from a seed.
fn load_encoder(dir: &Path) -> (FolderConfig, TextTokenizer, TextClassifier, ParamStore) {
    let config = folder::read_config(dir).unwrap();
    let tokenizer = folder::read_tokenizer(dir, config.encoder.vocab_size).unwrap();
    let tensors = folder::read_weights(dir, &Device::Cpu).unwrap().tensors;
    let mut params = ParamStore::from_tensors(tensors, Some(0), DType::F32, &Device::Cpu).unwrap();
    let model = TextClassifier::new(&mut params, &config.encoder, 2, false).unwrap();
    (config, tokenizer, model, params)
}

#[test]
fn minilm_encoder_matches_transformers() {
    let dir = common::minilm_dir();
    let reference = fixture("minilm_encoder.json");
    let (_, tokenizer, model, params) = load_encoder(&dir);
    assert_eq!(params.initialised(), ["classifier.weight", "classifier.bias"].map(String::from));

    // The same vocabulary read from vocab.txt with tokenizer_config.json.
    let slow_dir = tempfile::tempdir().unwrap();
    for file in ["vocab.txt", "tokenizer_config.json", "config.json"] {
        fs::copy(dir.join(file), slow_dir.path().join(file)).unwrap();
    }
    let slow = folder::read_tokenizer(slow_dir.path(), 30522).unwrap();

    let mut worst_hidden = 0.0f32;
    let mut worst_pooled = 0.0f32;
    let examples = reference["examples"].as_array().unwrap();
    assert!(examples.len() >= 8);
    for example in examples {
        let expected_ids = ids(&example["input_ids"]);
        let expected_types = ids(&example["token_type_ids"]);
        let (ids, types) = encode(&tokenizer, example);
        assert_eq!(ids, expected_ids, "token ids of {}", example["text"]);
        assert_eq!(types, expected_types, "segment ids of {}", example["text"]);
        assert_eq!(encode(&slow, example).0, expected_ids, "vocab.txt ids of {}", example["text"]);

        let (hidden, pooled, _) = run(&model, &ids, &types);
        let hidden_error = max_error(&hidden, &floats(&example["last_hidden_state"]));
        let pooled_error = max_error(&pooled, &floats(&example["pooler_output"]));
        assert!(hidden_error < TOLERANCE, "hidden states of {} differ by {hidden_error}", example["text"]);
        assert!(pooled_error < TOLERANCE, "pooled output of {} differs by {pooled_error}", example["text"]);
        worst_hidden = worst_hidden.max(hidden_error);
        worst_pooled = worst_pooled.max(pooled_error);
    }
    println!("MiniLM parity: max |hidden - reference| = {worst_hidden:e}, max |pooled - reference| = {worst_pooled:e}");
}

/// Writes a `BertForSequenceClassification` folder: MiniLM's weights under
/// `bert.`, the reference classifier head, `id2label`, the tokenizer.
fn write_classifier_folder(minilm: &Path, reference: &Value, target: &Path) {
    let mut config: Value = serde_json::from_str(&fs::read_to_string(minilm.join("config.json")).unwrap()).unwrap();
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    config["id2label"] = reference["id2label"].clone();
    fs::write(target.join("config.json"), config.to_string()).unwrap();
    fs::copy(minilm.join("tokenizer.json"), target.join("tokenizer.json")).unwrap();

    let device = Device::Cpu;
    let mut tensors: HashMap<String, Tensor> = candle_core::safetensors::load(minilm.join("model.safetensors"), &device)
        .unwrap()
        .into_iter()
        .map(|(name, tensor)| (format!("bert.{name}"), tensor))
        .collect();
    let weight = floats(&reference["classifier_weight"]);
    let bias = floats(&reference["classifier_bias"]);
    let labels = bias.len();
    tensors.insert(
        "classifier.weight".into(),
        Tensor::from_vec(weight, (labels, 384), &device).unwrap(),
    );
    tensors.insert("classifier.bias".into(), Tensor::from_vec(bias, labels, &device).unwrap());
    candle_core::safetensors::save(&tensors, target.join("model.safetensors")).unwrap();
}

#[test]
fn hf_classifier_matches_transformers_logits() {
    let minilm = common::minilm_dir();
    let reference = fixture("minilm_classifier.json");
    let dir = tempfile::tempdir().unwrap();
    write_classifier_folder(&minilm, &reference, dir.path());

    let artifact = ModelArtifact::load(dir.path(), &Device::Cpu).unwrap();
    let names: Vec<&str> = artifact.labels.entries().iter().map(|e| e.value.as_str()).collect();
    assert_eq!(names, ["card_arrival", "lost_or_stolen_card", "exchange_rate"]);
    assert_eq!(artifact.labels.entries()[0].description, "card arrival");
    assert!(artifact.metadata.is_none());
    // No max_length in config.json: the tokenizer's 512 applies.
    assert_eq!(artifact.max_length, 512);

    for example in reference["examples"].as_array().unwrap() {
        let (ids, types) = encode(&artifact.tokenizer, example);
        assert_eq!(ids, self::ids(&example["input_ids"]), "token ids of {}", example["text"]);
        let (_, _, logits) = run(&artifact.model, &ids, &types);
        let error = max_error(&logits, &floats(&example["logits"]));
        assert!(error < TOLERANCE, "logits of {} differ by {error}", example["text"]);
    }
}

#[test]
fn pickle_checkpoint_matches_transformers() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity/tiny_bin");
    let reference = fixture("tiny_bin/expected.json");
    let (config, tokenizer, model, params) = load_encoder(&dir);
    assert_eq!(config.encoder.hidden_size, 32);
    assert!(!dir.join("tokenizer.json").exists());
    // BertForMaskedLM has no pooler: it is initialised, the MLM head is not.
    let initialised = params.initialised();
    assert!(initialised.contains(&"pooler.dense.weight".to_string()), "{initialised:?}");
    assert!(!initialised.iter().any(|name| name.starts_with("embeddings") || name.starts_with("encoder")));

    for example in reference["examples"].as_array().unwrap() {
        let (ids, types) = encode(&tokenizer, example);
        assert_eq!(ids, self::ids(&example["input_ids"]), "token ids of {}", example["text"]);
        let (hidden, _, _) = run(&model, &ids, &types);
        let error = max_error(&hidden, &floats(&example["last_hidden_state"]));
        assert!(error < TOLERANCE, "hidden states of {} differ by {error}", example["text"]);
    }
}
