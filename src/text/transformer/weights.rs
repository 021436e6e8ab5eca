//! model.safetensors in and out, in PyTorch's names and layouts.
//!
//! Reading checks every weight against the shape config.json implies, so a mismatched file
//! is an [`InputError`] naming the file and the weight instead of a panic deep inside a
//! matrix product. Writing keeps the names (and any prefix such as `bert.`) and passes the
//! tensors the encoder does not use (pooler, position_ids) through unchanged, so a saved
//! folder loads in sentence-transformers as well as here.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use safetensors::{Dtype, SafeTensors};

use crate::error::{InputError, InputResult};

/// The name every BERT-family checkpoint has; what stands before it is the file's prefix.
const ANCHOR: &str = "embeddings.word_embeddings.weight";

/// One tensor as stored: dtype, shape and raw little-endian bytes.
#[derive(Debug, Clone)]
struct RawTensor {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// The tensors of one safetensors file, by name.
pub struct WeightSource {
    path: PathBuf,
    prefix: String,
    tensors: HashMap<String, RawTensor>,
}

impl WeightSource {
    pub fn open(path: &Path) -> InputResult<WeightSource> {
        let bytes = std::fs::read(path)
            .map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| InputError::in_file(path, format!("not a valid safetensors file: {e}")))?;
        let tensors: HashMap<String, RawTensor> = file
            .iter()
            .map(|(name, view)| {
                let raw = RawTensor {
                    dtype: view.dtype(),
                    shape: view.shape().to_vec(),
                    bytes: view.data().to_vec(),
                };
                (name.to_string(), raw)
            })
            .collect();
        let prefix = tensors
            .keys()
            .find_map(|name| name.strip_suffix(ANCHOR))
            .map(str::to_string)
            .ok_or_else(|| {
                InputError::in_file(path, "missing weight").field(format!("weight {ANCHOR}"))
            })?;
        Ok(WeightSource { path: path.to_path_buf(), prefix, tensors })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What stands before the standard names in this file (`""`, `"bert."`, ...).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn error(&self, name: &str, message: impl Into<String>) -> InputError {
        InputError::in_file(&self.path, message).field(format!("weight {}{name}", self.prefix))
    }

    /// A float tensor of exactly `shape`, as f32, row-major.
    pub fn tensor(&mut self, name: &str, shape: &[usize]) -> InputResult<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let raw = self.tensors.get(&full).ok_or_else(|| {
            self.error(name, format!("missing (config.json implies shape {shape:?})"))
        })?;
        if raw.shape != shape {
            return Err(self
                .error(name, format!("has shape {:?}, config.json implies {shape:?}", raw.shape)));
        }
        to_f32(raw).ok_or_else(|| {
            self.error(
                name,
                format!("unsupported dtype {:?} (expected F32, F16, BF16 or F64)", raw.dtype),
            )
        })
    }

    /// A linear weight stored (out, in) by PyTorch, returned transposed as (in, out).
    pub fn linear_weight(
        &mut self,
        name: &str,
        outputs: usize,
        inputs: usize,
    ) -> InputResult<Vec<f32>> {
        let values = self.tensor(name, &[outputs, inputs])?;
        Ok(transpose(&values, outputs, inputs))
    }

    /// Writes `exported` under this file's prefix, plus every tensor of this file that
    /// `exported` does not replace, to a new safetensors file (atomically).
    pub fn save_with(&self, exported: &Exported, path: &Path) -> anyhow::Result<()> {
        let mut out: BTreeMap<String, RawTensor> = self.tensors.clone().into_iter().collect();
        for (name, (shape, values)) in &exported.tensors {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.insert(
                format!("{}{name}", self.prefix),
                RawTensor { dtype: Dtype::F32, shape: shape.clone(), bytes },
            );
        }
        let views = out
            .iter()
            .map(|(name, raw)| {
                Ok((
                    name.clone(),
                    safetensors::tensor::TensorView::new(raw.dtype, raw.shape.clone(), &raw.bytes)?,
                ))
            })
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        // transformers refuses safetensors files whose metadata lacks format = pt.
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        let tmp = path.with_extension("safetensors.partial");
        safetensors::serialize_to_file(views, Some(metadata), &tmp)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}

/// Weights taken out of a model, by standard name, in PyTorch's layout.
#[derive(Debug, Default)]
pub struct Exported {
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Exported {
    pub fn tensor<B: Backend, const D: usize>(&mut self, name: &str, value: Tensor<B, D>) {
        let shape = value.dims().to_vec();
        let values = value.into_data().iter::<f32>().collect();
        self.tensors.insert(name.to_string(), (shape, values));
    }

    /// Our (in, out) linear weight back to PyTorch's (out, in).
    pub fn linear_weight<B: Backend>(&mut self, name: &str, value: Tensor<B, 2>) {
        let [inputs, outputs] = value.dims();
        let values: Vec<f32> = value.into_data().iter::<f32>().collect();
        self.tensors
            .insert(name.to_string(), (vec![outputs, inputs], transpose(&values, inputs, outputs)));
    }
}

/// Row-major (rows, cols) -> row-major (cols, rows).
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

fn to_f32(raw: &RawTensor) -> Option<Vec<f32>> {
    let b = &raw.bytes;
    let values = match raw.dtype {
        Dtype::F32 => {
            b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        Dtype::F16 => {
            b.chunks_exact(2).map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect()
        }
        _ => return None,
    };
    Some(values)
}

/// IEEE half -> single, including subnormals, infinities and NaN.
fn f16_to_f32(bits: u16) -> f32 {
    let sign = if bits & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = ((bits >> 10) & 0x1f) as i32;
    let mantissa = (bits & 0x3ff) as f32;
    match exponent {
        0 => sign * mantissa * 2f32.powi(-24),
        31 if mantissa == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        _ => sign * (1.0 + mantissa / 1024.0) * 2f32.powi(exponent - 15),
    }
}
