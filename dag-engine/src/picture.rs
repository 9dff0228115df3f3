//! Pictures of a graph and of a run: Mermaid flowcharts and Graphviz DOT, every task and edge,
//! during or after a run every task styled by its state (a colour and a line style, so it
//! also reads in black and white) with a legend, and a Mermaid gantt chart of the run's
//! timeline with its critical path marked.
//!
//! Task names never become identifiers (task `v` is `t{v}`), and labels are escaped, so a
//! task called `end`, `graph` or `say "hi"` draws like any other. Nothing is left out
//! silently: Mermaid's renderer refuses more than 500 edges unless it is configured otherwise
//! (a diagram cannot raise the limit itself), so a Mermaid flowchart draws at most 500 edges
//! and says in the picture how many it left out; [`Diagram::max_edges`] chooses another
//! limit, for a renderer set up for it. DOT has no limit.

use core::fmt::Write;

use crate::graph::{index, GraphInner};
use crate::id::{Status, TaskState};
use crate::live::{Live, RunStatus, Why};
use crate::report::Report;

/// How a picture is drawn: for now, how many edges at most (Mermaid: 500 unless chosen; DOT:
/// all unless chosen).
///
/// ```
/// use dagjoin::runtime::{Diagram, NamedGraphBuilder};
///
/// let mut builder = NamedGraphBuilder::new();
/// builder.task("a", |_| async { Ok(()) }).task("b", |_| async { Ok(()) }).depends("b", ["a"]);
/// let graph = builder.build().unwrap();
/// let full = graph.to_mermaid();
/// assert!(full.contains("t1 --> t2"));
/// let cut = Diagram::new().max_edges(0).mermaid(&graph);
/// assert!(cut.contains("1 of 1 edges left out"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Diagram {
    max_edges: Option<usize>,
}

/// Mermaid's default limit on the edges of a flowchart.
const MERMAID_MAX_EDGES: usize = 500;

impl Diagram {
    /// The default limits.
    pub const fn new() -> Self {
        Self { max_edges: None }
    }

    /// Draws at most `limit` edges (the first ones, in the order of the graph), and says in
    /// the picture how many it left out.
    #[must_use]
    pub const fn max_edges(mut self, limit: usize) -> Self {
        self.max_edges = Some(limit);
        self
    }

    /// A Mermaid flowchart of `graph`.
    pub fn mermaid<P>(self, graph: &crate::Graph<P>) -> String {
        mermaid(&*graph.inner, None, self)
    }

    /// A Graphviz DOT digraph of `graph`.
    pub fn dot<P>(self, graph: &crate::Graph<P>) -> String {
        dot(&*graph.inner, None, self)
    }

    /// A Mermaid flowchart of `report`'s run, tasks styled by status.
    pub fn mermaid_report(self, report: &Report) -> String {
        mermaid(&**report.graph(), Some(&report_marks(report)), self)
    }

    /// A Graphviz DOT digraph of `report`'s run, tasks styled by status.
    pub fn dot_report(self, report: &Report) -> String {
        dot(&**report.graph(), Some(&report_marks(report)), self)
    }

    /// A Mermaid flowchart of a run as it is now, tasks styled by state.
    pub fn mermaid_status(self, status: &RunStatus) -> String {
        let live = status.lock();
        mermaid(&*live, Some(&live_marks(&live)), self)
    }

    /// A Graphviz DOT digraph of a run as it is now, tasks styled by state.
    pub fn dot_status(self, status: &RunStatus) -> String {
        let live = status.lock();
        dot(&*live, Some(&live_marks(&live)), self)
    }
}

impl<P> crate::Graph<P> {
    /// A Mermaid flowchart of the graph: every task, and its edges up to Mermaid's default
    /// limit of 500 (the picture says how many it left out; [`Diagram`] for another limit).
    pub fn to_mermaid(&self) -> String {
        Diagram::new().mermaid(self)
    }

    /// A Graphviz DOT digraph of the graph: every task and edge.
    pub fn to_dot(&self) -> String {
        Diagram::new().dot(self)
    }
}

