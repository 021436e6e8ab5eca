//! Loading the challenge's data: records, the metric table and the matrices behind them.

pub mod npy;
pub mod records;

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{InputError, InputResult};
pub use npy::Matrix;
pub use records::{load_records, score_bin, Record, Split};

/// Metric names and their embeddings: row i of `embeddings` belongs to `names[i]`.
#[derive(Debug, Clone)]
pub struct MetricTable {
    pub names: Vec<String>,
    pub embeddings: Matrix,
    index: HashMap<String, usize>,
}

impl MetricTable {
    pub fn load(names_path: &Path, embeddings_path: &Path) -> InputResult<MetricTable> {
        let names = load_metric_names(names_path)?;
        let embeddings = npy::read_matrix(embeddings_path)?;
        if embeddings.rows != names.len() {
            return Err(InputError::in_file(
                embeddings_path,
                format!(
                    "has {} rows but {} names {}; row i must be the embedding of name i",
                    embeddings.rows,
                    names_path.display(),
                    names.len()
                ),
            ));
        }
        MetricTable::new(names, embeddings).map_err(|e| e.file(names_path))
    }

    pub fn new(names: Vec<String>, embeddings: Matrix) -> InputResult<MetricTable> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = index.insert(name.clone(), i) {
                return Err(InputError::new(format!(
                    "duplicate metric name {name:?} (also at index {first})"
                ))
                .record(i));
            }
        }
        Ok(MetricTable { names, embeddings, index })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.embeddings.cols
    }
}

fn load_metric_names(path: &Path) -> InputResult<Vec<String>> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| InputError::in_file(path, format!("not valid JSON: {e}")))?;
    let Value::Array(items) = value else {
        return Err(InputError::in_file(path, "expected a JSON list of metric names"));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(name) => Ok(name),
            other => Err(InputError::in_file(
                path,
                format!("expected a string, found {}", records::json_kind(&other)),
            )
            .record(i)),
        })
        .collect()
}

/// Records joined to the metric table: everything the model needs except the text features.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub records: Vec<Record>,
    /// Row of the metric table for each record.
    pub metric_rows: Vec<usize>,
    pub metrics: MetricTable,
}

impl Dataset {
    /// Loads a records file and resolves every metric name, naming the record that fails.
    pub fn load(records_path: &Path, split: Split, metrics: MetricTable) -> InputResult<Dataset> {
        let records = load_records(records_path, split)?;
        Dataset::new(records, metrics).map_err(|e| e.file(records_path))
    }

    pub fn new(records: Vec<Record>, metrics: MetricTable) -> InputResult<Dataset> {
        let metric_rows = records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                metrics.index_of(&record.metric_name).ok_or_else(|| {
                    InputError::new(format!(
                        "unknown metric {:?}: not in the metric names file",
                        record.metric_name
                    ))
                    .record(i)
                    .field("metric_name")
                })
            })
            .collect::<InputResult<Vec<_>>>()?;
        Ok(Dataset { records, metric_rows, metrics })
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Scores of a training set (panics on test records, which the loader never lets through here).
    pub fn scores(&self) -> Vec<f32> {
        self.records.iter().map(|r| r.score.expect("training records carry scores")).collect()
    }

    pub fn score_bins(&self) -> Vec<usize> {
        self.scores().into_iter().map(score_bin).collect()
    }

    pub fn texts(&self) -> Vec<String> {
        self.records.iter().map(Record::combined_text).collect()
    }
}
