//! The fingerprints that name a config's data: hashing the files it reads, cached per path
//! so that a sweep of many configs over the same files hashes each file once.

use std::collections::HashMap;

use super::*;

/// Each config's data fingerprint, reading each distinct set of inputs once.
pub(super) fn config_fingerprints(points: &[GridPoint]) -> anyhow::Result<Vec<String>> {
    let mut known: HashMap<String, String> = HashMap::new();
    points.iter().map(|p| fingerprint_cached(p, &mut known)).collect()
}

/// A config's data fingerprint, from `known` when a config with the same inputs had one.
pub(super) fn fingerprint_cached(
    p: &GridPoint,
    known: &mut HashMap<String, String>,
) -> anyhow::Result<String> {
    // What data_fingerprint reads; configs that differ only in training settings share it.
    let inputs = serde_json::to_string(&(
        &p.config.data,
        &p.config.text.encoder,
        &p.config.text.train_embeddings,
        &p.config.text.test_embeddings,
        &p.config.text.model,
        p.config.text.finetune.is_some(),
    ))?;
    if let Some(fingerprint) = known.get(&inputs) {
        return Ok(fingerprint.clone());
    }
    let fingerprint = data_fingerprint(&p.config)?;
    known.insert(inputs, fingerprint.clone());
    Ok(fingerprint)
}
