//! Pictures checked by the real tools: every DOT output through Graphviz's `dot -Tsvg`, every
//! Mermaid output (flowcharts and gantt charts) through mermaid's own parser, run by Node with
//! the packages pinned in `tests/tools/` (`npm ci --prefix tests/tools`). A missing tool fails
//! the test with what to install; it never passes without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dagjoin::runtime::{Diagram, NamedGraphBuilder, Report, RunOptions, Status};

/// Names that break naive output: keywords of both languages, quotes, spaces, markup,
/// the characters gantt charts read, and non-ASCII.
const NAMES: [&str; 9] = [
    "end",
    "graph",
    "subgraph",
    "say \"hi\"",
    "naïve café",
    "a:b#c;d",
    "<script>&amp;",
    "back\\slash",
    "flowchart",
];

/// A run of a graph over [`NAMES`] with every status: completed, failed (with an error that
/// has a quote and a line break), skipped, cancelled by the deadline, and not run.
async fn run_with_every_status() -> Report {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task(NAMES[0], |_| async { Ok(1) })
        .task(NAMES[1], |_| async {
            anyhow::bail!("disk \"full\"\nsecond line") as anyhow::Result<()>
        })
        .task(NAMES[2], |_| async { Ok(()) })
        .task(NAMES[3], |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .task(NAMES[4], |_| async { Ok(()) })
        .task(NAMES[5], |_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        })
        .task(NAMES[6], |_| async { Ok(()) })
        .task(NAMES[7], |_| async { Ok(()) })
        .task(NAMES[8], |_| async { Ok(()) })
        .depends(NAMES[2], [NAMES[1]])
        .depends(NAMES[4], [NAMES[3]])
        .depends(NAMES[6], [NAMES[0], NAMES[5]])
        .depends(NAMES[7], [NAMES[6], NAMES[6]])
        .depends(NAMES[8], [NAMES[7], NAMES[0]]);
    let graph = builder.build().unwrap();
    graph
        .run_with((), RunOptions::new().time_limit(Duration::from_millis(100)))
        .await
}

fn out_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Renders each DOT file to SVG with Graphviz; panics with how to get `dot` if it is missing.
fn check_dot(files: &[PathBuf]) {
    for file in files {
        let svg = file.with_extension("svg");
        let output = Command::new("dot")
            .arg("-Tsvg")
            .arg(file)
            .arg("-o")
            .arg(&svg)
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run Graphviz's `dot` ({error}): install it, for example with \
                     `apt-get install -y graphviz`"
                )
            });
        assert!(
            output.status.success(),
            "dot rejected {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let svg = std::fs::read_to_string(&svg).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
    }
}

/// Parses each Mermaid file with mermaid's parser (its renderer configured for at most
/// `max_edges` edges, 500 by default); panics with how to get it if missing.
fn check_mermaid(files: &[PathBuf]) {
    check_mermaid_with(files, 500);
}

