//! An on-disk embedding cache keyed by the model's CONTENT and each text's content.
//!
//! Layout: one file per model, `<cache_dir>/<model hash>.embcache`, holding
//! `text hash -> vector` entries. A changed model file gives a new model hash and so a new
//! file (old entries are never reused); a new text is a missing entry, and only missing
//! entries are computed. The file ends with a SHA-256 of everything before it, so a
//! truncated or corrupted file is detected, discarded and rebuilt, never used. Files are
//! written to a temporary name and renamed, so readers never see half a file.
//!
//! File format (little-endian):
//! `MAGIC (8) | dim u32 | count u64 | count x (text sha256 (32) | dim x f32) | sha256 (32)`.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::config::EncoderSpec;
use super::encoder::SentenceEncoder;
use crate::data::Matrix;

const MAGIC: &[u8; 8] = b"FSEMB001";
/// Bumped whenever the encoder's numbers could change for the same files, so that caches
/// written by an older implementation are not reused.
const IMPLEMENTATION_VERSION: &str = "foldsweep-sentence-encoder-1";
const HASH_LEN: usize = 32;
const HEADER_LEN: usize = 8 + 4 + 8;

type TextHash = [u8; HASH_LEN];
/// Memo key of a model hash: the content files and their (size, mtime).
type FileStamps = (Vec<PathBuf>, Vec<(u64, SystemTime)>);

/// What one [`encode_cached`] call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Texts asked for.
    pub requested: usize,
    /// Texts answered from the cache file.
    pub hits: usize,
    /// Distinct texts that went through the model.
    pub computed: usize,
    /// Why an existing cache file was thrown away (corrupt, truncated, wrong width), if it was.
    pub discarded: Option<String>,
    /// The cache file used.
    pub file: PathBuf,
}

/// Embeddings of `texts` (row i for text i, the full pipeline as [`SentenceEncoder::encode`]),
/// taking what the cache in `cache_dir` already holds for this model and computing, then
/// storing, the rest. The model is loaded only when something is missing.
pub fn encode_cached(
    model_dir: &Path,
    texts: &[String],
    cache_dir: &Path,
    batch_size: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> anyhow::Result<(Matrix, CacheStats)> {
    let spec = EncoderSpec::load(model_dir)?;
    let file = cache_dir.join(format!("{}.embcache", model_hash(&spec)?));
    let (mut entries, discarded) = match read_cache(&file, spec.dim()) {
        Ok(entries) => (entries, None),
        Err(reason) => (Vec::new(), Some(reason)),
    };
    let hashes: Vec<TextHash> = texts.iter().map(|t| text_hash(t)).collect();
    let known: HashSet<TextHash> = entries.iter().map(|(h, _)| *h).collect();
    let missing = missing_texts(&known, texts, &hashes);
    let hits = hashes.iter().filter(|h| known.contains(*h)).count();
    let stats =
        CacheStats { requested: texts.len(), hits, computed: missing.len(), discarded, file };
    if !missing.is_empty() || stats.discarded.is_some() {
        let encoder = SentenceEncoder::load(model_dir)?;
        let missing_texts: Vec<String> = missing.iter().map(|(_, t)| t.clone()).collect();
        let computed = encoder.encode(&missing_texts, batch_size, progress)?;
        entries.extend(
            missing.iter().enumerate().map(|(i, (hash, _))| (*hash, computed.row(i).to_vec())),
        );
        std::fs::create_dir_all(cache_dir)?;
        write_cache(&stats.file, spec.dim(), &entries)?;
    }
    Ok((assemble(&entries, &hashes, spec.dim()), stats))
}

/// Distinct texts whose hash the cache lacks, in first-seen order.
fn missing_texts(
    known: &HashSet<TextHash>,
    texts: &[String],
    hashes: &[TextHash],
) -> Vec<(TextHash, String)> {
    let mut seen = HashSet::new();
    hashes
        .iter()
        .zip(texts)
        .filter(|(h, _)| !known.contains(*h) && seen.insert(**h))
        .map(|(h, t)| (*h, t.clone()))
        .collect()
}

fn assemble(entries: &[(TextHash, Vec<f32>)], hashes: &[TextHash], dim: usize) -> Matrix {
    let index: HashMap<&TextHash, &Vec<f32>> = entries.iter().map(|(h, v)| (h, v)).collect();
    let mut data = Vec::with_capacity(hashes.len() * dim);
    for hash in hashes {
        // Every hash is either cached or was just computed and added.
        data.extend_from_slice(index[hash]);
    }
    Matrix::new(hashes.len(), dim, data)
}

pub fn text_hash(text: &str) -> TextHash {
    Sha256::digest(text.as_bytes()).into()
}

/// SHA-256 (hex) over the implementation version and the name, length and bytes of every
/// file that decides the embeddings. Memoised per process by (path, size, mtime), because
/// hashing a 90 MB weight file costs a noticeable fraction of a second.
pub fn model_hash(spec: &EncoderSpec) -> anyhow::Result<String> {
    let files = spec.content_files();
    let stamps = files.iter().map(|f| file_stamp(f)).collect::<anyhow::Result<Vec<_>>>()?;
    let key = (files.clone(), stamps);
    static MEMO: OnceLock<Mutex<HashMap<FileStamps, String>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hash) =
        memo.lock().map_err(|_| anyhow::anyhow!("model hash memo poisoned"))?.get(&key)
    {
        return Ok(hash.clone());
    }
    let hash = hash_files(spec, &files)?;
    memo.lock().map_err(|_| anyhow::anyhow!("model hash memo poisoned"))?.insert(key, hash.clone());
    Ok(hash)
}

