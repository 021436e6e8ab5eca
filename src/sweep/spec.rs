//! Sweep files: the training config's sections plus `name`, `[grid]` and `[resources]`, and
//! their expansion into configs with stable ids.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::{Table, Value};

use crate::config::{line_of, toml_error, with_line, Config, TextEncoderKind, TrainConfig};
use crate::error::{InputError, InputResult};
use crate::search::{self, Domain, Point, SearchConfig, Space, Strategy};

/// Sections a sweep file may have; anything else is a typo worth an error.
const SECTIONS: &[&str] = &[
    "name",
    "data",
    "text",
    "cv",
    "train",
    "validation",
    "features",
    "grid",
    "search",
    "resources",
];

/// Grid keys that name their section; any other key is a `[train]` setting.
fn has_section_prefix(key: &str) -> bool {
    key.starts_with("text.") || key.starts_with("train.") || key.starts_with("features.")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default = "default_devices")]
    pub devices: String,
    #[serde(default = "default_one")]
    pub jobs_per_device: usize,
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Which folds keep their best epoch's weights on disk. Every job stores its test
    /// predictions, so `export` needs checkpoints only for another test file; the full
    /// model's is 1.8 GB, which a report-sized grid would multiply into hundreds of GB.
    #[serde(default)]
    pub checkpoints: Checkpoints,
    /// How long a `run` of this sweep may take ("8h", "90m"), as `run --time-budget`
    /// (which overrides it); checked when the file is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget: Option<String>,
}

/// `[resources] checkpoints = "none" | "all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Checkpoints {
    /// No weights on disk (the default): exports come from stored test predictions.
    #[default]
    None,
    /// Every finished fold's best epoch.
    All,
}

fn default_devices() -> String {
    "auto".into()
}
fn default_one() -> usize {
    1
}
fn default_attempts() -> u32 {
    2
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            devices: default_devices(),
            jobs_per_device: 1,
            max_attempts: default_attempts(),
            checkpoints: Checkpoints::None,
            time_budget: None,
        }
    }
}

/// One grid axis: a dotted key and its values (a list; empty for a range), in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
    /// The list as a categorical domain, or a range table (random and tpe only).
    pub domain: Domain,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct SweepFile {
    pub path: PathBuf,
    pub name: String,
    /// The file's `data`, `text`, `cv` and `train` sections as written.
    base: Table,
    pub grid: Vec<Axis>,
    /// `[search]`: grid (the default), random or tpe, and the pruner.
    pub search: SearchConfig,
    pub resources: Resources,
    /// The file's text, stored with the sweep so a result can be traced to its definition.
    pub source: String,
}

/// A config of the grid: the full resolved config and the grid values that produced it.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPoint {
    pub config: Config,
    /// Axis key -> value, in axis order (only the keys that vary).
    pub varying: Vec<(String, Value)>,
}

impl GridPoint {
    /// `model=standard loss=hybrid weighting.temperature=0.5`
    pub fn label(&self) -> String {
        label(&self.varying)
    }
}

pub fn label(varying: &[(String, Value)]) -> String {
    varying.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join(" ")
}

pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    pub points: Vec<GridPoint>,
    /// Combinations dropped because the model cannot use the loss, with the reason.
    pub dropped: Vec<(Vec<(String, Value)>, String)>,
}

