//! Learning-rate schedule: linear warmup from 0 to the peak, then linear
//! decay to 0 at the last step.

#[derive(Debug, Clone, Copy)]
pub struct LinearSchedule {
    peak: f64,
    warmup_steps: u64,
    total_steps: u64,
}

impl LinearSchedule {
    pub fn new(peak: f64, warmup_ratio: f64, total_steps: u64) -> Self {
        let warmup_steps = (warmup_ratio * total_steps as f64).round() as u64;
        Self {
            peak,
            warmup_steps,
            total_steps,
        }
    }

    /// Learning rate of the 0-based step `step`.
    pub fn rate(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = self.total_steps.saturating_sub(self.warmup_steps).max(1);
        let remaining = self.total_steps.saturating_sub(step) as f64;
        self.peak * remaining / decay_steps as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays() {
        let schedule = LinearSchedule::new(1.0, 0.2, 10);
        assert!((schedule.rate(0) - 0.5).abs() < 1e-12);
        assert!((schedule.rate(1) - 1.0).abs() < 1e-12);
        assert!((schedule.rate(2) - 1.0).abs() < 1e-12);
        assert!((schedule.rate(6) - 0.5).abs() < 1e-12);
        assert!((schedule.rate(9) - 0.125).abs() < 1e-12);
    }

    #[test]
    fn no_warmup_starts_at_peak() {
        let schedule = LinearSchedule::new(2.0, 0.0, 4);
        assert!((schedule.rate(0) - 2.0).abs() < 1e-12);
        assert!((schedule.rate(3) - 0.5).abs() < 1e-12);
    }
}
