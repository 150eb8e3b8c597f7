//! Jobs: the SQLite store of datasets, jobs and models, the bounded queue
//! and the worker pool that runs training on devices.

mod device;
mod error;
mod pool;
mod state;
mod store;

pub use device::DeviceSpec;
pub use error::JobsError;
pub use pool::{QUEUE_CAPACITY, WorkerPool};
pub use state::JobState;
pub use store::{DatasetRow, JobCursor, JobRecord, ModelRow, Store, new_id, now_ms};
