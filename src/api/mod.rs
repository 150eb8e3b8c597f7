//! The gRPC edge: the tonic service, request conversion and validation,
//! and the mapping of domain errors to status codes. No training logic
//! runs here, and no handler waits for training.

mod convert;
mod lifecycle;
mod server;
mod service;
mod status;
mod upload;

pub use server::{ServerConfig, serve};
pub use service::LabelaugService;
