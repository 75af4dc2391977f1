//! Writing a file atomically, so a reader (a browser on `summary.md`, a second `spar report`)
//! never sees half of it.

use std::io::Write as _;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory (created
/// if needed), synced, then renamed over `path` (the temporary file is removed if that
/// fails). The same recipe as `spar_lm::checkpoint::write_atomic`, which this crate cannot
/// use without depending on candle.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
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
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("spar-report-atomic-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let path = dir.join("sub/out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A directory in the way is an error naming a path.
        let err = write_atomic(&dir, b"x").unwrap_err().to_string();
        assert!(err.contains(&dir.display().to_string()), "{err}");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = dir.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
        assert!(!tmp.exists(), "{} left behind", tmp.display());
        std::fs::remove_dir_all(&dir).ok();
    }
}
