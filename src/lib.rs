//! labelaug trains text classifiers with label augmentation and serves them
//! over gRPC.
//!
//! Layout, from the network inwards:
//!
//! - [`api`]: the tonic service; validates requests, turns them into domain
//!   types, and maps domain errors to gRPC status codes.
//! - [`jobs`]: the SQLite store of datasets, jobs and models, the bounded job
//!   queue and the worker pool (one worker per device).
//! - [`train`]: job specification, the joint loss, optimiser, schedule,
//!   evaluation and the training loop.
//! - [`serve`]: the model registry and cache behind Classify.
//! - [`model`]: the BERT encoder and heads in candle, masks, model folders.
//! - [`text`]: WordPiece tokenizers and encoder input layouts.
//! - [`data`]: readers for JSON Lines, CSV and TSV and the label map.
//! - [`client`]: the command-line client.

pub mod api;
pub mod client;
pub mod data;
pub mod jobs;
pub mod model;
pub mod serve;
pub mod text;
pub mod train;

/// Generated gRPC types and services of `proto/labelaug/v1/labelaug.proto`.
pub mod pb {
    tonic::include_proto!("labelaug.v1");

    /// Encoded file descriptor set, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("labelaug_descriptor");
}
