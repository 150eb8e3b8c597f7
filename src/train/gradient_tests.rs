//! Checks of the joint loss on a tiny float64 model: every trainable
//! variable gets a non-zero gradient that matches central finite
//! differences, and the UniLM mask hides the description from segment 0.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::objective::{Example, LossContext, LossTerms, joint_loss};
use super::objective::Origin;
use super::tasks::{ActiveTasks, TaskSetting};
use crate::model::{EncoderConfig, ForwardMode, InputBatch, ParamStore, TextClassifier};
use crate::text::SpecialIds;

const PAD: u32 = 0;
const SPECIAL: SpecialIds = SpecialIds {
    pad: PAD,
    unk: 1,
    cls: 2,
    sep: 3,
    mask: 4,
};

fn tiny_config() -> EncoderConfig {
    EncoderConfig {
        vocab_size: 14,
        hidden_size: 8,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 12,
        max_position_embeddings: 12,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        pad_token_id: PAD,
    }
}

fn tiny_model() -> (ParamStore, TextClassifier) {
    let mut params = ParamStore::seeded(11, DType::F64, &Device::Cpu);
    let model = TextClassifier::new(&mut params, &tiny_config(), 3, true).unwrap();
    (params, model)
}

fn example(ids: &[u32], type_ids: &[u32], label: u32, origin: Origin, index: usize) -> Example {
    Example {
        ids: ids.to_vec(),
        type_ids: type_ids.to_vec(),
        label,
        origin,
        index,
    }
}

/// `[CLS]=2 x [SEP]=3 d [SEP]` examples of different lengths, each followed
/// by its label's description record as a similarity partner; the third
/// pair starts with an added description record.
fn examples() -> Vec<Example> {
    vec![
        example(&[2, 5, 6, 7, 3, 10, 11, 3], &[0, 0, 0, 0, 0, 1, 1, 1], 0, Origin::Text, 0),
        example(&[2, 10, 11, 3, 10, 11, 3], &[0, 0, 0, 0, 1, 1, 1], 0, Origin::DescriptionPartner, 1),
        example(&[2, 8, 3, 12, 3], &[0, 0, 0, 1, 1], 2, Origin::Text, 2),
        example(&[2, 12, 3, 12, 3], &[0, 0, 0, 1, 1], 2, Origin::DescriptionPartner, 3),
        example(&[2, 13, 3, 13, 3], &[0, 0, 0, 1, 1], 1, Origin::DescriptionRecord, 4),
        example(&[2, 13, 3, 13, 3], &[0, 0, 0, 1, 1], 1, Origin::DescriptionPartner, 5),
    ]
}

/// Builds every task with a loss term, all active at once.
fn all_tasks() -> ActiveTasks {
    let setting = |weight: f64| TaskSetting {
        weight,
        options: BTreeMap::new(),
        teacher: None,
    };
    let mlm = TaskSetting {
        options: BTreeMap::from([("rate".to_string(), 0.5)]),
        ..setting(0.8)
    };
    ActiveTasks::build(&BTreeMap::from([
        ("seq2seq".to_string(), setting(0.5)),
        ("similarity".to_string(), setting(0.7)),
        ("similarity_masked".to_string(), setting(0.3)),
        ("description_records".to_string(), setting(0.4)),
        ("self_distill".to_string(), setting(0.6)),
        ("distill".to_string(), setting(0.9)),
        ("mlm".to_string(), mlm),
    ]))
    .unwrap()
}

/// Logits of a finished teacher model for the six records.
fn model_teacher() -> Vec<Vec<f32>> {
    vec![
        vec![2.0, 0.5, -0.2],
        vec![-0.3, 0.9, 0.0],
        vec![0.1, -1.4, 0.6],
        vec![1.2, 0.3, 0.3],
        vec![-0.8, 0.2, 1.0],
        vec![0.5, 0.5, -0.5],
    ]
}

fn losses(model: &TextClassifier, examples: &[Example], tasks: &ActiveTasks) -> LossTerms {
    let batch: Vec<&Example> = examples.iter().collect();
    let epoch_teacher = teacher();
    let model_teacher = model_teacher();
    let context = LossContext {
        epoch_teacher: Some(&epoch_teacher),
        model_teacher: Some(&model_teacher),
        special: SPECIAL,
        dtype: DType::F64,
        device: &Device::Cpu,
        step_seed: 5,
    };
    joint_loss(model, &batch, tasks, &context, &mut ForwardMode::Eval).unwrap()
}

/// Teacher logits for the six records of [`examples`].
fn teacher() -> Vec<Vec<f32>> {
    vec![
        vec![1.0, -0.5, 0.2],
        vec![0.3, 0.1, -1.0],
        vec![-0.7, 0.4, 1.5],
        vec![0.0, 0.0, 0.9],
        vec![0.2, 1.1, -0.3],
        vec![-0.4, 0.8, 0.1],
    ]
}

fn loss_value(model: &TextClassifier, examples: &[Example], tasks: &ActiveTasks) -> f64 {
    losses(model, examples, tasks).total.to_scalar::<f64>().unwrap()
}

