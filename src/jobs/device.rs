//! The device a worker trains on. Nothing outside this file names a device
//! kind.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use super::JobsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    /// A CUDA GPU by ordinal; needs the `cuda` cargo feature.
    Cuda(usize),
}

impl DeviceSpec {
    /// Opens the device.
    pub fn open(self) -> Result<Device, JobsError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(ordinal) => open_cuda(ordinal),
        }
    }

    /// Parses a comma-separated list such as `cpu` or `cuda:0,cuda:1`.
    pub fn parse_list(value: &str) -> Result<Vec<DeviceSpec>, JobsError> {
        value.split(',').map(|part| part.trim().parse()).collect()
    }
}

#[cfg(feature = "cuda")]
fn open_cuda(ordinal: usize) -> Result<Device, JobsError> {
    Device::new_cuda(ordinal).map_err(|e| JobsError::InvalidDevice {
        value: format!("cuda:{ordinal}"),
        reason: e.to_string(),
    })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(ordinal: usize) -> Result<Device, JobsError> {
    Err(JobsError::InvalidDevice {
        value: format!("cuda:{ordinal}"),
        reason: "this binary was built without the `cuda` feature".to_string(),
    })
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(ordinal) => write!(f, "cuda:{ordinal}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = JobsError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| JobsError::InvalidDevice {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value == "cpu" {
            return Ok(DeviceSpec::Cpu);
        }
        let ordinal = value
            .strip_prefix("cuda:")
            .ok_or_else(|| invalid("expected cpu or cuda:N"))?;
        ordinal
            .parse()
            .map(DeviceSpec::Cuda)
            .map_err(|_| invalid("expected cpu or cuda:N with N a GPU ordinal"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_parse() {
        assert_eq!(DeviceSpec::parse_list("cpu").unwrap(), vec![DeviceSpec::Cpu]);
        assert_eq!(
            DeviceSpec::parse_list("cuda:0, cuda:1").unwrap(),
            vec![DeviceSpec::Cuda(0), DeviceSpec::Cuda(1)]
        );
        assert!(DeviceSpec::parse_list("gpu").is_err());
        assert!(DeviceSpec::parse_list("cuda:x").is_err());
    }
}
