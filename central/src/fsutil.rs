//! Small, careful file helpers: bounded reads, atomic replace, private (0600) files.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// A file operation failed; names the file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct FsError {
    /// The file.
    pub path: PathBuf,
    /// The operation.
    pub what: &'static str,
    /// The OS error.
    pub source: std::io::Error,
}

fn err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> FsError + 'a {
    move |source| FsError {
        path: path.to_owned(),
        what,
        source,
    }
}

/// Reads a whole file, refusing files larger than `limit` bytes.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, FsError> {
    let f = std::fs::File::open(path).map_err(err(path, "cannot open"))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(err(path, "cannot read"))?;
    if buf.len() as u64 > limit {
        return Err(FsError {
            path: path.to_owned(),
            what: "file too large",
            source: std::io::Error::other(format!("more than {limit} bytes")),
        });
    }
    Ok(buf)
}

/// Reads a UTF-8 text file, bounded.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, FsError> {
    String::from_utf8(read(path, limit)?).map_err(|e| FsError {
        path: path.to_owned(),
        what: "not UTF-8",
        source: std::io::Error::other(e),
    })
}

/// Replaces `path` atomically: write a temporary file beside it, fsync, rename, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err(&tmp, "cannot create"))?;
    f.write_all(bytes).map_err(err(&tmp, "cannot write"))?;
    f.sync_all().map_err(err(&tmp, "cannot fsync"))?;
    std::fs::rename(&tmp, path).map_err(err(path, "cannot rename into place"))?;
    sync_parent(path)
}

/// Creates a new file with mode 0600 (fails if it exists) and fsyncs it.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), FsError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err(path, "cannot create"))?;
    f.write_all(bytes).map_err(err(path, "cannot write"))?;
    f.sync_all().map_err(err(path, "cannot fsync"))?;
    sync_parent(path)
}

/// Creates a folder (and parents) readable by its owner only.
pub fn create_dir_private(dir: &Path) -> Result<(), FsError> {
    std::fs::create_dir_all(dir).map_err(err(dir, "cannot create folder"))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(err(dir, "cannot set permissions"))
}

fn sync_parent(path: &Path) -> Result<(), FsError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(err(parent, "cannot fsync folder"))
}