#[test]
fn every_gradient_is_nonzero_and_matches_finite_differences() {
    let (params, model) = tiny_model();
    let examples = examples();
    let tasks = all_tasks();
    let losses = losses(&model, &examples, &tasks);
    let names: Vec<&str> = losses.terms.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "classification",
            "description_records",
            "distill",
            "mlm",
            "self_distill",
            "seq2seq",
            "similarity",
            "similarity_masked"
        ]
    );
    let grads = losses.total.backward().unwrap();

    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let epsilon = 1e-5;
    for (name, var) in params.vars() {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let norm = grad.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap().sqrt();
        // A key bias adds the same q·b to every score of a query, which the
        // softmax cancels, so its true gradient is zero.
        if !name.ends_with("attention.self.key.bias") {
            assert!(norm > 1e-10, "{name} has a zero gradient");
        }

        // Directional derivative along a random direction.
        let original = var.as_tensor().copy().unwrap();
        let direction: Vec<f64> = (0..original.elem_count())
            .map(|_| rng.random::<f64>() - 0.5)
            .collect();
        let direction = Tensor::from_vec(direction, original.shape(), &Device::Cpu).unwrap();
        let analytic = (grad * &direction).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
        var.set(&(&original + (&direction * epsilon).unwrap()).unwrap()).unwrap();
        let plus = loss_value(&model, &examples, &tasks);
        var.set(&(&original - (&direction * epsilon).unwrap()).unwrap()).unwrap();
        let minus = loss_value(&model, &examples, &tasks);
        var.set(&original).unwrap();
        let numeric = (plus - minus) / (2.0 * epsilon);
        let tolerance = 1e-6 * (1.0 + analytic.abs());
        assert!(
            (analytic - numeric).abs() < tolerance,
            "{name}: analytic {analytic}, finite difference {numeric}"
        );
    }
}

fn pair_batch(sequences: &[Vec<u32>], type_ids: &[Vec<u32>]) -> InputBatch {
    let slices: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    InputBatch::seq2seq(&slices, type_ids, PAD, DType::F64, &Device::Cpu).unwrap()
}

#[test]
fn description_does_not_reach_class_logits() {
    let (_, model) = tiny_model();
    let types = vec![vec![0, 0, 0, 1, 1, 1]];
    let a = pair_batch(&[vec![2, 5, 3, 10, 11, 3]], &types);
    let b = pair_batch(&[vec![2, 5, 3, 12, 13, 3]], &types);
    let logits_a = model.forward(&a.ids, &a.type_ids, &a.bias, &mut ForwardMode::Eval).unwrap().logits;
    let logits_b = model.forward(&b.ids, &b.type_ids, &b.bias, &mut ForwardMode::Eval).unwrap().logits;
    assert_eq!(logits_a.to_vec2::<f64>().unwrap(), logits_b.to_vec2::<f64>().unwrap());

    // Under a plain padding mask the description does reach [CLS].
    let slices_a: [&[u32]; 1] = [&[2, 5, 3, 10, 11, 3]];
    let slices_b: [&[u32]; 1] = [&[2, 5, 3, 12, 13, 3]];
    let plain_a = InputBatch::texts(&slices_a, PAD, DType::F64, &Device::Cpu).unwrap();
    let plain_b = InputBatch::texts(&slices_b, PAD, DType::F64, &Device::Cpu).unwrap();
    let la = model.forward(&plain_a.ids, &plain_a.type_ids, &plain_a.bias, &mut ForwardMode::Eval).unwrap();
    let lb = model.forward(&plain_b.ids, &plain_b.type_ids, &plain_b.bias, &mut ForwardMode::Eval).unwrap();
    assert_ne!(la.logits.to_vec2::<f64>().unwrap(), lb.logits.to_vec2::<f64>().unwrap());
}

#[test]
fn later_description_token_does_not_change_earlier_lm_logits() {
    let (_, model) = tiny_model();
    let types = vec![vec![0, 0, 0, 1, 1, 1, 1]];
    // Only the token at position 5 differs.
    let a = pair_batch(&[vec![2, 5, 3, 10, 11, 12, 3]], &types);
    let b = pair_batch(&[vec![2, 5, 3, 10, 11, 13, 3]], &types);
    let hidden_a = model.forward(&a.ids, &a.type_ids, &a.bias, &mut ForwardMode::Eval).unwrap().hidden;
    let hidden_b = model.forward(&b.ids, &b.type_ids, &b.bias, &mut ForwardMode::Eval).unwrap().hidden;
    let lm_a = model.lm_logits(&hidden_a.squeeze(0).unwrap()).unwrap().to_vec2::<f64>().unwrap();
    let lm_b = model.lm_logits(&hidden_b.squeeze(0).unwrap()).unwrap().to_vec2::<f64>().unwrap();
    for position in 0..5 {
        assert_eq!(lm_a[position], lm_b[position], "position {position} changed");
    }
    assert_ne!(lm_a[5], lm_b[5]);
    assert_ne!(lm_a[6], lm_b[6]);
}

#[test]
fn padding_does_not_change_logits() {
    let (_, model) = tiny_model();
    let short: &[u32] = &[2, 5, 3];
    let long: &[u32] = &[2, 6, 7, 8, 9, 3];
    let alone = InputBatch::texts(&[short], PAD, DType::F64, &Device::Cpu).unwrap();
    let padded = InputBatch::texts(&[short, long], PAD, DType::F64, &Device::Cpu).unwrap();
    let a = model.forward(&alone.ids, &alone.type_ids, &alone.bias, &mut ForwardMode::Eval).unwrap();
    let b = model.forward(&padded.ids, &padded.type_ids, &padded.bias, &mut ForwardMode::Eval).unwrap();
    let a = a.logits.to_vec2::<f64>().unwrap();
    let b = b.logits.to_vec2::<f64>().unwrap();
    for (x, y) in a[0].iter().zip(&b[0]) {
        assert!((x - y).abs() < 1e-9, "{x} vs {y}");
    }
}
