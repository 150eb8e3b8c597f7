//! Serving: the registry that loads trained models on first use and keeps
//! them in memory, and Classify on top of it.

mod registry;

pub use registry::{
    Classification, ClassifyLimits, ClassifyOutput, LabelScore, MAX_TEXT_BYTES, MAX_TEXTS, ModelRegistry, ServeError,
};
