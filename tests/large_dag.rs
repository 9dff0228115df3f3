//! A generated `dag!` of 320 nodes on a random layered graph (not series-parallel): it
//! compiles, every node runs once with the right inputs, and every node starts at its
//! earliest time.

#![allow(
    clippy::large_futures,
    reason = "a graph of 320 nodes, awaited in place"
)]

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[path = "generated/dag320.rs"]
mod dag320;

use dag320::{DEPS, DURATIONS, NODES};

#[tokio::test(start_paused = true)]
async fn generated_graph_of_320_nodes_runs_optimally() {
    let t0 = Instant::now();
    let starts = Mutex::new(vec![None::<u64>; NODES]);
    let values = dag320::run(|i, inputs: &[u64]| {
        let input: u64 = inputs
            .iter()
            .fold(0, |acc, x| acc.wrapping_mul(31).wrapping_add(*x));
        let starts = &starts;
        async move {
            let at = u64::try_from(t0.elapsed().as_millis()).unwrap();
            let previous = starts.lock().unwrap()[i].replace(at);
            assert!(previous.is_none(), "node {i} ran twice");
            tokio::time::sleep(Duration::from_millis(DURATIONS[i])).await;
            input.wrapping_add(i as u64)
        }
    })
    .await;

    // The expected values and earliest start times, computed in plain Rust.
    let mut expected = vec![0u64; NODES];
    let mut earliest = vec![0u64; NODES];
    for v in 0..NODES {
        let inputs: Vec<u64> = DEPS[v].iter().map(|&u| expected[u]).collect();
        expected[v] = inputs
            .iter()
            .fold(0u64, |acc, x| acc.wrapping_mul(31).wrapping_add(*x))
            .wrapping_add(v as u64);
        earliest[v] = DEPS[v]
            .iter()
            .map(|&u| earliest[u] + DURATIONS[u])
            .max()
            .unwrap_or(0);
    }
    assert_eq!(values, expected);
    let starts: Vec<u64> = starts
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|s| s.expect("every node ran"))
        .collect();
    assert_eq!(starts, earliest);
    let makespan = (0..NODES)
        .map(|v| earliest[v] + DURATIONS[v])
        .max()
        .unwrap();
    assert_eq!(u64::try_from(t0.elapsed().as_millis()).unwrap(), makespan);
}
