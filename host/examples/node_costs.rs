//! What a Wasm node costs by the language it is written in, in one process:
//! load (compile, type-check, `describe`), instantiation per session (new
//! store, instantiate, `init`), per-call overhead (`process` on a small
//! image) and private memory per live instance, for the same-work node in
//! Rust, Python and JavaScript (`streamhost new-node`'s three templates, built by
//! `bench/node_costs/build.sh`).
//!
//! ```text
//! make node-costs     # builds the nodes, runs this, then the server-RSS part (bench/node_costs/run.sh)
//! cargo run --release -p streamhost --example node_costs -- [DIR] [INSTANCES] [CALLS]
//! ```
//!
//! Defaults: `target/node-costs`, 100 live instances, 2000 calls. Times are
//! medians; the Rust node is measured in the same process and every other
//! language is also given as a ratio against it, since this machine drifts
//! by 20-40% between runs. Memory is read from `/proc/self/smaps` before and
//! after holding INSTANCES instances that have each processed one 64x48
//! frame, split by where it lives: copy-on-write pages of the memory images
//! (`memfd:wasm-memory-image`), other anonymous memory (guest stacks and
//! heaps grown past the image, the host's own allocations for each store),
//! and the rest. The server's settings apply (`STREAMHOST_WASM_*`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamhost::value::{Image, PixelFormat, Value};
use streamhost::wasm::instance::LogContext;
use streamhost::wasm::{
    FrameContext, InstanceAllocation, NodeComponent, NodeInstance, SandboxLimits, WasmEngine,
};
use streamhost::Config;

const NODES: [(&str, &str); 3] = [
    ("Rust", "bench_rust.wasm"),
    ("Python", "bench_python.wasm"),
    ("JavaScript", "bench_js.wasm"),
];

/// Where resident memory lives, summed over the mappings of this process (KiB).
#[derive(Debug, Default, Clone, Copy)]
struct Mem {
    rss: u64,
    pss: u64,
    private_dirty: u64,
    image_private: u64,
    image_shared: u64,
    anon_private: u64,
}

fn smaps() -> Mem {
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut mem = Mem::default();
    let mut kind = 0u8; // 0 other, 1 memory image, 2 anonymous or heap
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let Some(first) = parts.next() else { continue };
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            let name = line.split_whitespace().nth(5).unwrap_or("");
            kind = if name.contains("wasm-memory-image") {
                1
            } else if name.is_empty() || name == "[heap]" {
                2
            } else {
                0
            };
            continue;
        }
        let kib: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match first {
            "Rss:" => mem.rss += kib,
            "Pss:" => mem.pss += kib,
            "Private_Dirty:" => {
                mem.private_dirty += kib;
                match kind {
                    1 => mem.image_private += kib,
                    2 => mem.anon_private += kib,
                    _ => {}
                }
            }
            "Shared_Clean:" | "Shared_Dirty:" if kind == 1 => mem.image_shared += kib,
            _ => {}
        }
    }
    mem
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

struct Row {
    name: &'static str,
    size: u64,
    load: Duration,
    start: Duration,
    restart: Duration,
    call: Duration,
    per_instance: Mem,
    per_instance_vga: Mem,
}

fn log(n: usize) -> LogContext {
    LogContext {
        session_id: format!("bench-{n}"),
        pipeline_id: "node_costs".into(),
        node_id: "node".into(),
    }
}

fn measure(
    engine: &WasmEngine,
    name: &'static str,
    path: &Path,
    instances: usize,
    calls: usize,
) -> Result<Row, Box<dyn std::error::Error>> {
    let size = std::fs::metadata(path)?.len();
    let limits = engine.limits().instance_limits();
    let t = Instant::now();
    let component = NodeComponent::load(engine, path)?;
    let load = t.elapsed();
    let image = Value::Image(Arc::new(Image {
        width: 64,
        height: 48,
        format: PixelFormat::Rgb8,
        data: vec![128; 64 * 48 * 3],
    }));
    let inputs = vec![("decode".to_string(), image)];
    let vga = vec![(
        "decode".to_string(),
        Value::Image(Arc::new(Image {
            width: 640,
            height: 480,
            format: PixelFormat::Rgb8,
            data: vec![128; 640 * 480 * 3],
        })),
    )];

    // Per-call overhead: one instance, many calls after a warm-up.
    let mut one = NodeInstance::start(engine, &component, "{}", limits, log(0))?;
    let reply = one.process(frame(1), &inputs)?;
    if let Value::Json(json) = &reply {
        eprintln!("{name}: {}", serde_json::to_string(json)?);
    }
    for i in 0..50 {
        one.process(frame(i), &inputs)?;
    }
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        one.process(frame(i as u64), &inputs)?;
        times.push(t.elapsed());
    }
    let call = median(times);
    drop(one);

    // Instantiation per session, and what each live instance keeps resident
    // after one small frame; then the same after one 640x480 frame (what
    // `make load` sends), whose copy stays in each guest's linear memory.
    let (starts, per_instance) = hold(engine, &component, &inputs, instances)?;
    let (_, per_instance_vga) = hold(engine, &component, &vga, instances)?;
    // Churn: a session ends and the next starts (under the pooling allocator
    // the next reuses the warm slot the last one freed).
    let mut churn = Vec::with_capacity(instances);
    for i in 0..instances {
        let t = Instant::now();
        let mut instance = NodeInstance::start(engine, &component, "{}", limits, log(i))?;
        churn.push(t.elapsed());
        instance.process(frame(1), &inputs)?;
    }
    Ok(Row {
        name,
        size,
        load,
        start: median(starts),
        restart: median(churn),
        call,
        per_instance,
        per_instance_vga,
    })
}