fn file_stamp(path: &Path) -> anyhow::Result<(u64, SystemTime)> {
    let meta = std::fs::metadata(path)
        .map_err(|e| crate::error::InputError::in_file(path, format!("cannot read: {e}")))?;
    Ok((meta.len(), meta.modified()?))
}

fn hash_files(spec: &EncoderSpec, files: &[PathBuf]) -> anyhow::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(IMPLEMENTATION_VERSION.as_bytes());
    for path in files {
        let name = path.strip_prefix(&spec.dir).unwrap_or(path).to_string_lossy().into_owned();
        let mut file = std::fs::File::open(path)
            .map_err(|e| crate::error::InputError::in_file(path, format!("cannot read: {e}")))?;
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(file.metadata()?.len().to_le_bytes());
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    Ok(crate::util::hex(&hasher.finalize()))
}

/// The entries of a cache file; `Err(reason)` when it exists but cannot be trusted.
/// A missing file is simply empty.
fn read_cache(path: &Path, dim: usize) -> Result<Vec<(TextHash, Vec<f32>)>, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let (body, checksum) = bytes.split_at(bytes.len().saturating_sub(HASH_LEN));
    if bytes.len() < HEADER_LEN + HASH_LEN || &body[..8] != MAGIC {
        return Err("not a foldsweep embedding cache (too short or wrong magic)".into());
    }
    if Sha256::digest(body).as_slice() != checksum {
        return Err("checksum mismatch (corrupted or truncated)".into());
    }
    let stored_dim = u32::from_le_bytes(body[8..12].try_into().map_err(|_| "bad header")?) as usize;
    let count = u64::from_le_bytes(body[12..20].try_into().map_err(|_| "bad header")?) as usize;
    let entry_len = HASH_LEN + 4 * stored_dim;
    if stored_dim != dim || body.len() != HEADER_LEN + count.saturating_mul(entry_len) {
        return Err(format!("holds {count} entries of width {stored_dim}, expected width {dim} and a matching length"));
    }
    Ok(body[HEADER_LEN..].chunks_exact(entry_len).map(parse_entry).collect())
}

fn parse_entry(chunk: &[u8]) -> (TextHash, Vec<f32>) {
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(&chunk[..HASH_LEN]);
    let values = chunk[HASH_LEN..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (hash, values)
}

/// Writes the whole file under a temporary name in the same folder, then renames it over
/// the old one (atomic on one file system).
fn write_cache(path: &Path, dim: usize, entries: &[(TextHash, Vec<f32>)]) -> anyhow::Result<()> {
    let mut bytes =
        Vec::with_capacity(HEADER_LEN + entries.len() * (HASH_LEN + 4 * dim) + HASH_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    bytes.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for (hash, values) in entries {
        bytes.extend_from_slice(hash);
        values.iter().for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
    }
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum);
    // Unique per process and call, so concurrent writers never share a temporary file.
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let serial = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("partial.{}.{serial}", std::process::id()));
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
