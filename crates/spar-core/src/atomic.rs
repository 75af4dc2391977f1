//! Writing a file atomically: checkpoints, tokenizer files, adapters, run logs and reports are
//! written through a temporary file and a rename, so a reader (a resumed run, a rollout server
//! loading new weights, a browser on `summary.md`) never sees half a file.
//!
//! Here, in the bottom crate, because every crate that writes files (`spar-lm`, `spar-rl`,
//! `spar-report`, which must stay free of tensors) can depend on `spar-core`; it needs nothing
//! but `std`.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory (created if
/// needed), synced, and a rename over `path`; the temporary file is removed if the rename
/// fails. An I/O failure is an [`Error::Io`] naming the file involved.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| {
        // Leave nothing behind (`path` may be a directory, or on a read-only mount).
        std::fs::remove_file(&tmp).ok();
        Error::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_creates_its_directory_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("spar-core-atomic-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let path = dir.join("sub/out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        // A directory in the way is an error naming a path, and the temporary file is gone.
        let err = write_atomic(&dir, b"x").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains(&dir.display().to_string()), "{err}");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = dir.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        assert!(!tmp.exists(), "{} left behind", tmp.display());
        std::fs::remove_dir_all(&dir).ok();
    }
}
