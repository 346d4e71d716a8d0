//! Files: arrays in `.npy`, `.npz` and `.csv` (what numpy users have), models in safetensors with their metadata
//! and certificate, JSON reports. Every file is written to a temporary name and renamed into place, so that an
//! error never leaves a half-written file behind.

pub mod arrays;
pub mod model;
pub mod ratings;
pub mod report;
pub mod supervised;

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{GonnError, Result};

pub use arrays::{read_array, read_array_opt, write_npy, write_npz, Array};
pub use model::{load_model, load_relu_weights, load_weights, save_model, ModelFile};
pub use supervised::{load_supervised, Supervised};

/// The folder that will hold `path`, which must exist.
fn existing_parent(path: &Path) -> Result<&Path> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(GonnError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "the output folder does not exist"),
        ));
    }
    Ok(dir)
}

/// Writes `bytes` to `path`: `-` is standard output; a symbolic link is followed and its target replaced; a
/// path that exists and is not a regular file (a FIFO, `/dev/stdout`) is written straight into; a regular file is
/// written atomically (a temporary file in the same folder, then a rename), so an error never leaves half a file.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(bytes).and_then(|_| out.flush()).map_err(|e| GonnError::io(path, e));
    }
    // Follow symbolic links (also dangling ones, to the file they name) so that the link itself stays.
    let mut target = path.to_path_buf();
    for _ in 0..32 {
        match fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                let next = fs::read_link(&target).map_err(|e| GonnError::io(path, e))?;
                target = match target.parent() {
                    Some(dir) if next.is_relative() => dir.join(next),
                    _ => next,
                };
            }
            _ => break,
        }
    }
    if let Ok(m) = fs::metadata(&target) {
        if !m.is_file() && !m.is_dir() {
            return fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .and_then(|mut f| f.write_all(bytes))
                .map_err(|e| GonnError::io(path, e));
        }
    }
    let path = target.as_path();
    let dir = existing_parent(path)?;
    let name = path.file_name().ok_or_else(|| GonnError::io(path, std::io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    remove_stale_temporaries(dir, &name.to_string_lossy());
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(GonnError::io(path, e));
    }
    Ok(())
}

/// Removes the temporaries `.NAME.tmp-PID` that a killed run (`kill -9` between write and rename) left beside
/// `NAME`, when their process no longer exists (Linux: no `/proc/PID`).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().to_string();
        let Some(pid) = file.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Checks that a file can later be written at `path` (its folder exists), so that long runs fail early.
pub fn check_writable(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let dir = existing_parent(path)?;
    if path.is_dir() {
        return Err(GonnError::io(path, std::io::Error::other("is a folder, not a file")));
    }
    // A read-only folder is found now, not after a long run. (A full disk can still fail at the end: the write is
    // atomic, so the earlier file stays.)
    if !fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink() || !m.is_file()) {
        let probe = dir.join(format!(".gonn-write-check-{}", std::process::id()));
        fs::File::create(&probe).map_err(|e| GonnError::io(path, e))?;
        let _ = fs::remove_file(&probe);
    }
    Ok(())
}
