//! Checkpoint manifests: `manifest.json` lists the size and SHA-256 of every file of a
//! checkpoint directory, so that a checkpoint proves itself before it is trusted.
//!
//! Contract:
//! * [`write_manifest`] is called last, on the finished temporary directory, just before it is
//!   renamed into place (`spar_rl::trainer::checkpoint::write_dir_atomically`): every file of
//!   a checkpoint directory written by `spar train` is listed, by its path relative to the
//!   directory (`/`-separated), `manifest.json` itself aside. No timestamps: two runs that
//!   write the same files write the same manifest.
//! * [`verify`] checks every listed file; [`verify_files`] only the listed files among the
//!   names given (what a loader is about to read: [`crate::Checkpoint::load`],
//!   [`crate::Lora::load`]). A listed file that is missing, of another size, or whose
//!   SHA-256 differs is an [`LmError::Corrupt`] naming the file and what is wrong; so is a
//!   `manifest.json` that does not parse.
//! * A directory without `manifest.json` (written before spar wrote manifests, or by another
//!   tool) is [`Verification::Unverified`]: accepted, and callers that resume from it say so.
//!   Files present but not listed are not checked.
//!
//! SHA-256 (FIPS 180-4) is the checksum Hugging Face's LFS storage lists for model files, so
//! a user can compare a listed hash with `sha256sum`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use spar_core::atomic::write_atomic;

use crate::error::{LmError, Result};

/// The manifest's file name inside a checkpoint directory.
pub const MANIFEST: &str = "manifest.json";

/// The value of [`Manifest::format`].
pub const FORMAT: &str = "spar-manifest/1";

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Every file of the directory by relative path (`/`-separated), sorted.
    pub files: BTreeMap<String, FileEntry>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256, 64 lower-case hexadecimal digits.
    pub sha256: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The manifest lists this many of the files asked about, and each matches.
    Verified(usize),
    /// The directory has no `manifest.json`: nothing was checked.
    Unverified,
}

/// The size and SHA-256 of the file at `path`.
pub fn file_entry(path: &Path) -> Result<FileEntry> {
    let mut file = std::fs::File::open(path).map_err(|e| LmError::io(path, e))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher).map_err(|e| LmError::io(path, e))?;
    let digest = hasher.finalize();
    let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(FileEntry { bytes, sha256 })
}

/// Every regular file under `dir` but the manifest, by `/`-separated relative path.
fn files_under(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut pending = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, current)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| LmError::io(&current, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LmError::io(&current, e))?;
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry
                .file_type()
                .map_err(|e| LmError::io(entry.path(), e))?;
            if kind.is_dir() {
                pending.push((format!("{name}/"), entry.path()));
            } else if name != MANIFEST {
                found.push((name, entry.path()));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Writes `dir/manifest.json` (atomically) listing every file under `dir`.
pub fn write_manifest(dir: &Path) -> Result<Manifest> {
    let mut files = BTreeMap::new();
    for (name, path) in files_under(dir)? {
        files.insert(name, file_entry(&path)?);
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        files,
    };
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    write_atomic(&dir.join(MANIFEST), json.as_bytes())?;
    Ok(manifest)
}

/// The manifest of `dir`, `None` when it has none (or is not a directory).
pub fn read_manifest(dir: &Path) -> Result<Option<Manifest>> {
    if !dir.is_dir() {
        // A file (a .gguf model, a wrong --lora path): the loader says what is wrong with it.
        return Ok(None);
    }
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LmError::io(&path, e)),
    };
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        LmError::corrupt(
            &path,
            format!("not a checkpoint manifest ({e}); the file is truncated or corrupt"),
        )
    })?;
    if manifest.format != FORMAT {
        return Err(LmError::corrupt(
            &path,
            format!(
                "manifest format {:?}, this spar reads {FORMAT:?}",
                manifest.format
            ),
        ));
    }
    Ok(Some(manifest))
}