impl SweepFile {
    pub fn load(path: &Path) -> InputResult<SweepFile> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| InputError::in_file(path, format!("cannot read sweep file: {e}")))?;
        SweepFile::parse(path, source).map_err(|e| e.file(path))
    }

    pub fn parse(path: &Path, source: String) -> InputResult<SweepFile> {
        let mut doc: Table = source.parse().map_err(|e| toml_error(&source, &e))?;
        for key in doc.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                return Err(at_key(
                    &source,
                    key,
                    None,
                    format!("unknown key `{key}`; a sweep file has {}", SECTIONS.join(", ")),
                ));
            }
        }
        let name = match doc.remove("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name,
            Some(_) => {
                return Err(at_key(
                    &source,
                    "name",
                    None,
                    "`name` must be a non-empty string".into(),
                ))
            }
            None => {
                return Err(InputError::new(
                    "missing `name = \"...\"` (unique per results database)",
                )
                .field("name"))
            }
        };
        let grid = match doc.remove("grid") {
            Some(Value::Table(table)) => parse_grid(&source, table)?,
            Some(_) => {
                return Err(at_key(&source, "grid", None, "`grid` must be a table of lists".into()))
            }
            None => Vec::new(),
        };
        let search = match doc.remove("search") {
            Some(value) => SearchConfig::from_toml(&value).map_err(|e| {
                let key = e.key.strip_prefix("search.").unwrap_or("search");
                let line = key_line(&source, key.rsplit('.').next().unwrap_or(key), Some("search"));
                InputError::new(format!("line {line}: [search] {}: {}", e.key, e.message))
                    .field(e.key)
            })?,
            None => SearchConfig::default(),
        };
        if search.strategy == Strategy::Grid {
            if let Some(axis) = grid.iter().find(|a| a.domain.is_range()) {
                return Err(InputError::new(format!(
                    "line {}: grid key `{}`: a range table needs [search] strategy = \"random\" \
                     or \"tpe\" (a grid runs lists of values)",
                    axis.line, axis.key
                ))
                .field(format!("grid.{}", axis.key)));
            }
        } else if grid.is_empty() {
            return Err(at_key(
                &source,
                "strategy",
                Some("search"),
                "random and tpe search need a [grid] to search".into(),
            ));
        }
        let resources = match doc.remove("resources") {
            Some(value) => value.try_into::<Resources>().map_err(|e| {
                at_key(&source, "resources", None, format!("[resources]: {}", e.message()))
            })?,
            None => Resources::default(),
        };
        if let Some(budget) = &resources.time_budget {
            super::deadline::parse_duration(budget)
                .map_err(|e| at_key(&source, "time_budget", Some("resources"), e))?;
        }
        let sweep = SweepFile {
            path: path.to_path_buf(),
            name,
            base: doc,
            grid,
            search,
            resources,
            source,
        };
        // Validates the sections once, with line numbers, before any grid value is applied.
        let stripped = strip_sweep_keys(&sweep.source);
        let base: Config = toml::from_str(&stripped).map_err(|e| toml_error(&stripped, &e))?;
        base.text.validate_public().map_err(|e| with_line(&stripped, e))?;
        Ok(sweep)
    }

    /// Every combination of the grid, in file order; invalid model/loss pairs are dropped
    /// and listed, any other invalid value is an error naming its grid key and line.
    pub fn expand(&self) -> InputResult<Expansion> {
        let mut points = Vec::new();
        let mut dropped = Vec::new();
        for combination in cartesian(&self.grid) {
            let varying: Vec<(String, Value)> =
                self.grid.iter().zip(combination).map(|(a, v)| (a.key.clone(), v)).collect();
            match self.apply(&varying)? {
                Ok(point) => points.push(point),
                Err(reason) => dropped.push((varying, reason)),
            }
        }
        Ok(Expansion { points, dropped })
    }

    /// The config of one set of grid values (a grid combination or a sampled point): Ok(Err)
    /// with the reason for an invalid model/loss pair, an error naming the grid key and line
    /// for any other invalid value.
    pub fn apply(&self, varying: &[(String, Value)]) -> InputResult<Result<GridPoint, String>> {
        let config = self.resolve(varying)?;
        if !crate::config::is_valid_pair(config.train.model, config.train.loss) {
            return Ok(Err(format!(
                "model {} cannot use loss {}",
                config.train.model, config.train.loss
            )));
        }
        if let Err(e) = config.check_gbdt_inputs() {
            return Ok(Err(e.message));
        }
        config.validate().map_err(|e| {
            match self
                .grid
                .iter()
                .find(|a| e.field.as_deref().is_some_and(|f| axis_sets(&a.key, f)))
            {
                Some(axis) => self.axis_error(axis, e.message.clone()),
                None => with_line(&self.source, e),
            }
            .file(&self.path)
        })?;
        Ok(Ok(GridPoint { config, varying: varying.to_vec() }))
    }

    /// The resolved config of a set of grid values, before validation.
    fn resolve(&self, varying: &[(String, Value)]) -> InputResult<Config> {
        let mut doc = self.base.clone();
        for (key, value) in varying {
            let axis = self.grid.iter().find(|a| a.key == *key).expect("a grid key");
            set_dotted(&mut doc, key, value.clone()).map_err(|m| self.axis_error(axis, m))?;
        }
        Value::Table(doc).try_into().map_err(|e| self.culprit(&combination_of(varying), e))
    }

    /// The search space of a random or tpe sweep: one axis per grid key.
    pub fn space(&self) -> Space {
        let axes = self
            .grid
            .iter()
            .map(|a| search::Axis { key: a.key.clone(), domain: a.domain.clone() })
            .collect();
        Space::new(axes).expect("parse_grid keeps keys distinct and a search has a grid")
    }

    /// Whether a sampled point can run: its model/loss pair is valid (the samplers' `valid`).
    pub fn is_valid_point(&self, point: &Point) -> bool {
        self.resolve(point).is_ok_and(|c| crate::config::is_valid_pair(c.train.model, c.train.loss))
    }

    /// Which axis makes a combination fail to deserialize: apply the values one at a time.
    fn culprit(&self, values: &[Value], error: toml::de::Error) -> InputError {
        let mut doc = self.base.clone();
        for (axis, value) in self.grid.iter().zip(values) {
            if set_dotted(&mut doc, &axis.key, value.clone()).is_err()
                || Value::Table(doc.clone()).try_into::<Config>().is_err()
            {
                return self.axis_error(axis, error.message().trim().to_string());
            }
        }
        InputError::new(error.message().trim().to_string())
    }

    fn axis_error(&self, axis: &Axis, message: String) -> InputError {
        InputError::new(format!("line {}: grid key `{}`: {message}", axis.line, axis.key))
            .field(format!("grid.{}", axis.key))
    }
}

