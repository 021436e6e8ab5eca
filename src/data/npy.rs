//! Float matrices in NumPy's .npy format (metric embeddings, precomputed text embeddings).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use npyz::{DType, NpyFile, Order, WriterBuilder};

use crate::error::{InputError, InputResult};

/// A dense row-major f32 matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Matrix {
        assert_eq!(rows * cols, data.len(), "matrix data does not match its shape");
        Matrix { rows, cols, data }
    }

    pub fn row(&self, index: usize) -> &[f32] {
        &self.data[index * self.cols..(index + 1) * self.cols]
    }

    /// A new matrix made of the given rows, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(indices.len() * self.cols);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Matrix::new(indices.len(), self.cols, data)
    }
}

/// Reads a 1-D float .npy (a label vector, say) or the values of a 2-D one.
pub fn read_matrix_or_vector(path: &Path) -> InputResult<Vec<f32>> {
    read_array(path, true).map(|m| m.data)
}

/// Reads a 2-D float .npy (f4 or f8, C order) and rejects NaN and infinity.
pub fn read_matrix(path: &Path) -> InputResult<Matrix> {
    read_array(path, false)
}

fn read_array(path: &Path, allow_vector: bool) -> InputResult<Matrix> {
    let err = |message: String| InputError::in_file(path, message);
    let file = File::open(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let npy = NpyFile::new(BufReader::new(file))
        .map_err(|e| err(format!("not a valid .npy file: {e}")))?;
    let shape = npy.shape().to_vec();
    let (rows, cols) = match shape[..] {
        [rows, cols] => (rows, cols),
        [len] if allow_vector => (len, 1),
        _ => return Err(err(format!("expected a 2-D array, found shape {shape:?}"))),
    };
    let file_len = npy_file_len(path)?;
    check_shape(&shape, rows, cols, npy.dtype().num_bytes(), file_len).map_err(err)?;
    if npy.order() != Order::C {
        return Err(err("Fortran-ordered arrays are not supported; save with C order".into()));
    }
    let dtype = npy.dtype();
    let data: Vec<f32> = match dtype_code(&dtype).as_deref() {
        Some("<f4") => npy.into_vec::<f32>().map_err(|e| err(format!("cannot read data: {e}")))?,
        Some("<f8") => npy
            .into_vec::<f64>()
            .map_err(|e| err(format!("cannot read data: {e}")))?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => {
            return Err(err(format!(
                "expected float32 or float64 data, found dtype {}",
                dtype.descr()
            )))
        }
    };
    let (rows, cols) = (rows as usize, cols as usize);
    if data.len() != rows * cols {
        return Err(err(format!("holds {} values, its shape says {}", data.len(), rows * cols)));
    }
    if let Some(pos) = data.iter().position(|v| !v.is_finite()) {
        return Err(InputError::in_file(
            path,
            format!("non-finite value {} at column {}", data[pos], pos % cols),
        )
        .record(pos / cols));
    }
    Ok(Matrix::new(rows, cols, data))
}

fn npy_file_len(path: &Path) -> InputResult<u64> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))
}

/// Rejects a header that cannot describe the file before any data is read: npyz multiplies
/// the shape without checking, so an overflowing shape wraps to a small count (or asks for an
/// allocation larger than memory), and a matrix with no columns would be a feature vector of
/// width 0 that training cannot use.
fn check_shape(
    shape: &[u64],
    rows: u64,
    cols: u64,
    item_size: Option<usize>,
    file_len: u64,
) -> Result<(), String> {
    if cols == 0 {
        return Err(format!("has 0 columns (shape {shape:?}); each row needs at least one value"));
    }
    let bytes = rows.checked_mul(cols).and_then(|n| n.checked_mul(item_size.unwrap_or(1) as u64));
    match bytes {
        None => Err(format!("its shape {shape:?} holds more values than any file can")),
        Some(bytes) if bytes > file_len => Err(format!(
            "its shape {shape:?} needs {bytes} bytes of data but the whole file has {file_len}"
        )),
        Some(_) => Ok(()),
    }
}

fn dtype_code(dtype: &DType) -> Option<String> {
    match dtype {
        DType::Plain(type_str) => {
            let code = type_str.to_string();
            // A single-byte order mark "|" or native "=" means little-endian on our targets.
            Some(code.replacen('=', "<", 1))
        }
        _ => None,
    }
}

/// Writes a 2-D float32 .npy, atomically: a reader never sees a half-written file.
pub fn write_matrix(path: &Path, matrix: &Matrix) -> anyhow::Result<()> {
    let tmp = path.with_extension("npy.partial");
    {
        let file = BufWriter::new(File::create(&tmp)?);
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(&[matrix.rows as u64, matrix.cols as u64])
            .writer(file)
            .begin_nd()?;
        writer.extend(matrix.data.iter().copied())?;
        writer.finish()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
