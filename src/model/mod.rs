//! The BERT-style encoder and its heads in candle, attention masks, seeded
//! parameter initialisation and dropout, and the model folder on disk.
//!
//! Parameter names follow Hugging Face BERT checkpoints without the `bert.`
//! prefix (`embeddings.word_embeddings.weight`,
//! `encoder.layer.0.attention.self.query.weight`, `pooler.dense.weight`,
//! `classifier.weight`, `cls.predictions.bias`, ...).

mod artifact;
mod batch;
mod classifier;
mod config;
mod encoder;
pub mod folder;
mod layers;
pub mod mask;
pub(crate) mod params;
mod roots;

pub use artifact::{ArtifactError, ModelArtifact, ModelMetadata, ModelParts};
pub use batch::InputBatch;
pub use classifier::{ClassifierOutput, TextClassifier};
pub use config::EncoderConfig;
pub use encoder::Encoder;
pub use layers::ForwardMode;
pub use params::ParamStore;
pub use roots::{ModelRoots, RootError};
