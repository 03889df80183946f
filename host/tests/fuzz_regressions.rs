//! Replays the fuzz corpus and every crash the fuzzers ever found through the
//! fuzz targets' own bodies (`streamhost::fuzz_entry`), on stable, as part of
//! the ordinary test suite.
//!
//! `fuzz/corpus/<target>/` holds the committed seeds; `fuzz/regressions/<target>/`
//! holds the inputs that once crashed a target (scripts/fuzz.sh copies them
//! there). Each file must run without a panic and without breaking the
//! target's invariants. The `message_handler` target needs the fuzz crate's
//! harness; scripts/fuzz.sh replays its regressions with libFuzzer instead.
//!
//! The seeds that need the library to make (JPEGs) are written by
//! `cargo test -p streamhost --test fuzz_regressions -- --ignored write_seed_corpus`.

use std::path::{Path, PathBuf};

use streamhost::fuzz_entry::{self, Check};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Every file under `fuzz/{corpus,regressions}/<target>/`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        files.extend(
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && !p.ends_with(".gitkeep")),
        );
    }
    files.sort();
    files
}

fn replay(target: &str, body: fn(&[u8]) -> Check) {
    let files = inputs(target);
    assert!(
        !files.is_empty(),
        "no seeds in fuzz/corpus/{target}; run the ignored write_seed_corpus test"
    );
    let mut failures = Vec::new();
    for file in &files {
        let data = match std::fs::read(file) {
            Ok(d) => d,
            Err(e) => {
                failures.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        match std::panic::catch_unwind(|| body(&data)) {
            Ok(Ok(())) => {}
            Ok(Err(broken)) => failures.push(format!("{}: {broken}", file.display())),
            Err(_) => failures.push(format!("{}: panicked", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn frame_decode_corpus_and_regressions() {
    replay("frame_decode", fuzz_entry::frame_decode);
}

#[test]
fn manifest_corpus_and_regressions() {
    replay("manifest", fuzz_entry::manifest);
}

#[test]
fn the_shipped_pipelines_pass_the_manifest_target() {
    // scripts/fuzz.sh seeds the manifest target with pipelines/ as well.
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines");
    let entries = std::fs::read_dir(&pipelines);
    assert!(entries.is_ok(), "cannot read {}", pipelines.display());
    let mut seen = 0;
    for p in entries
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
    {
        let text = std::fs::read(&p).unwrap_or_default();
        assert_eq!(fuzz_entry::manifest(&text), Ok(()), "{}", p.display());
        seen += 1;
    }
    assert!(seen > 0, "no manifests in {}", pipelines.display());
}

#[test]
fn valid_frames_decode_and_broken_ones_are_invalid_frame() {
    let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 251) as u8).collect();
    let jpeg = streamhost::nodes::jpeg_decode::encode_rgb(16, 16, &rgb, 80.0).unwrap_or_default();
    assert!(jpeg.len() > 100);
    for n in 0..jpeg.len() {
        assert_eq!(fuzz_entry::frame_decode(&jpeg[..n]), Ok(()), "prefix {n}");
    }
    // The whole frame decodes (the loop above stops one byte short of it) ...
    let config = streamhost::nodes::jpeg_decode::JpegDecodeConfig::default();
    let image = streamhost::nodes::jpeg_decode::decode(&jpeg, &config, fuzz_entry::MAX_PIXELS);
    assert!(
        image
            .as_ref()
            .is_ok_and(|i| (i.width, i.height) == (16, 16)),
        "{:?}",
        image.err()
    );
    // ... and every cut of its coded data, EOI-terminated so that it passes validation
    // and reaches the decoder, is refused by the strict decoder (libjpeg alone only
    // warns and pads with grey).
    let sos = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .unwrap_or(jpeg.len());
    assert!(sos + 20 < jpeg.len() - 2, "no entropy data found");
    for n in sos + 20..jpeg.len() - 2 {
        let mut cut = jpeg[..n].to_vec();
        cut.extend_from_slice(&[0xFF, 0xD9]);
        let decoded = streamhost::nodes::jpeg_decode::decode(&cut, &config, fuzz_entry::MAX_PIXELS);
        // mozjpeg writes progressive JPEGs: a cut on a marker (between two scans) leaves a
        // valid, shorter JPEG, which decodes; any other cut loses coded data.
        let on_marker = jpeg[n] == 0xFF || jpeg[n - 1] == 0xFF;
        assert!(
            on_marker || matches!(decoded, Err(streamhost::frame::FrameError::Undecodable(_))),
            "cut at {n}: {:?}",
            decoded.map(|i| (i.width, i.height))
        );
    }
    let mut flipped = jpeg.clone();
    for i in 2..flipped.len() - 2 {
        flipped[i] ^= 0x55;
        assert_eq!(fuzz_entry::frame_decode(&flipped), Ok(()), "byte {i}");
        flipped[i] ^= 0x55;
    }
}

/// Writes the JPEG seeds of `fuzz/corpus/frame_decode`. Run by hand when they
/// need remaking. `encode_rgb` writes baseline frames (`baseline_*`), which
/// libjpeg entropy-decodes row by row as the decoder feeds them out; the seeds
/// without the prefix are progressive, from when it wrote mozjpeg's default,
/// and stay for the other code path (decoded whole when started).
#[test]
#[ignore = "writes the seed corpus; run by hand"]
fn write_seed_corpus() {
    let frames = fuzz_dir().join("corpus/frame_decode");
    assert!(
        std::fs::create_dir_all(&frames).is_ok(),
        "{}",
        frames.display()
    );
    let gradient = |w: usize, h: usize| -> Vec<u8> {
        (0..w * h)
            .flat_map(|i| [(i % w * 255 / w) as u8, (i / w * 255 / h) as u8, 128])
            .collect()
    };
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for (w, h, q) in [(16, 16, 80.0), (33, 17, 50.0), (8, 64, 95.0)] {
        let jpeg = streamhost::nodes::jpeg_decode::encode_rgb(w, h, &gradient(w, h), q)
            .unwrap_or_default();
        assert!(!jpeg.is_empty());
        seeds.push((format!("baseline_rgb_{w}x{h}_q{q}.jpg"), jpeg.clone()));
        if w == 16 {
            // Truncated but still EOI-terminated, so it reaches the decoder.
            let mut cut = jpeg[..jpeg.len() / 2].to_vec();
            cut.extend_from_slice(&[0xFF, 0xD9]);
            seeds.push(("baseline_truncated_16x16.jpg".into(), cut));
            // A header declaring 65000x65000 (a decompression bomb), in its
            // SOF0 (baseline) or SOF2 (progressive) marker.
            let sof = jpeg
                .windows(2)
                .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2));
            if let Some(sof) = sof {
                let mut bomb = jpeg.clone();
                bomb[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
                seeds.push(("baseline_bomb_65000x65000.jpg".into(), bomb));
            }
        }
    }
    seeds.push(("markers_only.jpg".into(), vec![0xFF, 0xD8, 0xFF, 0xD9]));
    for (name, data) in seeds {
        assert!(std::fs::write(frames.join(&name), data).is_ok(), "{name}");
    }
}