/// Checks every file `dir/manifest.json` lists.
pub fn verify(dir: &Path) -> Result<Verification> {
    verify_where(dir, |_| true)
}

/// Checks the files among `names` (relative paths) that `dir/manifest.json` lists.
pub fn verify_files(dir: &Path, names: &[&str]) -> Result<Verification> {
    verify_where(dir, |name| names.contains(&name))
}

fn verify_where(dir: &Path, wanted: impl Fn(&str) -> bool) -> Result<Verification> {
    let Some(manifest) = read_manifest(dir)? else {
        return Ok(Verification::Unverified);
    };
    let mut checked = 0;
    for (name, expected) in manifest.files.iter().filter(|(n, _)| wanted(n)) {
        let path = dir.join(name);
        let listed = || format!("{} lists it", dir.join(MANIFEST).display());
        let size = match std::fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LmError::corrupt(
                    &path,
                    format!("missing, but {}", listed()),
                ))
            }
            Err(e) => return Err(LmError::io(&path, e)),
        };
        if size != expected.bytes {
            return Err(LmError::corrupt(
                &path,
                format!(
                    "{size} bytes, but {} with {} bytes (truncated or changed after the \
                     checkpoint was written)",
                    listed(),
                    expected.bytes
                ),
            ));
        }
        let actual = file_entry(&path)?;
        if actual.sha256 != expected.sha256 {
            return Err(LmError::corrupt(
                &path,
                format!(
                    "SHA-256 {} differs from {} ({}): the file is corrupt",
                    actual.sha256, MANIFEST, expected.sha256
                ),
            ));
        }
        checked += 1;
    }
    Ok(Verification::Verified(checked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_lists_every_file_and_catches_each_kind_of_damage() {
        let dir = std::env::temp_dir().join(format!("spar-lm-manifest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.bin"), b"abc").unwrap();
        std::fs::write(dir.join("sub/b.txt"), b"").unwrap();
        assert_eq!(verify(&dir).unwrap(), Verification::Unverified);
        let manifest = write_manifest(&dir).unwrap();
        // FIPS 180-2 appendix B.1: SHA-256("abc"); and SHA-256 of the empty string.
        assert_eq!(
            manifest.files["a.bin"],
            FileEntry {
                bytes: 3,
                sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into()
            }
        );
        assert_eq!(
            manifest.files["sub/b.txt"].sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(manifest.files.len(), 2);
        assert_eq!(read_manifest(&dir).unwrap(), Some(manifest));
        assert_eq!(verify(&dir).unwrap(), Verification::Verified(2));
        assert_eq!(
            verify_files(&dir, &["a.bin", "other"]).unwrap(),
            Verification::Verified(1)
        );

        // Same size, one byte changed: the hash catches it.
        std::fs::write(dir.join("a.bin"), b"abd").unwrap();
        let e = verify(&dir).unwrap_err();
        assert!(matches!(e, LmError::Corrupt { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("a.bin") && e.contains("SHA-256"), "{e}");
        // Only the files asked about are checked.
        assert_eq!(
            verify_files(&dir, &["sub/b.txt"]).unwrap(),
            Verification::Verified(1)
        );
        // Truncated.
        std::fs::write(dir.join("a.bin"), b"ab").unwrap();
        let e = verify(&dir).unwrap_err().to_string();
        assert!(
            e.contains("a.bin: 2 bytes") && e.contains("with 3 bytes"),
            "{e}"
        );
        // Missing.
        std::fs::remove_file(dir.join("a.bin")).unwrap();
        let e = verify(&dir).unwrap_err().to_string();
        assert!(e.contains("a.bin: missing"), "{e}");
        // A damaged manifest is itself named.
        std::fs::write(dir.join(MANIFEST), b"{\"format\": \"spar-man").unwrap();
        let e = verify(&dir).unwrap_err().to_string();
        assert!(
            e.contains("manifest.json: not a checkpoint manifest"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
