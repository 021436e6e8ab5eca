//! Small helpers every layer may use: atomic file writes, file identity, hex digests, and
//! (in [`process`]) processes and the host.

pub mod process;

use std::path::Path;

use anyhow::Context;

/// Writes a file so that readers see either the old content or the new, never half of it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
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