impl Report {
    /// A Mermaid flowchart of the run: every task styled by its status, with a legend; failed
    /// tasks show their error, skipped ones the task they waited for.
    ///
    /// ```
    /// use dagjoin::runtime::NamedGraphBuilder;
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("end", |_| async { anyhow::bail!("disk full") as anyhow::Result<()> })
    ///     .task("graph", |_| async { Ok(()) })
    ///     .depends("graph", ["end"]);
    /// let report = builder.build().unwrap().run(()).await;
    /// let picture = report.to_mermaid();
    /// assert!(picture.contains(r#"t1["end<br/>failed: disk full"]:::failed"#));
    /// assert!(picture.contains(r#"t2["graph<br/>skipped after end"]:::skipped"#));
    /// assert!(report.to_dot().contains(r#"t1 [label="end\nfailed: disk full""#));
    /// # });
    /// ```
    pub fn to_mermaid(&self) -> String {
        Diagram::new().mermaid_report(self)
    }

    /// A Graphviz DOT digraph of the run, styled like [`to_mermaid`](Report::to_mermaid).
    pub fn to_dot(&self) -> String {
        Diagram::new().dot_report(self)
    }

    /// A Mermaid gantt chart of the run: each task that ran, from its start to its end (in
    /// milliseconds from the run's start), marked `done`, or `crit` on the critical path;
    /// failed and cancelled tasks are marked `active` and named with their status.
    ///
    /// ```
    /// use dagjoin::runtime::NamedGraphBuilder;
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("a", |_| async { tokio::time::sleep(Duration::from_millis(100)).await; Ok(()) })
    ///     .task("b", |_| async { tokio::time::sleep(Duration::from_millis(50)).await; Ok(()) })
    ///     .depends("b", ["a"]);
    /// let report = builder.build().unwrap().run(()).await;
    /// let gantt = report.to_gantt();
    /// assert!(gantt.contains("a :crit, t1, 0, 100"));
    /// assert!(gantt.contains("b :crit, t2, 100, 150"));
    /// # });
    /// ```
    pub fn to_gantt(&self) -> String {
        gantt(self)
    }
}

impl RunStatus {
    /// A Mermaid flowchart of the run as it is now: every task styled by its state (waiting,
    /// ready, running, retrying, or its status once it has one), with a legend; failed tasks
    /// show their error, skipped ones the task they waited for.
    ///
    /// ```
    /// use dagjoin::runtime::NamedGraphBuilder;
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let mut builder = NamedGraphBuilder::new();
    /// builder
    ///     .task("slow", |_| async { tokio::time::sleep(Duration::from_secs(5)).await; Ok(()) })
    ///     .task("next", |_| async { Ok(()) })
    ///     .depends("next", ["slow"]);
    /// let mut run = builder.build().unwrap().run(());
    /// let status = run.status();
    /// let run = tokio::spawn(run);
    /// tokio::time::sleep(Duration::from_secs(1)).await;
    /// assert!(status.to_mermaid().contains(r#"t1["slow<br/>running"]:::running"#));
    /// assert!(status.to_dot().contains(r#"t2 [label="next\nwaiting""#));
    /// run.await.unwrap();
    /// # });
    /// ```
    pub fn to_mermaid(&self) -> String {
        Diagram::new().mermaid_status(self)
    }

    /// A Graphviz DOT digraph of the run as it is now, styled like
    /// [`to_mermaid`](RunStatus::to_mermaid).
    pub fn to_dot(&self) -> String {
        Diagram::new().dot_status(self)
    }
}

/// What a picture of a run says of one task: its state, the second line of its label, and
/// its tooltip.
struct Mark {
    state: TaskState,
    line: String,
    tooltip: String,
}

/// The states a picture's legend shows: of a finished run, the statuses; of a live one, all.
struct Marks {
    /// By node; node 0 (the parameter) is not drawn.
    tasks: Vec<Mark>,
    legend: &'static [TaskState],
}