/// Whether grid key `key` sets config field `field`: itself, a `[train]` key by its short
/// name, or a table that holds it (`"text.finetune" = [{...}]` sets `text.finetune.lr`).
fn axis_sets(key: &str, field: &str) -> bool {
    let full = if has_section_prefix(key) { key.to_string() } else { format!("train.{key}") };
    field == full || field.strip_prefix(full.as_str()).is_some_and(|rest| rest.starts_with('.'))
}

/// Removes `name`, `[grid]` and `[resources]` so the rest deserializes as a plain Config,
/// keeping every other line where it was (so TOML errors keep their line numbers).
fn strip_sweep_keys(source: &str) -> String {
    let (mut in_section, mut skipping) = (false, false);
    source
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                in_section = true;
                skipping = trimmed.starts_with("[grid]")
                    || trimmed.starts_with("[search]")
                    || trimmed.starts_with("[resources]");
            }
            // `name` before any [section] is the sweep's name; inside a section it is a key there.
            let is_sweep_name =
                !in_section && (trimmed.starts_with("name ") || trimmed.starts_with("name="));
            if skipping || is_sweep_name {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_grid(source: &str, table: Table) -> InputResult<Vec<Axis>> {
    let defaults = train_defaults();
    let feature_defaults =
        Value::try_from(crate::config::FeaturesConfig::default()).expect("defaults serialize");
    let text_defaults =
        Value::try_from(crate::config::TextConfig::default()).expect("defaults serialize");
    table
        .into_iter()
        .map(|(key, value)| {
            let line = key_line(source, &key, Some("grid"));
            let err = |m: String| {
                InputError::new(format!("line {line}: grid key `{key}`: {m}"))
                    .field(format!("grid.{key}"))
            };
            let (values, domain) = match value {
                Value::Array(values) if values.is_empty() => {
                    return Err(err("the list of values is empty".into()))
                }
                Value::Array(values) => (values.clone(), Domain::Categorical(values)),
                table @ Value::Table(_) => (Vec::new(), Domain::parse(&key, &table).map_err(err)?),
                other => {
                    return Err(err(format!(
                        "expected a list of values, found {}",
                        other.type_str()
                    )))
                }
            };
            let known = if let Some(rest) = key.strip_prefix("text.") {
                lookup_dotted(&text_defaults, rest).is_some() || is_optional_text_key(rest)
            } else if let Some(rest) = key.strip_prefix("features.") {
                lookup_dotted(&feature_defaults, rest).is_some()
            } else {
                lookup_dotted(&defaults, key.strip_prefix("train.").unwrap_or(&key)).is_some()
            };
            if !known {
                return Err(err(
                    "unknown key: not a [train] (or text.*, features.*) setting".into()
                ));
            }
            Ok(Axis { key, values, domain, line })
        })
        .collect()
}

/// The `[train]` defaults with the keys a default config leaves out of its serialized form
/// (`gbdt`, `synthetic.other_family`), so grid keys can name them.
fn train_defaults() -> Value {
    let mut defaults = Value::try_from(TrainConfig::default()).expect("defaults serialize");
    let table = defaults.as_table_mut().expect("a table");
    let gbdt = Value::try_from(crate::config::GbdtConfig::default()).expect("defaults serialize");
    table.insert("gbdt".into(), gbdt);
    if let Some(Value::Table(synthetic)) = table.get_mut("synthetic") {
        synthetic.insert("other_family".into(), Value::Boolean(false));
    }
    defaults
}

/// `text.*` keys that are unset by default, so absent from the serialized defaults.
fn is_optional_text_key(key: &str) -> bool {
    ["train_embeddings", "test_embeddings", "model", "finetune"].contains(&key)
        || key
            .strip_prefix("finetune.")
            .is_some_and(|k| crate::config::FinetuneConfig::KEYS.contains(&k))
}

fn lookup_dotted<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(value, |v, part| v.as_table()?.get(part))
}

