//! Serving: the registry that loads trained models on first use and keeps
//! them in memory, and Classify on top of it.

mod folders;
mod registry;

pub use folders::{FolderTransferError, Registered, accept_checkpoint, check_file_name, folder_files, register_model};
pub use registry::{
    Classification, ClassifyLimits, ClassifyOutput, LabelScore, MAX_TEXT_BYTES, MAX_TEXTS, ModelRegistry, ServeError,
};
