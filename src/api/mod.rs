//! The gRPC edge: the tonic service, request conversion and validation,
//! and the mapping of domain errors to status codes. No training logic
//! runs here, and no handler waits for training.

mod auth;
mod convert;
mod lifecycle;
mod metrics;
mod server;
mod service;
mod status;
mod transfer;
mod upload;

pub use auth::BearerAuth;
pub use metrics::Metrics;
pub use server::{ServerConfig, TlsIdentity, serve, serve_with_metrics};
pub use service::{LabelaugService, ServiceLimits};
