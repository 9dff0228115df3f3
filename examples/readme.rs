//! The seed example: six tasks whose dependencies form two branches of different lengths.
//!
//! ```text
//! fast_task_a --> slow_task_b ----------------> end_task
//! slow_task_a --+                              /
//!               +--> fast_task_c -------------+
//! fast_task_b --+
//! ```
//!
//! Run with `cargo run --example readme`. Every task prints when it starts; the whole run
//! takes the critical path, max(0.1 + 0.5, max(1.0, 0.1) + 0.1) + 0.1 = 1.2 s, where awaiting
//! the tasks in sequence would take 1.9 s and one `join!` per layer 1.6 s.

use std::time::{Duration, Instant};

use dagjoin::dag;

const FAST: Duration = Duration::from_millis(100);

async fn task(name: &str, started: Instant, work: Duration) {
    println!("{:>6.3} s  start {name}", started.elapsed().as_secs_f64());
    tokio::time::sleep(work).await;
}

async fn fast_task_a(t0: Instant) -> u32 {
    task("fast_task_a", t0, FAST).await;
    1
}

async fn slow_task_b(t0: Instant, a: u32) -> u32 {
    task("slow_task_b", t0, Duration::from_millis(500)).await;
    a + 10
}

async fn slow_task_a(t0: Instant) -> u32 {
    task("slow_task_a", t0, Duration::from_secs(1)).await;
    2
}

async fn fast_task_b(t0: Instant) -> u32 {
    task("fast_task_b", t0, FAST).await;
    3
}

async fn fast_task_c(t0: Instant, sa: u32, fb: u32) -> u32 {
    task("fast_task_c", t0, FAST).await;
    sa * fb
}

async fn end_task(t0: Instant, b: u32, c: u32) -> u32 {
    task("end_task", t0, FAST).await;
    b + c
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let t0 = Instant::now();
    let end = dag! {
        a   = fast_task_a(t0);
        b   = slow_task_b(t0, a);
        sa  = slow_task_a(t0);
        fb  = fast_task_b(t0);
        c   = fast_task_c(t0, sa, fb);
        end = end_task(t0, b, c);
        end
    }
    .await;
    let took = t0.elapsed().as_secs_f64();
    println!("result {end}");
    println!(
        "took {took:.3} s; critical path 1.200 s; layer by layer 1.600 s; in sequence 1.900 s"
    );
    assert_eq!(end, 17);
    assert!(
        took < 1.5,
        "the run must follow the critical path, took {took:.3} s"
    );
}
