//! Evaluation metrics: accuracy and macro-averaged F1.

/// Fraction of predictions equal to the gold label.
pub fn accuracy(gold: &[usize], predicted: &[usize]) -> f64 {
    if gold.is_empty() {
        return 0.0;
    }
    let correct = gold.iter().zip(predicted).filter(|(g, p)| g == p).count();
    correct as f64 / gold.len() as f64
}

/// Unweighted mean of the per-class F1 over every class that occurs in the
/// gold labels or the predictions (scikit-learn's `f1_score(average="macro")`).
pub fn macro_f1(gold: &[usize], predicted: &[usize], num_classes: usize) -> f64 {
    let mut true_positive = vec![0usize; num_classes];
    let mut gold_count = vec![0usize; num_classes];
    let mut predicted_count = vec![0usize; num_classes];
    for (&g, &p) in gold.iter().zip(predicted) {
        if g >= num_classes || p >= num_classes {
            continue;
        }
        gold_count[g] += 1;
        predicted_count[p] += 1;
        if g == p {
            true_positive[g] += 1;
        }
    }
    let mut sum = 0.0;
    let mut classes = 0usize;
    for class in 0..num_classes {
        if gold_count[class] == 0 && predicted_count[class] == 0 {
            continue;
        }
        classes += 1;
        let denominator = gold_count[class] + predicted_count[class];
        sum += 2.0 * true_positive[class] as f64 / denominator as f64;
    }
    if classes == 0 { 0.0 } else { sum / classes as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_matches() {
        assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
    }

    #[test]
    fn macro_f1_matches_hand_computation() {
        // Class 0: tp 1, gold 1, predicted 1 -> F1 1.
        // Class 1: tp 1, gold 1, predicted 2 -> F1 2/3.
        // Class 2: tp 1, gold 2, predicted 1 -> F1 2/3.
        // Class 3 never occurs and is left out.
        let f1 = macro_f1(&[0, 1, 2, 2], &[0, 1, 1, 2], 4);
        assert!((f1 - (1.0 + 2.0 / 3.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12, "{f1}");
    }
}
