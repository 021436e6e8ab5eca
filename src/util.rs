//! Small helpers every layer may use: atomic file writes, file identity, hex digests, and
//! (in [`process`]) processes and the host.

pub mod process;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

/// Writes a file so that readers see either the old content or the new, never half of it,
/// and the new content is on disk before it replaces the old (a power loss right after the
/// rename cannot leave an empty file under the real name).
///
/// The temporary file's name is unique (pid, a per-process serial and a random number:
/// two shards on one shared folder may have the same pid), and it is created with
/// `create_new`, so two writers of one path never write into the same temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = unique_temp_path(path);
    let written = write_and_sync(&tmp, bytes)
        .with_context(|| format!("writing {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        // A full disk leaves a partial temporary file; it is no use to anyone.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_parent_dir(path);
    Ok(())
}

/// `NAME.<pid>-<serial>-<random>.partial` next to `path`, so the rename stays on one
/// file system.
fn unique_temp_path(path: &Path) -> PathBuf {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}-{serial}-{:08x}.partial", std::process::id(), rand::random::<u32>()));
    path.with_file_name(name)
}

fn write_and_sync(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename itself durable. Best effort: some file systems cannot open or sync a
/// directory, and the content is already safe either way.
fn sync_parent_dir(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Whether two paths name the same existing file (after resolving links and `..`).
pub fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Lower-case hex of bytes (a digest).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// First 16 hex digits of a digest: short enough to read, long enough never to collide here.
pub fn hex16(digest: &[u8]) -> String {
    hex(&digest[..digest.len().min(8)])
}
