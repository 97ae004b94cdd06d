//! Writing files so that a crash never leaves a half-written one, and
//! the I/O error that names the file.

use std::path::Path;

use crate::error::{Error, Result};

/// The error for a failed read or write of `path`.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes each (file name, contents) into `dir` with [`write_atomically`],
/// in order; returns the paths written.
pub fn write_files<N: AsRef<Path>>(dir: &Path, files: Vec<(N, Vec<u8>)>) -> Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::with_capacity(files.len());
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomically(&path, &bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into
/// place, so a crash never leaves a half-written file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes).map_err(io_error(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_error(path))
}