const STATUSES: [TaskState; 5] = [
    TaskState::Done(Status::Completed),
    TaskState::Done(Status::Failed),
    TaskState::Done(Status::Skipped),
    TaskState::Done(Status::Cancelled),
    TaskState::Done(Status::NotRun),
];

const STATES: [TaskState; 9] = [
    TaskState::Done(Status::Completed),
    TaskState::Done(Status::Failed),
    TaskState::Done(Status::Skipped),
    TaskState::Done(Status::Cancelled),
    TaskState::Done(Status::NotRun),
    TaskState::Running,
    TaskState::Retrying,
    TaskState::Ready,
    TaskState::Waiting,
];

fn report_marks(report: &Report) -> Marks {
    let graph = &**report.graph();
    let tasks = (0..graph.len())
        .map(|v| {
            let task = report.task_report(index(v));
            let status = task.status();
            let why = match (task.error(), task.skipped_because()) {
                (Some(error), _) => Some(Reason::Failed(error)),
                (None, Some(because)) => Some(Reason::Skipped(because)),
                (None, None) => None,
            };
            let mut mark = mark(TaskState::Done(status), task.attempts(), why);
            if status == Status::Completed && task.reused() {
                "completed (reused)".clone_into(&mut mark.line);
            }
            mark
        })
        .collect();
    Marks {
        tasks,
        legend: &STATUSES,
    }
}

fn live_marks(live: &Live) -> Marks {
    let tasks = (0..live.states.len())
        .map(|v| {
            let why = match &live.why[v] {
                Why::Nothing => None,
                Why::Failed(error) => Some(Reason::Failed(error)),
                Why::Skipped(because) => Some(Reason::Skipped(live.name(*because as usize))),
            };
            mark(live.states[v], live.attempts[v], why)
        })
        .collect();
    Marks {
        tasks,
        legend: &STATES,
    }
}

/// What a picture draws: tasks with names and inputs. A graph, or a live run's view of the
/// graph with the tasks it added.
trait Shape {
    /// The number of nodes, the parameter included.
    fn nodes(&self) -> usize;
    fn name(&self, v: usize) -> &str;
    fn deps(&self, v: usize) -> &[u32];
}

impl Shape for GraphInner {
    fn nodes(&self) -> usize {
        self.len()
    }

    fn name(&self, v: usize) -> &str {
        GraphInner::name(self, index(v))
    }

    fn deps(&self, v: usize) -> &[u32] {
        GraphInner::deps(self, index(v))
    }
}

impl Shape for Live {
    fn nodes(&self) -> usize {
        self.states.len()
    }

    fn name(&self, v: usize) -> &str {
        Live::name(self, v)
    }

    fn deps(&self, v: usize) -> &[u32] {
        Live::deps(self, v)
    }
}

