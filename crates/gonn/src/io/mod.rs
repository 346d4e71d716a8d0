//! Files: arrays in `.npy`, `.npz` and `.csv` (what numpy users have), models in safetensors with their metadata
//! and certificate, JSON reports. Every file is written to a temporary name and renamed into place, so that an
//! error never leaves a half-written file behind.

pub mod arrays;
pub mod model;
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

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, then a rename.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let dir = existing_parent(path)?;
    let name = path.file_name().ok_or_else(|| GonnError::io(path, std::io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
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

/// Checks that a file can later be written at `path` (its folder exists), so that long runs fail early.
pub fn check_writable(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    existing_parent(path)?;
    if path.is_dir() {
        return Err(GonnError::io(path, std::io::Error::other("is a folder, not a file")));
    }
    Ok(())
}