fn frame(i: u64) -> FrameContext<'static> {
    FrameContext {
        frame_index: i,
        received: Duration::from_millis(i),
        pipeline_id: "node_costs",
    }
}

/// Starts `n` instances, each processing one frame of `inputs`, and returns
/// their start times and what each keeps resident (KiB, averaged).
fn hold(
    engine: &WasmEngine,
    component: &NodeComponent,
    inputs: &[(String, Value)],
    n: usize,
) -> Result<(Vec<Duration>, Mem), Box<dyn std::error::Error>> {
    let limits = engine.limits().instance_limits();
    let before = smaps();
    let mut live = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let mut instance = NodeInstance::start(engine, component, "{}", limits, log(i))?;
        starts.push(t.elapsed());
        instance.process(frame(1), inputs)?;
        live.push(instance);
    }
    let after = smaps();
    drop(live);
    let per = |a: u64, b: u64| a.saturating_sub(b) / n as u64;
    let mem = Mem {
        rss: per(after.rss, before.rss),
        pss: per(after.pss, before.pss),
        private_dirty: per(after.private_dirty, before.private_dirty),
        image_private: per(after.image_private, before.image_private),
        image_shared: per(after.image_shared, before.image_shared),
        anon_private: per(after.anon_private, before.anon_private),
    };
    Ok((starts, mem))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/node-costs".into()));
    let instances: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let calls: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let config = Config::from_env()?;
    let allocation = InstanceAllocation::from_pool_instances(config.wasm_pool_instances);
    let engine = WasmEngine::with_allocation(SandboxLimits::from_config(&config), allocation)?;

    let mut rows = Vec::new();
    for (name, file) in NODES {
        rows.push(measure(&engine, name, &dir.join(file), instances, calls)?);
    }
    let base = &rows[0];
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-12);
    println!(
        "| node | component | load ms | instantiate + init, µs/session | the same as sessions churn, µs | process (64x48), µs/call | private dirty KiB/instance (image CoW / anonymous) | RSS KiB/instance | PSS KiB/instance | image pages shared KiB/instance | private dirty KiB/instance after a 640x480 frame |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let m = r.per_instance;
        println!(
            "| {} | {} | {:.1} ({:.0}x) | {:.0} ({:.0}x) | {:.0} | {:.1} ({:.1}x) | {} ({} / {}) | {} | {} | {} | {} |",
            r.name,
            if r.size < 1_000_000 {
                format!("{:.0} KB", r.size as f64 / 1e3)
            } else {
                format!("{:.1} MB", r.size as f64 / 1e6)
            },
            r.load.as_secs_f64() * 1e3,
            ratio(r.load, base.load),
            r.start.as_secs_f64() * 1e6,
            ratio(r.start, base.start),
            r.restart.as_secs_f64() * 1e6,
            r.call.as_secs_f64() * 1e6,
            ratio(r.call, base.call),
            m.private_dirty,
            m.image_private,
            m.anon_private,
            m.rss,
            m.pss,
            m.image_shared,
            r.per_instance_vga.private_dirty,
        );
    }
    let mut settings = BTreeMap::new();
    settings.insert("allocation", format!("{allocation:?}"));
    settings.insert("instances", instances.to_string());
    settings.insert("calls", calls.to_string());
    println!(
        "\n{settings:?}; process VmRSS at the end: {} KiB",
        smaps().rss
    );
    Ok(())
}