/// Why a task failed or was skipped.
enum Reason<'a> {
    Failed(&'a anyhow::Error),
    Skipped(&'a str),
}

fn mark(state: TaskState, attempts: u32, why: Option<Reason<'_>>) -> Mark {
    let (line, tooltip) = match (state, why) {
        (TaskState::Done(Status::Failed), Some(Reason::Failed(error))) => (
            format!("failed: {}", first_line(&format!("{error:#}"), 80)),
            format!("{error:#}"),
        ),
        (TaskState::Done(Status::Skipped), Some(Reason::Skipped(because))) => (
            format!("skipped after {because}"),
            format!("skipped: `{because}` did not complete"),
        ),
        (TaskState::Running, _) if attempts > 1 => {
            let line = format!("running, attempt {attempts}");
            (line.clone(), line)
        }
        (TaskState::Retrying, _) => {
            let line = format!("retrying after attempt {attempts}");
            (line.clone(), line)
        }
        (state, _) => (state.to_string(), state.to_string()),
    };
    Mark {
        state,
        line,
        tooltip,
    }
}

/// What a state looks like: its class name, its Mermaid style, its DOT style. Each differs
/// from the others in its line (width, dashes, shape) as well as its colour.
fn look(state: TaskState) -> (&'static str, &'static str, &'static str) {
    match state {
        TaskState::Done(Status::Completed) => (
            "completed",
            "fill:#d8f0dc,stroke:#1e7b34,stroke-width:2px",
            r##"style="filled", fillcolor="#d8f0dc", color="#1e7b34", penwidth=2"##,
        ),
        TaskState::Done(Status::Failed) => (
            "failed",
            "fill:#f8d0d4,stroke:#b3101e,stroke-width:4px",
            r##"style="filled,bold", fillcolor="#f8d0d4", color="#b3101e", penwidth=4, shape=octagon"##,
        ),
        TaskState::Done(Status::Skipped) => (
            "skipped",
            "fill:#fff1c2,stroke:#8a6100,stroke-width:2px,stroke-dasharray:6 4",
            r##"style="filled,dashed", fillcolor="#fff1c2", color="#8a6100", penwidth=2"##,
        ),
        TaskState::Done(Status::Cancelled) => (
            "cancelled",
            "fill:#e3e3e6,stroke:#444448,stroke-width:2px,stroke-dasharray:2 2",
            r##"style="filled,dotted", fillcolor="#e3e3e6", color="#444448", penwidth=2"##,
        ),
        TaskState::Done(Status::NotRun) => (
            "notrun",
            "fill:#ffffff,stroke:#8a8a8a,stroke-width:1px,stroke-dasharray:1 5",
            r##"style="dashed", color="#8a8a8a""##,
        ),
        TaskState::Running => (
            "running",
            "fill:#d6e4ff,stroke:#1f4fbf,stroke-width:3px,stroke-dasharray:12 3",
            r##"style="filled,bold", fillcolor="#d6e4ff", color="#1f4fbf", penwidth=3, peripheries=2"##,
        ),
        TaskState::Retrying => (
            "retrying",
            "fill:#ffe0c2,stroke:#a34a00,stroke-width:3px,stroke-dasharray:3 3 12 3",
            r##"style="filled,bold", fillcolor="#ffe0c2", color="#a34a00", penwidth=3, peripheries=2, shape=hexagon"##,
        ),
        TaskState::Ready => (
            "ready",
            "fill:#ffffff,stroke:#1f4fbf,stroke-width:2px",
            r##"color="#1f4fbf", penwidth=2, shape=ellipse"##,
        ),
        TaskState::Waiting => (
            "waiting",
            "fill:#ffffff,stroke:#8a8a8a,stroke-width:1px",
            r##"color="#8a8a8a""##,
        ),
    }
}

/// `text` up to its first line break, at most `max` characters.
fn first_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let mut cut: String = line.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// The edges of `graph` in order, once per pair: (dependency, task).
fn edges(graph: &dyn Shape) -> Vec<(u32, u32)> {
    let mut edges = Vec::new();
    for v in 1..graph.nodes() {
        let deps = graph.deps(v);
        for (i, &d) in deps.iter().enumerate() {
            if d != 0 && !deps[..i].contains(&d) {
                edges.push((d, index(v)));
            }
        }
    }
    edges
}

/// How many of `edges` a picture of at most `limit` edges draws, and what it then says of
/// the others.
fn cut(edges: &[(u32, u32)], limit: usize) -> (usize, Option<String>) {
    let shown = limit.min(edges.len());
    let left_out = (shown < edges.len())
        .then(|| format!("{} of {} edges left out", edges.len() - shown, edges.len()));
    (shown, left_out)
}

/// Text inside a quoted Mermaid label: `"` and the characters Mermaid reads as markup become
/// entity codes.
fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '#' => out.push_str("#35;"),
            '&' => out.push_str("#amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn mermaid(graph: &dyn Shape, marks: Option<&Marks>, diagram: Diagram) -> String {
    let edges = edges(graph);
    let (shown, left_out) = cut(&edges, diagram.max_edges.unwrap_or(MERMAID_MAX_EDGES));
    let mut out = String::from("flowchart LR\n");
    for v in 1..graph.nodes() {
        let name = mermaid_text(graph.name(v));
        match marks {
            None => {
                let _ = writeln!(out, "    t{v}[\"{name}\"]");
            }
            Some(marks) => {
                let mark = &marks.tasks[v];
                let (class, ..) = look(mark.state);
                let line = mermaid_text(&mark.line);
                let _ = writeln!(out, "    t{v}[\"{name}<br/>{line}\"]:::{class}");
            }
        }
    }
    for &(d, v) in &edges[..shown] {
        let _ = writeln!(out, "    t{d} --> t{v}");
    }
    if let Some(left_out) = left_out {
        let _ = writeln!(out, "    left_out[\"{left_out}\"]");
    }
    if let Some(marks) = marks {
        out.push_str("    subgraph legend [\"legend\"]\n");
        for &state in marks.legend {
            let (class, ..) = look(state);
            let _ = writeln!(out, "        legend_{class}[\"{state}\"]:::{class}");
        }
        out.push_str("    end\n");
        for &state in marks.legend {
            let (class, style, _) = look(state);
            let _ = writeln!(out, "    classDef {class} {style}");
        }
    }
    out
}

/// Text inside a quoted DOT string.
fn dot_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn dot(graph: &dyn Shape, marks: Option<&Marks>, diagram: Diagram) -> String {
    let edges = edges(graph);
    let (shown, left_out) = cut(&edges, diagram.max_edges.unwrap_or(usize::MAX));
    let mut out = String::from(
        "digraph run {\n    rankdir=LR;\n    node [shape=box, fontname=\"Helvetica\"];\n",
    );
    for v in 1..graph.nodes() {
        let name = dot_text(graph.name(v));
        match marks {
            None => {
                let _ = writeln!(out, "    t{v} [label=\"{name}\"];");
            }
            Some(marks) => {
                let mark = &marks.tasks[v];
                let (_, _, style) = look(mark.state);
                let line = dot_text(&mark.line);
                let tooltip = dot_text(&mark.tooltip);
                let _ = writeln!(
                    out,
                    "    t{v} [label=\"{name}\\n{line}\", tooltip=\"{tooltip}\", {style}];"
                );
            }
        }
    }
    for &(d, v) in &edges[..shown] {
        let _ = writeln!(out, "    t{d} -> t{v};");
    }
    if let Some(left_out) = left_out {
        let _ = writeln!(out, "    left_out [label=\"{left_out}\", shape=note];");
    }
    if let Some(marks) = marks {
        out.push_str("    subgraph cluster_legend {\n        label=\"legend\";\n");
        for &state in marks.legend {
            let (class, _, style) = look(state);
            let _ = writeln!(out, "        legend_{class} [label=\"{state}\", {style}];");
        }
        out.push_str("    }\n");
    }
    out.push_str("}\n");
    out
}

/// Text of a gantt task name: Mermaid reads `:` as the start of the task's data, so it is
/// written as its entity; a line break would end the task.
fn gantt_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ':' => out.push_str("#58;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn gantt(report: &Report) -> String {
    let graph = &**report.graph();
    let critical: Vec<&str> = report.critical_path();
    let mut out = String::new();
    out.push_str("gantt\n");
    let _ = writeln!(
        out,
        "    title run {}",
        gantt_text(report.run_key().as_str())
    );
    out.push_str("    dateFormat x\n    axisFormat %S.%L\n    section tasks\n");
    for v in 1..graph.len() {
        let v = index(v);
        let task = report.task_report(v);
        let (Some(start), Some(end)) = (task.started(), task.finished()) else {
            continue;
        };
        let from = (start - report.started()).as_millis();
        let to = (end - report.started()).as_millis().max(from + 1);
        let name = gantt_text(task.name());
        let (label, tag) = match task.status() {
            Status::Completed if critical.contains(&task.name()) => (name, "crit"),
            Status::Completed => (name, "done"),
            status => (format!("{name} ({status})"), "active"),
        };
        let _ = writeln!(out, "    {label} :{tag}, t{v}, {from}, {to}");
    }
    out
}
