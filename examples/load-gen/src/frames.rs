//! Loading the JPEG frames to stream (shared with `examples/stream-client`).
//!
//! A path is either one file (sent as is, whatever its name) or a folder, from which every
//! regular file named `*.jpg` / `*.jpeg` (any case) is taken in file-name order, so a folder of
//! numbered frames plays back in sequence. Everything is read into memory up front: the sender's
//! timing must not include disk reads, and [`Bytes`] makes handing the same frame out again on
//! every cycle free. The files are not checked to be valid JPEGs; sending a bad one is a
//! legitimate way to exercise the server's `invalid_frame` error.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// Why frames could not be loaded. The message includes the I/O error's own, so that error is
/// not also exposed as [`std::error::Error::source`] (printing the chain would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum FramesError {
    /// A file could not be read, or the path could not be inspected.
    #[error("reading {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    /// A folder could not be listed.
    #[error("listing {}: {cause}", path.display())]
    List { path: PathBuf, cause: io::Error },
    /// A folder holds no JPEG files.
    #[error("no *.jpg or *.jpeg files in {}", path.display())]
    NoJpegs { path: PathBuf },
}

/// Whether a folder entry's name marks it as a JPEG.
pub fn is_jpeg_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// The files to send for `path`: itself if it is not a folder, else its JPEG files sorted by
/// name (an error if there are none).
pub fn list_frames(path: &Path) -> Result<Vec<PathBuf>, FramesError> {
    let meta = std::fs::metadata(path).map_err(|cause| FramesError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let list_error = |cause| FramesError::List {
        path: path.to_path_buf(),
        cause,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(list_error)? {
        let p = entry.map_err(list_error)?.path();
        if is_jpeg_name(&p) && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(FramesError::NoJpegs {
            path: path.to_path_buf(),
        });
    }
    Ok(files)
}

/// Reads every file [`list_frames`] names, in that order.
pub fn load_frames(path: &Path) -> Result<Vec<Bytes>, FramesError> {
    list_frames(path)?
        .into_iter()
        .map(|p| match std::fs::read(&p) {
            Ok(data) => Ok(Bytes::from(data)),
            Err(cause) => Err(FramesError::Read { path: p, cause }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jpeg_names() {
        assert!(is_jpeg_name(Path::new("a/frame.jpg")));
        assert!(is_jpeg_name(Path::new("FRAME.JPEG")));
        assert!(is_jpeg_name(Path::new("x.Jpg")));
        assert!(!is_jpeg_name(Path::new("frame.png")));
        assert!(!is_jpeg_name(Path::new("jpg")));
        assert!(!is_jpeg_name(Path::new("frame.jpg.txt")));
    }

    #[test]
    fn folder_is_filtered_and_sorted() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!(
            "streamhost-load-frames-test-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir)?;
        for name in ["b.jpg", "a.JPEG", "c.png", "notes.txt"] {
            std::fs::write(dir.join(name), name.as_bytes())?;
        }
        // A folder with a JPEG name is neither sent nor read.
        std::fs::create_dir_all(dir.join("sub.jpg"))?;
        let frames = load_frames(&dir);
        let single = load_frames(&dir.join("c.png"));
        let empty_dir = dir.join("sub.jpg");
        let empty = load_frames(&empty_dir);
        std::fs::remove_dir_all(&dir)?;

        let frames = frames?;
        let names: Vec<&[u8]> = frames.iter().map(AsRef::as_ref).collect();
        assert_eq!(names, vec![b"a.JPEG".as_slice(), b"b.jpg".as_slice()]);
        // An explicitly named file is sent whatever its extension.
        assert_eq!(single?.len(), 1);
        assert!(empty.is_err());
        Ok(())
    }

    #[test]
    fn missing_path_is_an_error() {
        let e = load_frames(Path::new("/nonexistent/stream-client/frames"));
        assert!(e.is_err());
        let message = e.map_or_else(|e| e.to_string(), |_| String::new());
        assert!(
            message.starts_with("reading /nonexistent/stream-client/frames: "),
            "{message}"
        );
    }
}
