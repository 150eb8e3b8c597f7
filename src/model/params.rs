//! Trainable parameters: created from a seeded generator or loaded from a
//! safetensors file, and saved back.
//!
//! candle's CPU generator cannot be seeded, so initial weights are drawn
//! here from a ChaCha generator: same seed, same weights.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Initialisation of a parameter that is not loaded from a file.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    /// Normal distribution with mean 0, as BERT initialises weights (0.02).
    Normal(f64),
    Zeros,
    Ones,
}

/// All trainable variables of a model, by Hugging Face tensor name.
pub struct ParamStore {
    vars: BTreeMap<String, Var>,
    loaded: HashMap<String, Tensor>,
    /// Names of the parameters drawn from the generator, in creation order.
    initialised: Vec<String>,
    rng: Option<ChaCha8Rng>,
    dtype: DType,
    device: Device,
}

impl ParamStore {
    /// Creates a store that initialises every parameter from `seed`.
    pub fn seeded(seed: u64, dtype: DType, device: &Device) -> Self {
        Self {
            vars: BTreeMap::new(),
            loaded: HashMap::new(),
            initialised: Vec::new(),
            rng: Some(ChaCha8Rng::seed_from_u64(seed)),
            dtype,
            device: device.clone(),
        }
    }

    /// A store whose parameters must all come from the safetensors file.
    pub fn from_safetensors(path: &Path, device: &Device) -> Result<Self> {
        let loaded = candle_core::safetensors::load(path, device)?;
        Self::from_tensors(loaded, None, DType::F32, device)
    }

    /// Creates a store that takes parameters from `tensors` (converted to
    /// `dtype`) and draws the missing ones from `seed`. Without a seed a
    /// missing parameter is an error.
    pub fn from_tensors(
        tensors: HashMap<String, Tensor>,
        seed: Option<u64>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let loaded = tensors
            .into_iter()
            .map(|(name, tensor)| Ok((name, tensor.to_device(device)?.to_dtype(dtype)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        Ok(Self {
            vars: BTreeMap::new(),
            loaded,
            initialised: Vec::new(),
            rng: seed.map(ChaCha8Rng::seed_from_u64),
            dtype,
            device: device.clone(),
        })
    }

    /// Names of the parameters that were initialised rather than loaded.
    pub fn initialised(&self) -> &[String] {
        &self.initialised
    }

    /// Names of loaded tensors that no parameter used, sorted.
    pub fn unused(&self) -> Vec<String> {
        let mut names: Vec<String> = self.loaded.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Returns the parameter `name`, loading or creating it on first use.
    pub fn get(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        if let Some(var) = self.vars.get(name) {
            return Ok(var.as_tensor().clone());
        }
        let tensor = match self.loaded.remove(name) {
            Some(tensor) => {
                if tensor.dims() != shape {
                    candle_core::bail!(
                        "tensor {name} has shape {:?} in the checkpoint, expected {shape:?}",
                        tensor.dims()
                    );
                }
                tensor
            }
            None => {
                let value = self.initial_value(name, shape, init)?;
                self.initialised.push(name.to_string());
                value
            }
        };
        let var = Var::from_tensor(&tensor)?;
        let value = var.as_tensor().clone();
        self.vars.insert(name.to_string(), var);
        Ok(value)
    }

    fn initial_value(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        let count: usize = shape.iter().product();
        let Some(rng) = self.rng.as_mut() else {
            candle_core::bail!("tensor {name} is missing from the checkpoint");
        };
        let values: Vec<f64> = match init {
            Init::Zeros => vec![0.0; count],
            Init::Ones => vec![1.0; count],
            Init::Normal(stdev) => (0..count).map(|_| stdev * standard_normal(rng)).collect(),
        };
        Tensor::from_vec(values, shape, &self.device)?.to_dtype(self.dtype)
    }

    /// Variables by name, in name order.
    pub fn vars(&self) -> &BTreeMap<String, Var> {
        &self.vars
    }

    /// Copies of the current values, for keeping the best epoch's weights.
    pub fn snapshot(&self) -> Result<BTreeMap<String, Tensor>> {
        self.vars
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
            .collect()
    }

    /// Overwrites the variables with a snapshot taken from this store.
    pub fn restore(&self, snapshot: &BTreeMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.vars {
            match snapshot.get(name) {
                Some(tensor) => var.set(tensor)?,
                None => candle_core::bail!("snapshot has no tensor {name}"),
            }
        }
        Ok(())
    }

    /// Writes every variable to a safetensors file, as float32.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors = self
            .vars
            .iter()
            .map(|(name, var)| Ok((name.clone(), var.as_tensor().to_dtype(DType::F32)?)))
            .collect::<Result<HashMap<_, _>>>()?;
        candle_core::safetensors::save(&tensors, path)
    }
}

/// Draws from N(0, 1) with the Box-Muller transform.
pub(crate) fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_gives_same_weights() {
        let mut a = ParamStore::seeded(7, DType::F32, &Device::Cpu);
        let mut b = ParamStore::seeded(7, DType::F32, &Device::Cpu);
        let x = a.get("w", &[3, 4], Init::Normal(0.02)).unwrap();
        let y = b.get("w", &[3, 4], Init::Normal(0.02)).unwrap();
        assert_eq!(x.to_vec2::<f32>().unwrap(), y.to_vec2::<f32>().unwrap());
    }

    #[test]
    fn normal_init_has_requested_spread() {
        let mut store = ParamStore::seeded(1, DType::F64, &Device::Cpu);
        let w = store.get("w", &[100, 100], Init::Normal(0.02)).unwrap();
        let values = w.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
        assert!(mean.abs() < 0.001, "mean {mean}");
        assert!((var.sqrt() - 0.02).abs() < 0.001, "stdev {}", var.sqrt());
    }

    #[test]
    fn saved_parameters_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let mut store = ParamStore::seeded(3, DType::F32, &Device::Cpu);
        let w = store.get("a.weight", &[2, 3], Init::Normal(1.0)).unwrap();
        store.save(&path).unwrap();
        let mut loaded = ParamStore::from_safetensors(&path, &Device::Cpu).unwrap();
        let v = loaded.get("a.weight", &[2, 3], Init::Zeros).unwrap();
        assert_eq!(w.to_vec2::<f32>().unwrap(), v.to_vec2::<f32>().unwrap());
        let missing = loaded.get("b.weight", &[2], Init::Zeros);
        assert!(missing.unwrap_err().to_string().contains("b.weight"));
        let wrong = ParamStore::from_safetensors(&path, &Device::Cpu)
            .unwrap()
            .get("a.weight", &[3, 2], Init::Zeros);
        assert!(wrong.unwrap_err().to_string().contains("shape"));
    }
}
