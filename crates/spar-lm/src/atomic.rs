//! Writing a file atomically: checkpoints, tokenizer files, adapters and run logs are written
//! through a temporary file and a rename, so a reader (a resumed run, a rollout server
//! loading new weights) never sees half a file.
//!
//! Its own module because both [`crate::checkpoint`] (which holds a tokenizer) and
//! [`crate::tokenizer`] (which saves its files) write this way; neither depends on the other
//! for it. [`crate::checkpoint::write_atomic`] re-exports it.

use std::io::Write as _;
use std::path::Path;

use crate::error::{LmError, Result};

/// Writes `bytes` to `path` through a temporary file in the same directory (created if
/// needed), synced, and a rename over `path`. An I/O failure is an [`LmError::Io`] naming the
/// file involved.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| LmError::io(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut file = std::fs::File::create(&tmp).map_err(|e| LmError::io(&tmp, e))?;
    file.write_all(bytes).map_err(|e| LmError::io(&tmp, e))?;
    file.sync_all().map_err(|e| LmError::io(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| LmError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_creates_its_directory() {
        let dir = std::env::temp_dir().join(format!("spar-lm-atomic-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let path = dir.join("sub/out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left: {names:?}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
