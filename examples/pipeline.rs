//! A build-like pipeline mixing the three kinds of work a graph usually has:
//!
//! - IO-bound async nodes (a config fetch and an upload, simulated with timers), polled on
//!   the graph's own task;
//! - CPU-bound `#[blocking]` nodes that write files into a temporary directory and hash
//!   them, on tokio's blocking pool, in parallel;
//! - fallible nodes (`?`): the first error ends the run and names the node that failed;
//! - a flaky remote call with a timeout and retries.
//!
//! Run with `cargo run --example pipeline`. It prints a timeline, then runs the pipeline
//! again with the remote server down: each attempt times out, and the last timeout ends the
//! run.

use std::hash::Hasher;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use dagjoin::dag;

static T0: OnceLock<Instant> = OnceLock::new();

/// Prints one line of the timeline.
fn log(what: &str) {
    let t = T0.get_or_init(Instant::now).elapsed().as_secs_f64();
    let thread = std::thread::current();
    println!(
        "{t:>7.3} s  {what:<34} [{}]",
        thread.name().unwrap_or("worker")
    );
}

/// A fresh directory under the system's temporary directory.
fn workspace() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("dagjoin-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    log("created workspace");
    Ok(dir)
}

#[derive(Clone)]
struct Config {
    megabytes: usize,
}

/// IO-like: a configuration service.
async fn fetch_config() -> Config {
    log("fetch config: start");
    tokio::time::sleep(Duration::from_millis(150)).await;
    log("fetch config: done");
    Config { megabytes: 8 }
}

/// CPU-bound: writes `megabytes` of generated data to `path`, reads it back and hashes it.
fn write_and_hash(path: &Path, megabytes: usize, seed: u64) -> std::io::Result<(String, u64)> {
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    log(&format!("hash {name}: start"));
    let mut state = seed;
    let data: Vec<u8> = (0..megabytes << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    std::fs::File::create(path)?.write_all(&data)?;
    let mut back = Vec::with_capacity(data.len());
    std::fs::File::open(path)?.read_to_end(&mut back)?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    hasher.write(&back);
    log(&format!("hash {name}: done"));
    Ok((name, hasher.finish()))
}

/// IO-like: the digest a remote store expects. The server is busy at the first call; when
/// `down`, it never answers.
async fn fetch_manifest(calls: &AtomicU32, down: bool) -> Result<u64, std::io::Error> {
    let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
    log(&format!("fetch manifest: attempt {call}"));
    if down {
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    if call == 1 {
        log("fetch manifest: server busy");
        return Err(std::io::Error::other("manifest server busy"));
    }
    log("fetch manifest: done");
    Ok(42)
}

fn combine(parts: &[(String, u64)], manifest: u64) -> u64 {
    parts
        .iter()
        .fold(manifest, |acc, (_, h)| acc.rotate_left(5) ^ h)
}

/// IO-like: uploads the combined digest.
async fn upload(config: &Config, digest: u64) -> String {
    log("upload: start");
    tokio::time::sleep(Duration::from_millis(100)).await;
    log("upload: done");
    format!("{digest:016x} ({} MB config)", config.megabytes)
}

async fn pipeline(down: bool) -> anyhow::Result<String> {
    let calls = AtomicU32::new(0);
    dag! {
        dir      = async { workspace() }?;
        config   = fetch_config();
        #[blocking]
        a        = write_and_hash(&dir.join("a.bin"), 4, 1)?;
        #[blocking]
        b        = write_and_hash(&dir.join("b.bin"), config.megabytes, 2)?;
        #[blocking]
        c        = write_and_hash(&dir.join("c.bin"), 2, 3)?;
        #[timeout(500ms)]
        #[retry(2, backoff = 50ms)]
        manifest = fetch_manifest(&calls, down)?;
        digest   = async { combine(&[a, b, c], manifest) };
        receipt  = upload(&config, digest);
        #[blocking]
        done     = remove_workspace(&dir, receipt)?;
        done
    }
    .await
}

/// Removes the workspace once the upload is done (taking its receipt orders it after it).
fn remove_workspace(dir: &Path, receipt: String) -> std::io::Result<String> {
    std::fs::remove_dir_all(dir)?;
    log("removed workspace");
    Ok(receipt)
}

#[tokio::main]
async fn main() {
    T0.get_or_init(Instant::now);
    println!("run 1:");
    match pipeline(false).await {
        Ok(receipt) => println!("uploaded {receipt}"),
        Err(err) => println!("failed: {err:#}"),
    }
    println!("\nrun 2, with the manifest server down:");
    match pipeline(true).await {
        Ok(receipt) => println!("uploaded {receipt}"),
        Err(err) => println!("failed: {err:#}"),
    }
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("dagjoin-pipeline-{}", std::process::id())),
    );
}
