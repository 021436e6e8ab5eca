//! Challenge records (train/test JSON) and how each record becomes one text.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{InputError, InputResult};

/// One prompt/response pair to score against one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub metric_name: String,
    /// The judge's score in [0, 10]; `None` for test records.
    pub score: Option<f32>,
    pub system_prompt: Option<String>,
    pub user_prompt: String,
    pub response: String,
}

impl Record {
    /// The one text a record is encoded as, fixed so that cached embeddings stay valid:
    /// the non-empty fields among system prompt, user prompt and response, in that order,
    /// joined by a blank line. Missing or null fields are left out.
    pub fn combined_text(&self) -> String {
        [
            self.system_prompt.as_deref(),
            Some(self.user_prompt.as_str()),
            Some(self.response.as_str()),
        ]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
    }

    /// The integer score bin (0..=10) a record belongs to; 9.5 rounds to 10.
    pub fn score_bin(&self) -> Option<usize> {
        self.score.map(score_bin)
    }
}

pub fn score_bin(score: f32) -> usize {
    score.round().clamp(0.0, 10.0) as usize
}

/// Whether a file must carry scores (train) or may not need them (test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

/// Reads a challenge JSON file: a list of record objects.
pub fn load_records(path: &Path, split: Split) -> InputResult<Vec<Record>> {
    let bytes =
        std::fs::read(path).map_err(|e| InputError::in_file(path, format!("cannot read: {e}")))?;
    parse_records(&bytes, split).map_err(|e| e.file(path))
}

pub fn parse_records(bytes: &[u8], split: Split) -> InputResult<Vec<Record>> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        if e.error_len().is_none() {
            return InputError::new("truncated JSON: the file ends inside a UTF-8 character");
        }
        let line = crate::config::line_of(&String::from_utf8_lossy(&bytes[..offset]), offset);
        InputError::new(format!("invalid UTF-8 at byte {offset} (line {line})"))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let what = if e.is_eof() { "truncated JSON" } else { "not valid JSON" };
        InputError::new(format!("{what} at line {}, column {}: {e}", e.line(), e.column()))
    })?;
    let Value::Array(items) = value else {
        return Err(InputError::new(format!(
            "expected a JSON list of records, found {}",
            json_kind(&value)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_record(item, split).map_err(|e| e.record(index)))
        .collect()
}

fn parse_record(item: &Value, split: Split) -> InputResult<Record> {
    let Value::Object(fields) = item else {
        return Err(InputError::new(format!("expected an object, found {}", json_kind(item))));
    };
    let metric_name = match fields.get("metric_name") {
        Some(Value::String(name)) => name.clone(),
        Some(other) => {
            return Err(InputError::new(format!("expected a string, found {}", json_kind(other)))
                .field("metric_name"))
        }
        None => return Err(InputError::new("missing").field("metric_name")),
    };
    let score = match (fields.get("score"), split) {
        (None, Split::Train) | (Some(Value::Null), Split::Train) => {
            return Err(InputError::new("missing (train records need a score)").field("score"))
        }
        (None, Split::Test) | (Some(Value::Null), Split::Test) => None,
        (Some(value), _) => Some(parse_score(value).map_err(|e| e.field("score"))?),
    };
    Ok(Record {
        metric_name,
        score,
        system_prompt: optional_text(fields, &["system_prompt"])?,
        user_prompt: optional_text(fields, &["user_prompt", "prompt"])?.unwrap_or_default(),
        response: optional_text(fields, &["response", "expected_response"])?.unwrap_or_default(),
    })
}

/// Scores arrive as strings ("9.0") in the real file and as numbers elsewhere.
fn parse_score(value: &Value) -> InputResult<f32> {
    let score = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| InputError::new(format!("not a number: {value}")))?;
    if !score.is_finite() || !(0.0..=10.0).contains(&score) {
        return Err(InputError::new(format!("{value} is outside [0, 10]")));
    }
    Ok(score as f32)
}

/// The first present, non-null field among `names` (a canonical name and its variants).
fn optional_text(fields: &Map<String, Value>, names: &[&str]) -> InputResult<Option<String>> {
    for name in names {
        match fields.get(*name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => return Ok(Some(s.clone())),
            Some(other) => {
                return Err(InputError::new(format!(
                    "expected a string or null, found {}",
                    json_kind(other)
                ))
                .field(*name))
            }
        }
    }
    Ok(None)
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