/// Sets `train.<key>` (or `text.<key>` for keys starting with `text.`).
fn set_dotted(doc: &mut Table, key: &str, value: Value) -> Result<(), String> {
    let path: Vec<&str> = if has_section_prefix(key) {
        key.split('.').collect()
    } else {
        std::iter::once("train").chain(key.split('.')).collect()
    };
    let (last, parents) = path.split_last().expect("non-empty key");
    let mut table = doc;
    for part in parents {
        let entry = table.entry(part.to_string()).or_insert_with(|| Value::Table(Table::new()));
        table = entry.as_table_mut().ok_or_else(|| format!("`{part}` is not a table"))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

fn combination_of(varying: &[(String, Value)]) -> Vec<Value> {
    varying.iter().map(|(_, v)| v.clone()).collect()
}

fn cartesian(axes: &[Axis]) -> Vec<Vec<Value>> {
    axes.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect()
    })
}

/// Line of `key` (quoted or bare) inside `[section]`, or at top level when `section` is None.
fn key_line(source: &str, key: &str, section: Option<&str>) -> usize {
    let mut current: Option<String> = None;
    let quoted = format!("\"{key}\"");
    for (i, line) in source.lines().enumerate() {
        let t = line.trim_start();
        if let Some(header) = t.strip_prefix('[') {
            current = Some(header.trim_end().trim_end_matches(']').trim().to_string());
            if section.is_none() && current.as_deref() == Some(key) {
                return i + 1;
            }
            continue;
        }
        if current.as_deref() == section {
            let rest = t.strip_prefix(&quoted).or_else(|| t.strip_prefix(key));
            if rest.is_some_and(|r| r.trim_start().starts_with('=')) {
                return i + 1;
            }
        }
    }
    line_of(source, 0)
}

fn at_key(source: &str, key: &str, section: Option<&str>, message: String) -> InputError {
    InputError::new(format!("line {}: {message}", key_line(source, key, section)))
}

/// A config's stable id: a short hash of its canonical form (data paths left out, since the
/// data fingerprint covers their content), the data fingerprint and the fold assignment.
pub fn config_id(config: &Config, data_fingerprint: &str, fold_hash: &str) -> String {
    let mut canonical = serde_json::to_value(config).expect("config serializes");
    canonical.as_object_mut().expect("object").remove("data");
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_string(&canonical).expect("json").as_bytes());
    hasher.update(data_fingerprint.as_bytes());
    hasher.update(fold_hash.as_bytes());
    crate::util::hex16(&hasher.finalize())[..12].to_string()
}

/// Content hash of everything a config reads: train records, metric table, precomputed text
/// (train and test), the files of a transformer model folder, and the test records when a
/// fine-tuned model learns from them (only then, so that the ids of other configs do not
/// change). Each config of a grid has its own: a grid may vary any of these.
pub fn data_fingerprint(config: &Config) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    let mut files: Vec<&Path> =
        vec![&config.data.train, &config.data.metric_names, &config.data.metric_embeddings];
    files.extend(config.text.train_embeddings.as_deref());
    files.extend(config.text.test_embeddings.as_deref());
    if let (Some(_), Some(test)) = (&config.text.finetune, &config.data.test) {
        files.push(test);
    }
    for file in files {
        let bytes = std::fs::read(file)
            .map_err(|e| InputError::in_file(file, format!("cannot read: {e}")))?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    if let (TextEncoderKind::Transformer, Some(dir)) = (config.text.encoder, &config.text.model) {
        // The embedding cache's content hash of the model, edits in place included.
        let spec = crate::text::transformer::EncoderSpec::load(dir)?;
        hasher.update(crate::text::transformer::cache::model_hash(&spec)?.as_bytes());
    }
    Ok(crate::util::hex16(&hasher.finalize()))
}

/// The sweep's fingerprint (for merge's "same sweep" check): a hash of its configs' sorted,
/// distinct fingerprints.
pub fn sweep_fingerprint(config_fingerprints: &[String]) -> String {
    let mut sorted: Vec<&String> = config_fingerprints.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut hasher = Sha256::new();
    for fingerprint in sorted {
        hasher.update(fingerprint.as_bytes());
    }
    crate::util::hex16(&hasher.finalize())
}

/// Varying keys as a JSON object, for the database.
pub fn varying_json(varying: &[(String, Value)]) -> String {
    let map: BTreeMap<&str, serde_json::Value> = varying
        .iter()
        .map(|(k, v)| (k.as_str(), serde_json::to_value(v).unwrap_or(serde_json::Value::Null)))
        .collect();
    serde_json::to_string(&map).expect("json")
}
