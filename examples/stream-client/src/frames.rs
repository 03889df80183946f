//! Loading the JPEG frames to stream.
//!
//! A path is either one file (sent as is, whatever its name) or a folder, from which every
//! `*.jpg` / `*.jpeg` (any case) is taken in file-name order, so a folder of numbered frames
//! plays back in sequence. Everything is read into memory up front: the sender's timing must not
//! include disk reads, and [`Bytes`] makes handing the same frame out again on every cycle free.
//! The client does not check that the files are valid JPEGs; sending a bad one is a legitimate
//! way to exercise the server's `invalid_frame` error.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tokio_tungstenite::tungstenite::Bytes;

/// One frame to send.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
}

/// Whether a folder entry's name marks it as a JPEG.
pub fn is_jpeg_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jpg") || e.eq_ignore_ascii_case("jpeg"))
}

/// The files to send for `path`: itself if it is a file, else its JPEGs sorted by name.
pub fn list(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        let entry = entry.with_context(|| format!("listing {}", path.display()))?;
        let p = entry.path();
        if is_jpeg_name(&p) && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no *.jpg or *.jpeg files in {}", path.display());
    }
    Ok(files)
}

/// Reads every file [`list`] names.
pub fn load(path: &Path) -> Result<Vec<Frame>> {
    list(path)?
        .into_iter()
        .map(|p| {
            let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            Ok(Frame {
                data: Bytes::from(data),
            })
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
    fn folder_is_filtered_and_sorted() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("stream-client-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        for name in ["b.jpg", "a.JPEG", "c.png", "notes.txt"] {
            std::fs::write(dir.join(name), name.as_bytes())?;
        }
        std::fs::create_dir_all(dir.join("sub.jpg"))?;
        let frames = load(&dir);
        let single = load(&dir.join("c.png"));
        let empty_dir = dir.join("sub.jpg");
        let empty = load(&empty_dir);
        std::fs::remove_dir_all(&dir)?;

        let frames = frames?;
        let names: Vec<&[u8]> = frames.iter().map(|f| f.data.as_ref()).collect();
        assert_eq!(names, vec![b"a.JPEG".as_slice(), b"b.jpg".as_slice()]);
        // An explicitly named file is sent whatever its extension.
        assert_eq!(single?.len(), 1);
        assert!(empty.is_err());
        Ok(())
    }

    #[test]
    fn missing_path_is_an_error() {
        assert!(load(Path::new("/nonexistent/stream-client/frames")).is_err());
    }
}
