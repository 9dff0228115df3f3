//! `tracing` spans (feature `tracing`): the span tree of a run, read back by a subscriber layer
//! that records every span, its fields, its parent and the events inside it.
//!
//! One test in this binary: tracing caches, per call site, whether any subscriber wants it,
//! and a test without a subscriber running beside this one could leave the run's call site
//! disabled. Every other test binary, with `--all-features`, runs the engine with the feature
//! and no subscriber.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dagjoin::runtime::{NamedGraphBuilder, Placement, RunOptions, TaskOptions};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[derive(Clone, Debug, Default)]
struct SpanData {
    name: &'static str,
    parent: Option<u64>,
    fields: BTreeMap<String, String>,
    events: Vec<String>,
    closed: bool,
}

/// Every span the subscriber saw, by id.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<BTreeMap<u64, SpanData>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|p| p.id().into_u64());
        let mut data = SpanData {
            name: attrs.metadata().name(),
            parent,
            ..SpanData::default()
        };
        attrs.record(&mut Fields(&mut data.fields));
        self.0.lock().unwrap().insert(id.into_u64(), data);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut spans = self.0.lock().unwrap();
        values.record(&mut Fields(
            &mut spans.get_mut(&id.into_u64()).unwrap().fields,
        ));
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.event_span(event) {
            let mut spans = self.0.lock().unwrap();
            let message = fields.remove("message").unwrap_or_default();
            spans
                .get_mut(&span.id().into_u64())
                .unwrap()
                .events
                .push(message);
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(span) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            span.closed = true;
        }
    }
}

/// Three tasks on three executors, each with an event of its own; a task that fails once and
/// is retried; a failed task and a task skipped after it.
fn graph() -> dagjoin::runtime::Graph<()> {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("load", |_| async {
            tracing::info!("loading");
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok(1_u32)
        })
        .task_on("parse", Placement::Spawned, |inputs| async move {
            tracing::info!("parsing");
            Ok(inputs.get::<u32>("load")? + 1)
        })
        .blocking_task("sum", |inputs| {
            tracing::info!("summing");
            Ok(inputs.get::<u32>("parse")? * 2)
        })
        .task("flaky", {
            let calls = Arc::new(Mutex::new(0));
            move |_| {
                let calls = calls.clone();
                async move {
                    let call = {
                        let mut calls = calls.lock().unwrap();
                        *calls += 1;
                        *calls
                    };
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    anyhow::ensure!(call > 1, "first call fails");
                    Ok(())
                }
            }
        })
        .task("broken", |_| async {
            anyhow::bail!("broken") as anyhow::Result<()>
        })
        .task("after_broken", |_| async { Ok(()) })
        .depends("parse", ["load"])
        .depends("sum", ["parse"])
        .depends("after_broken", ["broken"])
        .options("flaky", TaskOptions::new().retries(1));
    builder.build().unwrap()
}

#[test]
fn runs_and_attempts_are_spans_with_the_tasks_events_inside() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();

    let graph = graph();

    let report = tracing::subscriber::with_default(subscriber, || {
        let caller = tracing::info_span!("caller");
        let _entered = caller.enter();
        let run = graph.run_with((), RunOptions::new());
        runtime.block_on(run)
    });
    assert_eq!(report.value::<u32>("sum").unwrap(), &4);

    let spans = capture.0.lock().unwrap();
    let named = |name: &str| -> Vec<(u64, &SpanData)> {
        spans
            .iter()
            .filter(|(_, span)| span.name == name)
            .map(|(id, span)| (*id, span))
            .collect()
    };
    let [(caller_id, _)] = named("caller")[..] else {
        panic!("one caller span")
    };
    let [(run_id, run)] = named("run")[..] else {
        panic!("one run span: {spans:?}")
    };
    assert_eq!(run.parent, Some(caller_id));
    assert_eq!(run.fields["run"], report.run_key().as_str());
    assert_eq!(run.fields["tasks"], "6");
    assert!(run.closed);

    let attempts = named("attempt");
    let of = |task: &str| -> Vec<&SpanData> {
        attempts
            .iter()
            .filter(|(_, span)| span.fields["task"] == task)
            .map(|(_, span)| *span)
            .collect()
    };
    for (_, attempt) in &attempts {
        assert_eq!(attempt.parent, Some(run_id), "{attempt:?}");
        assert!(attempt.closed);
    }
    let one = |task: &str| {
        let spans = of(task);
        assert_eq!(spans.len(), 1, "{task}: {spans:?}");
        spans[0].clone()
    };
    let load = one("load");
    assert_eq!(load.fields["attempt"], "1");
    assert_eq!(load.fields["executor"], "inline");
    assert_eq!(load.fields["status"], "completed");
    assert_eq!(load.fields["duration_ms"], "100.0");
    assert_eq!(load.events, ["loading"]);
    let parse = one("parse");
    assert_eq!(parse.fields["executor"], "spawned");
    assert_eq!(parse.events, ["parsing"]);
    let sum = one("sum");
    assert_eq!(sum.fields["executor"], "blocking");
    assert_eq!(sum.events, ["summing"]);
    assert_eq!(one("broken").fields["status"], "failed");
    // The failed attempt and its retry, each its own span.
    let flaky = of("flaky");
    assert_eq!(flaky.len(), 2);
    assert_eq!(flaky[0].fields["attempt"], "1");
    assert_eq!(flaky[0].fields["status"], "failed, retrying");
    assert_eq!(flaky[1].fields["attempt"], "2");
    assert_eq!(flaky[1].fields["status"], "completed");
    assert_eq!(flaky[1].fields["duration_ms"], "10.0");
    // A skipped task never ran: no attempt of it.
    assert!(of("after_broken").is_empty());
    assert_eq!(attempts.len(), 6);
    drop(spans);

    // A run that adds tasks as it goes: each item has its span, with its events inside.
    let mut g = dagjoin::runtime::GraphBuilder::<()>::new();
    let items = g.named("list").add(|| async { vec![1_u32, 2, 3] }, ());
    let doubled = g.named("double").map(
        |x: u32| async move {
            tracing::info!("doubling");
            x * 2
        },
        items,
    );
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let report = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(g.build().unwrap().run(()))
    });
    assert_eq!(report.get(&doubled).unwrap(), &vec![2, 4, 6]);
    let spans = capture.0.lock().unwrap();
    for item in ["double[0]", "double[1]", "double[2]"] {
        let item: Vec<&SpanData> = spans
            .values()
            .filter(|span| span.name == "attempt" && span.fields["task"] == item)
            .collect();
        assert_eq!(item.len(), 1, "{item:?}");
        assert_eq!(item[0].fields["status"], "completed");
        assert_eq!(item[0].events, ["doubling"]);
        assert!(item[0].closed);
    }
}
