//! What running the detector's pre-processing beside the decoder buys, in one
//! process on the same frames: each frame is decoded and turned into the `ocr`
//! detector's input both ways, alternately, and the ratio is printed.
//!
//! ```text
//! cargo run --release -p streamhost --example decode_overlap -- [CORPUS] [PASSES]
//! ```
//!
//! Sequential is what a frame did before (decode, then `to_tensor` over two
//! threads); fed is `decode_feeding` with `to_tensor_fed` on one consumer
//! thread (`host/src/nodes/row_feed.rs`), both with the configs of
//! `pipelines/ocr.toml`'s `decode` and `det_pre`. Run from the repository root;
//! defaults: `bench/corpus`, 5 passes.
//! The pipeline's own view of the same change is `make stages` (the decode
//! node's time then covers both).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use streamhost::nodes::jpeg_decode::{decode, decode_feeding, JpegDecodeConfig};
use streamhost::nodes::to_tensor::{to_tensor, to_tensor_fed, ToTensorConfig};
use streamhost::pipeline::manifest::Manifest;

/// Node `id`'s config in the shipped `ocr` manifest, so the measure follows it.
fn shipped_config<T: serde::de::DeserializeOwned>(
    manifest: &Manifest,
    id: &str,
) -> Result<T, Box<dyn std::error::Error>> {
    let node = manifest
        .nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| format!("pipelines/ocr.toml has no node '{id}'"))?;
    Ok(toml::Value::Table(node.config.clone()).try_into()?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let corpus = PathBuf::from(args.next().unwrap_or_else(|| "bench/corpus".into()));
    let passes: u32 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(5);
    let manifest = Manifest::parse(&std::fs::read_to_string("pipelines/ocr.toml")?)?;
    let decode_cfg: JpegDecodeConfig = shipped_config(&manifest, "decode")?;
    let det_pre: ToTensorConfig = shipped_config(&manifest, "det_pre")?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&corpus)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    paths.sort();
    let frames = paths
        .iter()
        .map(std::fs::read)
        .collect::<Result<Vec<_>, _>>()?;
    if frames.is_empty() {
        return Err(format!("no .jpg frames in {}", corpus.display()).into());
    }
    let (mut sequential, mut fed) = (Duration::ZERO, Duration::ZERO);
    for pass in 0..=passes {
        for frame in &frames {
            let start = Instant::now();
            let image = decode(frame, &decode_cfg, 1 << 30)?;
            let want = to_tensor(&image, &det_pre, 2)?;
            let took_sequential = start.elapsed();

            let start = Instant::now();
            let (image, got) = decode_feeding(frame, &decode_cfg, 1 << 30, 1, |_, mut feed| {
                to_tensor_fed(&mut feed, &det_pre)
            });
            let took_fed = start.elapsed();
            image?;
            if got.into_iter().next().flatten().flatten() != Some(Ok(want)) {
                return Err("the fed tensor differs from the sequential one".into());
            }
            if pass > 0 {
                sequential += took_sequential;
                fed += took_fed;
            }
        }
    }
    let n = f64::from(passes) * frames.len() as f64;
    let ms = |d: Duration| 1000.0 * d.as_secs_f64() / n;
    println!("decode + det_pre, sequential: {:.3} ms", ms(sequential));
    println!("decode + det_pre, fed:        {:.3} ms", ms(fed));
    println!(
        "fed / sequential: {:.2}x ({} frames x {passes} passes)",
        fed.as_secs_f64() / sequential.as_secs_f64(),
        frames.len()
    );
    Ok(())
}
