//! In-process per-node timing of a pipeline on a folder of JPEG frames: no
//! WebSocket, no server, so a change to one native node can be measured with
//! less noise than `make bench` has. Prints each node's mean time, the model
//! nodes' sum and the share of the frame spent outside the models.
//!
//! ```text
//! make stages        # = cargo run --release -p streamhost --example stage_bench -- ocr bench/corpus 5
//! cargo run --release -p streamhost --example stage_bench -- [PIPELINE] [CORPUS] [PASSES]
//! ```
//!
//! Defaults: `ocr`, `bench/corpus`, 5 passes (after one uncounted warm-up pass).
//! Run from the repository root after `make models plugins`; the server's
//! settings apply (`STREAMHOST_NODE_THREADS=1` versus the default shows what
//! splitting a node's work over threads buys). These are means over the same
//! frames in one process: compare two builds by alternating runs, not by one
//! number against a number from another day (this machine drifts by 20-40%).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use streamhost::nodes::NativeNode;
use streamhost::pipeline::exec::FrameAt;
use streamhost::pipeline::registry::NodeOp;
use streamhost::wasm::InstanceLimits;
use streamhost::{AppState, Config};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pipeline = args.next().unwrap_or_else(|| "ocr".into());
    let corpus = PathBuf::from(args.next().unwrap_or_else(|| "bench/corpus".into()));
    let passes: usize = args.next().map(|p| p.parse()).transpose()?.unwrap_or(5);

    let config = Config::from_env()?;
    let ceiling = InstanceLimits {
        memory_bytes: config.wasm_memory_bytes,
        call_timeout: config.wasm_call_timeout,
    };
    let state = AppState::build(config)?;
    let plan = state.registry.lookup(Some(&pipeline))?;
    let limits = plan.instance_limits(ceiling)?;
    let mut runner = state.runner(&plan, &limits, "stage-bench");
    let mut frames = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&corpus)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    paths.sort();
    for p in paths {
        frames.push(bytes::Bytes::from(std::fs::read(p)?));
    }
    if frames.is_empty() {
        return Err(format!("no .jpg frames in {}", corpus.display()).into());
    }

    let mut per_node = vec![Duration::ZERO; plan.nodes.len()];
    let mut whole = Duration::ZERO;
    let mut count = 0u32;
    let mut sent = 0u64;
    for pass in 0..=passes {
        for frame in &frames {
            let start = Instant::now();
            sent += 1;
            let at = FrameAt {
                index: sent,
                received: Duration::ZERO,
            };
            let outcome = runner.run(frame.clone(), at);
            let took = start.elapsed();
            if let Err(e) = outcome.result {
                return Err(format!("frame failed: {e}").into());
            }
            if pass == 0 {
                continue;
            }
            whole += took;
            count += 1;
            for (i, t) in outcome.node_times {
                per_node[i] += t;
            }
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(count);
    let mut model = 0.0;
    for (node, t) in plan.nodes.iter().zip(&per_node) {
        let is_model = matches!(node.op, NodeOp::Native(NativeNode::Onnx(_)));
        if is_model {
            model += ms(*t);
        }
        println!(
            "{:<12} {:8.3} ms{}",
            node.id,
            ms(*t),
            if is_model { "  (model)" } else { "" }
        );
    }
    let frame = ms(whole);
    println!("{:<12} {:8.3} ms", "frame", frame);
    println!(
        "outside the models: {:.3} ms, {:.2}% of the frame ({count} frames)",
        frame - model,
        100.0 * (frame - model) / frame
    );
    Ok(())
}
