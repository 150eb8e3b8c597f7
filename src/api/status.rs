//! Domain errors to gRPC status codes, in one place.

use tonic::Status;
use tracing::error;

use crate::data::DataError;
use crate::jobs::JobsError;
use crate::model::RootError;
use crate::serve::{FolderTransferError, ServeError};
use crate::train::InvalidField;

pub fn invalid_field(error: &InvalidField) -> Status {
    Status::invalid_argument(error.to_string())
}

pub fn invalid(field: &str, value: impl std::fmt::Display, reason: &str) -> Status {
    invalid_field(&InvalidField::new(field, value, reason))
}

pub fn data_error(error: &DataError) -> Status {
    Status::invalid_argument(error.to_string())
}

pub fn jobs_error(error: &JobsError) -> Status {
    match error {
        JobsError::QueueFull { .. } => Status::resource_exhausted(error.to_string()),
        JobsError::PoolStopped => Status::unavailable(error.to_string()),
        JobsError::InvalidDevice { .. } => Status::invalid_argument(error.to_string()),
        JobsError::Sqlite { .. } | JobsError::Corrupt { .. } | JobsError::Io { .. } => {
            error!(%error, "store error");
            Status::internal(error.to_string())
        }
    }
}

pub fn serve_error(error: &ServeError) -> Status {
    match error {
        ServeError::ModelNotFound(_) => Status::not_found(error.to_string()),
        ServeError::InvalidRequest { .. } => Status::invalid_argument(error.to_string()),
        ServeError::Store(inner) => jobs_error(inner),
        ServeError::Load { .. } | ServeError::Text(_) | ServeError::Tensor(_) => {
            error!(%error, "classification failed");
            Status::internal(error.to_string())
        }
    }
}

pub fn join_error(error: tokio::task::JoinError) -> Status {
    error!(%error, "blocking task failed");
    Status::internal(format!("internal error: {error}"))
}

/// Maps a model-root error: a path outside the roots is PERMISSION_DENIED, a
/// missing folder inside them NOT_FOUND, a file where a folder belongs
/// INVALID_ARGUMENT and an unreadable folder FAILED_PRECONDITION.
pub fn root_error(error: &RootError) -> Status {
    match error {
        RootError::Unreadable { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Status::not_found(error.to_string())
        }
        RootError::NotFolder { .. } => Status::invalid_argument(error.to_string()),
        RootError::Unreadable { .. } => Status::failed_precondition(error.to_string()),
        RootError::NoRoots { .. } | RootError::Outside { .. } | RootError::FileOutside { .. } => {
            Status::permission_denied(error.to_string())
        }
    }
}

pub fn transfer_error(error: &FolderTransferError) -> Status {
    match error {
        FolderTransferError::Store(inner) => jobs_error(inner),
        FolderTransferError::FileName { .. }
        | FolderTransferError::Artifact { .. }
        | FolderTransferError::Checkpoint { .. } => Status::invalid_argument(error.to_string()),
    }
}
