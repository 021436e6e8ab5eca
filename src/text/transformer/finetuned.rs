//! Fine-tuned copies of a model for sweeps (`[text] finetune = {...}`), made once and reused:
//! `<cache_dir>/finetuned/<key>/`, where the key hashes the base model's content, the
//! settings and the texts, so changing any of them makes a new folder and nothing stale is
//! ever reused.
//!
//! A folder is built under a temporary name beside its final one and renamed into place, so
//! a folder with a key's name is always complete: a crash leaves only a `.partial-*` folder,
//! which is never read (and may be deleted), and of two processes racing on the same key the
//! second to finish discards its copy and uses the first's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::cache::model_hash;
use super::config::EncoderSpec;
use super::finetune::{finetune, planned_steps, FinetuneSettings};
use crate::util::hex;

/// Bumped whenever the fine-tuning code could train a different model from the same inputs,
/// so that folders made by an older implementation are not reused.
// 2: dropout masks come from the host generators of `HostDropout` (other masks, same seed).
const FINETUNE_VERSION: &str = "foldsweep-simcse-2";

/// The folder of `model_dir` fine-tuned on `texts` (in this order) with `settings`: the one
/// already under `cache_dir` if there is one, else a new one trained now.
pub fn finetuned_model(
    model_dir: &Path,
    texts: &[String],
    settings: &FinetuneSettings,
    cache_dir: &Path,
) -> anyhow::Result<PathBuf> {
    let root = cache_dir.join("finetuned");
    let target = root.join(finetune_key(model_dir, texts, settings)?);
    if target.is_dir() {
        log::info!(
            "reused the fine-tuned model {} (of {}, {} texts)",
            target.display(),
            model_dir.display(),
            texts.len()
        );
        return Ok(target);
    }
    let steps = planned_steps(texts, settings);
    let plural = if steps == 1 { "" } else { "s" };
    log::info!(
        "fine-tuning {} on {} texts ({steps} step{plural}) into {}",
        model_dir.display(),
        texts.len(),
        target.display()
    );
    std::fs::create_dir_all(&root)?;
    remove_stale_partials(&target);
    let partial = partial_dir(&target);
    let built = finetune(model_dir, texts, &partial, settings).and_then(|_| sync_tree(&partial));
    if let Err(error) = built {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(error);
    }
    publish(&partial, &target)?;
    Ok(target)
}

/// SHA-256 (hex) of the implementation version, the base model's content hash, the
/// settings and every text, each length-prefixed so that no two inputs run together.
pub fn finetune_key(
    model_dir: &Path,
    texts: &[String],
    settings: &FinetuneSettings,
) -> anyhow::Result<String> {
    let spec = EncoderSpec::load(model_dir)?;
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(FINETUNE_VERSION.as_bytes());
    field(model_hash(&spec)?.as_bytes());
    field(serde_json::to_string(settings)?.as_bytes());
    field(&(texts.len() as u64).to_le_bytes());
    texts.iter().for_each(|text| field(text.as_bytes()));
    Ok(hex(&hasher.finalize()))
}

/// A sibling of `target` unique to this process and call, so no two builders share one:
/// `.partial-<key>-<host>-<pid>-<serial>`.
fn partial_dir(target: &Path) -> PathBuf {
    static BUILDS: AtomicUsize = AtomicUsize::new(0);
    let serial = BUILDS.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!("{}{}-{serial}", partial_prefix(target), std::process::id()))
}

/// The name every partial folder of `target` built on this host starts with.
fn partial_prefix(target: &Path) -> String {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!(".partial-{name}-{}-", host.trim())
}

/// Deletes the partial folders of `target` left on this host by processes that are gone
/// (killed or crashed mid-training; a real model's copy is about 1 GB). Folders of live
/// processes, and of other hosts sharing the cache, are left alone.
fn remove_stale_partials(target: &Path) {
    let (Some(parent), prefix) = (target.parent(), partial_prefix(target)) else { return };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) =
            name.strip_prefix(&prefix).and_then(|rest| rest.split('-').next()?.parse::<i32>().ok())
        else {
            continue;
        };
        if !crate::util::process::process_alive(pid as i64)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            log::info!("removed {}, left unfinished by process {pid}", entry.path().display());
        }
    }
}

/// Renames the finished folder into place. A rename onto an existing (non-empty) folder
/// fails, which is how a process that lost a race learns that another one published first.
fn publish(partial: &Path, target: &Path) -> anyhow::Result<()> {
    match std::fs::rename(partial, target) {
        Ok(()) => {
            // Makes the rename itself durable, not only the files it moved.
            if let Some(parent) = target.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        }
        Err(_) if target.is_dir() => {
            log::info!("another process fine-tuned {} first; using its copy", target.display());
            std::fs::remove_dir_all(partial)?;
            Ok(())
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(partial);
            Err(anyhow::Error::new(error)
                .context(format!("moving the fine-tuned model into {}", target.display())))
        }
    }
}

/// Flushes every file under `dir` to disk before the rename publishes them: after a power
/// loss the folder must not exist with empty or partial files inside.
fn sync_tree(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_folders_of_dead_processes_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("abc123");
        let mut finished = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = finished.id();
        finished.wait().unwrap();
        let prefix = partial_prefix(&target);
        let dead = root.path().join(format!("{prefix}{dead_pid}-0"));
        let live = partial_dir(&target);
        let other_key = root
            .path()
            .join(format!("{}{dead_pid}-0", partial_prefix(&root.path().join("def456"))));
        let other_host = root.path().join(format!(".partial-abc123-some-other-host-{dead_pid}-0"));
        for dir in [&dead, &live, &other_key, &other_host] {
            std::fs::create_dir_all(dir.join("weights")).unwrap();
        }
        remove_stale_partials(&target);
        assert!(!dead.exists(), "a dead process's partial folder is removed");
        assert!(live.exists(), "this (live) process's partial folder stays");
        assert!(
            other_key.exists() && other_host.exists(),
            "other keys and other hosts are not touched"
        );
    }
}
