//! A run of a few hundred tasks you can watch: a build of 100 packages, each fetched (some
//! downloads fail once and are retried, one mirror is down for good), unpacked and compiled on
//! the blocking pool, then tested and bundled in groups, then released.
//!
//! It shows a progress bar while it runs (on a terminal), prints the report, and writes the
//! graph, the coloured run and the timeline as Mermaid (`.mmd`) and Graphviz (`.dot`) files,
//! and as `.svg` too when Graphviz's `dot` is installed, into the directory it names.
//!
//! ```sh
//! cargo run --example progress --features progress
//! DAGJOIN_PACKAGES=8 cargo run --example progress --features progress   # a small one
//! ```
//!
//! `DAGJOIN_PICTURES=dir` chooses the directory.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dagjoin::runtime::{Graph, NamedGraphBuilder, Progress, RunOptions, TaskOptions};

const GROUPS: usize = 4;

/// A deterministic "random" number in `0..n` for `seed` (no dependency needed).
fn pick(seed: usize, n: u64) -> u64 {
    let mut z = (seed as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (z ^ (z >> 31)) % n
}

fn graph(packages: usize) -> Graph<()> {
    let mut g = NamedGraphBuilder::new();
    for p in 0..packages {
        let fetch = format!("fetch-{p:02}");
        let unpack = format!("unpack-{p:02}");
        let compile = format!("compile-{p:02}");
        // Every seventh download fails its first attempt; package 5's mirror is down.
        let attempts = Arc::new(AtomicU32::new(0));
        g.task(fetch.clone(), move |_| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(Duration::from_millis(40 + pick(p, 120))).await;
                anyhow::ensure!(p != 5, "mirror.example.org: connection refused");
                anyhow::ensure!(p % 7 != 3 || attempt > 1, "connection reset by peer");
                Ok(p as u64)
            }
        })
        .options(
            fetch.clone(),
            TaskOptions::new()
                .retries(2)
                .backoff(Duration::from_millis(50))
                .timeout(Duration::from_secs(2)),
        );
        g.task(unpack.clone(), |inputs| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(inputs.at::<u64>(0)? * 10)
        })
        .depends(unpack.clone(), [fetch]);
        g.blocking_task(compile.clone(), move |inputs| {
            // CPU work, off the run's task.
            let seed: u64 = inputs.at(0)?;
            let rounds = 200_000 + pick(p, 400_000);
            let mut x = seed;
            for i in 0..rounds {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
            }
            Ok(x)
        })
        .depends(compile, [unpack]);
    }
    for group in 0..GROUPS {
        let test = format!("test-group-{group}");
        let bundle = format!("bundle-{group}");
        let members: Vec<String> = (0..packages)
            .filter(|p| p % GROUPS == group)
            .map(|p| format!("compile-{p:02}"))
            .collect();
        g.task(test.clone(), |inputs| async move {
            tokio::time::sleep(Duration::from_millis(80)).await;
            Ok(inputs.len())
        })
        .depends(test.clone(), members.clone());
        g.task(bundle.clone(), |inputs| async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Ok(inputs.len())
        })
        .depends(bundle.clone(), members)
        .depends(bundle, [test]);
    }
    g.task("release", |inputs| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(inputs.len())
    })
    .depends(
        "release",
        (0..GROUPS).map(|group| format!("bundle-{group}")),
    );
    g.build().expect("the pipeline is a valid graph")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let packages = std::env::var("DAGJOIN_PACKAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let graph = graph(packages);
    let dir: PathBuf = std::env::var_os("DAGJOIN_PICTURES").map_or_else(
        || std::env::temp_dir().join("dagjoin-progress"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("graph.mmd"), graph.to_mermaid())?;
    std::fs::write(dir.join("graph.dot"), graph.to_dot())?;

    println!("{} tasks; watch them run:", graph.len());
    let progress = Progress::new();
    let report = graph
        .run_with((), RunOptions::new().max_blocking(2).progress(&progress))
        .await;
    println!("{report}");

    std::fs::write(dir.join("run.mmd"), report.to_mermaid())?;
    std::fs::write(dir.join("run.dot"), report.to_dot())?;
    std::fs::write(dir.join("timeline.mmd"), report.to_gantt())?;
    let mut written = vec![
        "graph.mmd",
        "graph.dot",
        "run.mmd",
        "run.dot",
        "timeline.mmd",
    ];
    for name in ["graph", "run"] {
        let svg = dir.join(format!("{name}.svg"));
        let drawn = Command::new("dot")
            .arg("-Tsvg")
            .arg(dir.join(format!("{name}.dot")))
            .arg("-o")
            .arg(&svg)
            .status();
        match drawn {
            Ok(status) if status.success() => written.push(if name == "graph" {
                "graph.svg"
            } else {
                "run.svg"
            }),
            _ => println!("(no {name}.svg: Graphviz's `dot` is not installed)"),
        }
    }
    println!("pictures in {}: {}", dir.display(), written.join(", "));
    // The run is expected to have failures: the example shows them, it does not fail.
    if let Err(error) = report.check() {
        println!("as expected: {error:#}");
    }
    Ok(())
}