fn check_mermaid_with(files: &[PathBuf], max_edges: usize) {
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tools");
    assert!(
        tools.join("node_modules/mermaid").is_dir(),
        "mermaid's parser is not installed: run `npm ci --prefix tests/tools` (needs Node.js \
         and npm) in the workspace root"
    );
    let output = Command::new("node")
        .arg(tools.join("check-mermaid.mjs"))
        .arg(format!("--max-edges={max_edges}"))
        .args(files)
        .output()
        .unwrap_or_else(|error| panic!("cannot run `node` ({error}): install Node.js"));
    assert!(
        output.status.success(),
        "mermaid rejected a picture:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(start_paused = true)]
async fn pictures_of_a_graph_and_of_a_run_are_valid_for_graphviz_and_mermaid() {
    let report = run_with_every_status().await;
    for status in Status::ALL {
        assert!(report.count(status) > 0, "no task is {status}");
    }
    let dir = out_dir("pictures");
    let mermaid = [
        write(&dir, "run.mmd", &report.to_mermaid()),
        write(&dir, "timeline.mmd", &report.to_gantt()),
    ];
    let dot = [write(&dir, "run.dot", &report.to_dot())];
    check_dot(&dot);
    check_mermaid(&mermaid);

    // Every task and edge is drawn, each task with its name and status.
    let flowchart = report.to_mermaid();
    for (v, name) in (1..).zip(NAMES) {
        let escaped = name
            .replace('&', "#amp;")
            .replace('"', "#quot;")
            .replace('<', "#lt;")
            .replace('>', "#gt;")
            .replace('#', "#35;")
            .replace("#35;amp;", "#amp;")
            .replace("#35;quot;", "#quot;")
            .replace("#35;lt;", "#lt;")
            .replace("#35;gt;", "#gt;");
        assert!(
            flowchart.contains(&format!("t{v}[\"{escaped}<br/>")),
            "{name} as {escaped} in\n{flowchart}"
        );
    }
    // Edges once per pair, though `backslash` takes `<script>` twice.
    assert_eq!(flowchart.matches(" --> ").count(), 7);
    assert!(flowchart.contains("t2[\"graph<br/>failed: disk #quot;full#quot;\"]:::failed"));
    assert!(flowchart.contains("t3[\"subgraph<br/>skipped after graph\"]:::skipped"));
    assert!(flowchart.contains(":::cancelled"));
    assert!(flowchart.contains(":::notrun"));
    for class in ["completed", "failed", "skipped", "cancelled", "notrun"] {
        assert!(flowchart.contains(&format!("classDef {class} ")), "{class}");
        assert!(
            flowchart.contains(&format!(":::{class}\n")),
            "{class} in the legend"
        );
    }
    let dot_text = report.to_dot();
    assert!(
        dot_text.contains("tooltip=\"disk \\\"full\\\"\\nsecond line\""),
        "{dot_text}"
    );
    assert!(dot_text.contains("style=\"filled,dashed\""));
    assert!(dot_text.contains("subgraph cluster_legend"));

    // The timeline has every task that ran, the critical path marked.
    let gantt = report.to_gantt();
    assert!(gantt.contains("a#58;b#c;d :done, t6, 0, 20"), "{gantt}");
    assert!(
        gantt.contains("say \"hi\" (cancelled) :active, t4, 0, 100"),
        "{gantt}"
    );
    assert!(
        !gantt.contains("subgraph"),
        "a skipped task did not run: {gantt}"
    );
}

#[test]
fn pictures_of_a_graph_before_it_runs_are_valid() {
    let mut builder = NamedGraphBuilder::new();
    for name in NAMES {
        builder.task(name, |_| async { Ok(()) });
    }
    builder.depends(NAMES[1], [NAMES[0]]);
    let graph = builder.build().unwrap();
    let dir = out_dir("graph");
    check_dot(&[write(&dir, "graph.dot", &graph.to_dot())]);
    check_mermaid(&[write(&dir, "graph.mmd", &graph.to_mermaid())]);
    assert_eq!(graph.to_mermaid().matches("[\"").count(), NAMES.len());

    // Everything completes: the critical path is marked in the timeline.
    let report = futures::executor::block_on(graph.run(()));
    let gantt = report.to_gantt();
    assert!(gantt.contains(":crit, t2, "), "{gantt}");
    assert!(gantt.contains(":done, t3, "), "{gantt}");
    check_mermaid(&[
        write(&dir, "timeline.mmd", &gantt),
        write(&dir, "run.mmd", &report.to_mermaid()),
    ]);
    check_dot(&[write(&dir, "run.dot", &report.to_dot())]);
}

#[test]
fn large_graphs_say_what_they_leave_out_or_take_the_limit_chosen() {
    // 400 tasks, 797 edges: more than Mermaid's default limit of 500.
    let mut builder = NamedGraphBuilder::new();
    for i in 0..400 {
        builder.task(format!("t{i}"), |_| async { Ok(()) });
        let deps: Vec<String> = (i.max(2) - 2..i).map(|d| format!("t{d}")).collect();
        builder.depends(format!("t{i}"), deps);
    }
    let graph = builder.build().unwrap();
    let default = graph.to_mermaid();
    assert_eq!(default.matches(" --> ").count(), 500);
    assert!(default.contains("left_out[\"297 of 797 edges left out\"]"));
    let whole = Diagram::new().max_edges(1000).mermaid(&graph);
    assert_eq!(whole.matches(" --> ").count(), 797);
    assert!(!whole.contains("left out"));
    let cut = Diagram::new().max_edges(100).mermaid(&graph);
    assert_eq!(cut.matches(" --> ").count(), 100);
    assert!(cut.contains("left_out[\"697 of 797 edges left out\"]"));
    let dir = out_dir("large");
    check_mermaid(&[
        write(&dir, "default.mmd", &default),
        write(&dir, "cut.mmd", &cut),
    ]);
    // The whole graph, for a renderer configured for it (and refused by one that is not).
    check_mermaid_with(&[write(&dir, "whole.mmd", &whole)], 1000);
    let dot = Diagram::new().max_edges(100).dot(&graph);
    assert!(dot.contains("697 of 797 edges left out"));
    assert_eq!(graph.to_dot().matches(" -> ").count(), 797);
    check_dot(&[
        write(&dir, "whole.dot", &graph.to_dot()),
        write(&dir, "cut.dot", &dot),
    ]);
}

/// A run caught mid-way has a task in each state: done (completed, failed, skipped), running,
/// retrying (which keeps its room while it waits), ready (no room under the run's limit of
/// two), waiting.
#[tokio::test(start_paused = true)]
async fn a_picture_of_a_run_as_it_goes_shows_every_state_and_is_valid() {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("done", |_| async { Ok(()) })
        .task("broken", |_| async {
            anyhow::bail!("no \"disk\"") as anyhow::Result<()>
        })
        .task("after broken", |_| async { Ok(()) })
        .task("flaky", |_| async {
            anyhow::bail!("try again") as anyhow::Result<()>
        })
        .task("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .task("queued", |_| async { Ok(()) })
        .task("end", |_| async { Ok(()) })
        .depends("after broken", ["broken"])
        .depends("queued", ["done"])
        .depends("end", ["slow"])
        .options(
            "flaky",
            dagjoin::runtime::TaskOptions::new()
                .retries(3)
                .backoff(Duration::from_mins(1)),
        );
    let graph = builder.build().unwrap();
    let mut run = graph.run_with((), RunOptions::new().max_in_flight(2));
    let status = run.status();
    let run = tokio::spawn(run);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flowchart = status.to_mermaid();
    let dot_text = status.to_dot();
    for (task, class, line) in [
        ("done", "completed", "completed"),
        ("broken", "failed", "failed: no #quot;disk#quot;"),
        ("after broken", "skipped", "skipped after broken"),
        ("flaky", "retrying", "retrying after attempt 1"),
        ("slow", "running", "running"),
        ("queued", "ready", "ready"),
        ("end", "waiting", "waiting"),
    ] {
        let node = format!("[\"{task}<br/>{line}\"]:::{class}");
        assert!(flowchart.contains(&node), "{node} not in\n{flowchart}");
        assert!(
            flowchart.contains(&format!("classDef {class} ")),
            "{flowchart}"
        );
    }
    assert!(
        dot_text.contains(r#"label="broken\nfailed: no \"disk\"", tooltip="no \"disk\"""#),
        "{dot_text}"
    );
    assert!(dot_text.contains("legend_running"), "{dot_text}");
    let dir = out_dir("live");
    check_dot(&[write(&dir, "live.dot", &dot_text)]);
    check_mermaid(&[write(&dir, "live.mmd", &flowchart)]);
    run.abort();
}

/// A map's items, added as the run goes, are in the pictures of the run (live and after),
/// with their edges.
#[tokio::test(start_paused = true)]
async fn pictures_of_a_run_that_grew_show_the_added_tasks() {
    let mut g = dagjoin::runtime::GraphBuilder::<()>::new();
    let items = g.named("list").add(|| async { vec![1_u64, 2] }, ());
    let waited = g.named("wait").map(
        |x: u64| async move {
            tokio::time::sleep(Duration::from_secs(x)).await;
            x
        },
        items,
    );
    g.named("end")
        .add(|v: Vec<u64>| async move { v.len() }, waited);
    let mut run = g.build().unwrap().run(());
    let status = run.status();
    let run = tokio::spawn(run);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let live = status.to_mermaid();
    for line in [
        r#"t4["wait[0]<br/>completed"]:::completed"#,
        r#"t5["wait[1]<br/>running"]:::running"#,
        "t1 --> t4",
        "t4 --> t2",
    ] {
        assert!(live.contains(line), "{line} not in\n{live}");
    }
    let report = run.await.unwrap();
    let after = report.to_mermaid();
    assert!(
        after.contains(r#"t5["wait[1]<br/>completed"]:::completed"#),
        "{after}"
    );
    assert!(after.contains("t5 --> t2"), "{after}");
    let dir = out_dir("grown");
    check_mermaid(&[
        write(&dir, "live.mmd", &live),
        write(&dir, "after.mmd", &after),
        write(&dir, "gantt.mmd", &report.to_gantt()),
    ]);
    check_dot(&[
        write(&dir, "live.dot", &status.to_dot()),
        write(&dir, "after.dot", &report.to_dot()),
    ]);
}
