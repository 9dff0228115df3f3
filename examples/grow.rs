//! A graph that grows while it runs, in the style of adage's README: download a list of
//! files, process each file (how many there are is known only once the list is there), and
//! merge the results.
//!
//! It prints the graph as Mermaid before the run (four tasks: the list, the map, the merge
//! and a growth step that decides whether to archive) and after it (one more task per file,
//! each with the edge from the list and the edge into the map, an archive task for a long
//! list, and the task a rule adds once the merge is done), and the report.
//!
//! ```sh
//! cargo run --example grow
//! DAGJOIN_FILES=15 cargo run --example grow   # file 13 is broken: the merge is skipped
//! ```

use std::time::{Duration, Instant};

use dagjoin::runtime::{GraphBuilder, Growth, Rule, When};

/// "Downloads" the list of files: its length is known only when it is there.
async fn list_files(count: usize) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(50)).await;
    (0..count).map(|i| format!("data-{i:02}.csv")).collect()
}

/// "Processes" one file: the number of rows it has. File 13 is broken.
async fn process(file: String) -> anyhow::Result<usize> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    anyhow::ensure!(!file.contains("13"), "{file}: unexpected end of file");
    Ok(file.len() * 10)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let files = std::env::var("DAGJOIN_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);

    let mut g = GraphBuilder::<()>::new();
    let list = g
        .named("list")
        .add(move || async move { list_files(files).await }, ());
    let rows = g.named("process").try_map(process, list);
    let total = g.named("merge").add(
        |rows: Vec<usize>| async move { rows.iter().sum::<usize>() },
        rows,
    );
    // A branch that exists only for a long list: decided once the list is there.
    g.named("plan").grow(
        |grow: &mut Growth<'_, ()>, files: Vec<String>| {
            let count = files.len();
            if count > 10 {
                grow.named("archive")
                    .add(move || async move { format!("archived {count} files") }, ());
            }
        },
        list,
    );
    // Once the merge is done, publish it (adage's `Rule(predicate, body)`).
    g.rule(
        Rule::new(When::completed(total), move |grow: &mut Growth<'_, ()>| {
            let rows = *grow.value(&total)?;
            grow.named("publish")
                .add(move || async move { format!("published {rows} rows") }, ());
            Ok(())
        })
        .named("publish_when_merged"),
    );
    let graph = g.build()?;

    println!(
        "Before the run, {} tasks:\n{}",
        graph.len(),
        graph.to_mermaid()
    );
    let started = Instant::now();
    let report = graph.run(()).await;
    println!(
        "After the run ({:?}), {} tasks:\n{}",
        started.elapsed(),
        report.tasks().len(),
        report.to_mermaid()
    );
    println!("{report:#}");
    match report.get(&total) {
        Ok(total) => println!("{total} rows in all"),
        Err(error) => println!("no total: {error}"),
    }
    for rule in report.rules() {
        match rule.why_not() {
            None => println!("rule {} fired", rule.name()),
            Some(why) => println!("rule {} did not fire: {why}", rule.name()),
        }
    }
    for task in report.tasks().filter(|task| task.added_by().is_some()) {
        println!(
            "{} (added by {}): {}",
            task.name(),
            task.added_by().unwrap_or("?"),
            task.status()
        );
    }
    Ok(())
}
