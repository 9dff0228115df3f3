//! The named builder: the seed graph from data, build errors (cycles, unknown dependencies,
//! tasks without functions), inputs by name and position with their type checks, results by
//! name.

mod common;

use std::time::Duration;

use common::{check_seed_report, Log, SEED};
use dagjoin::runtime::{
    BuildProblem, Graph, InputError, NamedGraphBuilder, Status, TaskOptions, ValueError,
};

/// The seed graph from a table of names, durations and dependency names. Every task's value
/// is the sum of its inputs plus its own number (1..=6) times the parameter.
fn seed() -> Graph<(Log, u32)> {
    let mut builder = NamedGraphBuilder::with_param();
    for (number, (name, ms, deps)) in (1_u32..).zip(SEED) {
        builder
            .task(name, move |inputs| async move {
                let (log, scale) = inputs.param::<(Log, u32)>()?;
                log.work(name, ms).await;
                let mut sum = number * scale;
                for i in 0..inputs.len() {
                    sum += inputs.at::<u32>(i)?;
                }
                Ok(sum)
            })
            .depends(name, deps.iter().copied());
    }
    builder.build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn seed_graph_from_data_starts_every_task_at_its_earliest() {
    let graph = seed();
    let log = Log::new();
    let report = graph.run((log.clone(), 1)).await;
    check_seed_report(&report, &log);
    // a = 1, b = a + 2 = 3, sa = 3, fb = 4, c = sa + fb + 5 = 12, end = b + c + 6 = 21.
    assert_eq!(report.value::<u32>("end_task").unwrap(), &21);
    assert_eq!(
        graph.dependencies("end_task").unwrap(),
        ["slow_task_b", "fast_task_c"]
    );
}

#[tokio::test(start_paused = true)]
async fn seed_graph_from_data_runs_twice_at_once() {
    let graph = seed();
    let (one, two) = (Log::new(), Log::new());
    let (first, second) = tokio::join!(graph.run((one.clone(), 1)), graph.run((two.clone(), 10)));
    check_seed_report(&first, &one);
    check_seed_report(&second, &two);
    assert_eq!(first.value::<u32>("end_task").unwrap(), &21);
    assert_eq!(second.value::<u32>("end_task").unwrap(), &210);
}

fn builder_with(tasks: &[&str]) -> NamedGraphBuilder {
    let mut builder = NamedGraphBuilder::new();
    for &name in tasks {
        builder.task(name, |_| async { Ok(()) });
    }
    builder
}

#[test]
fn a_cycle_is_named_whole_and_once() {
    let mut builder = builder_with(&["a", "b", "c", "d"]);
    builder
        .depends("a", ["c"])
        .depends("b", ["a"])
        .depends("c", ["b"])
        .depends("d", ["a"]);
    let error = builder.build().unwrap_err();
    assert_eq!(
        error.problems(),
        [BuildProblem::Cycle {
            path: vec!["a".into(), "c".into(), "b".into(), "a".into()]
        }]
    );
    assert_eq!(
        error.to_string(),
        "dependency cycle: `a` -> `c` -> `b` -> `a`"
    );

    // Deterministic, whatever the order of the `depends` calls.
    let mut builder = builder_with(&["a", "b", "c", "d"]);
    builder
        .depends("d", ["a"])
        .depends("c", ["b"])
        .depends("b", ["a"])
        .depends("a", ["c"]);
    assert_eq!(
        builder.build().unwrap_err().to_string(),
        "dependency cycle: `a` -> `c` -> `b` -> `a`"
    );
}

#[test]
fn self_dependencies_and_separate_cycles_are_each_reported() {
    let mut builder = builder_with(&["x", "a", "b", "c"]);
    builder
        .depends("a", ["b", "b"])
        .depends("b", ["a"])
        .depends("c", ["c"]);
    assert_eq!(
        builder.build().unwrap_err().to_string(),
        "dependency cycle: `a` -> `b` -> `a`; dependency cycle: `c` -> `c`"
    );
}

#[test]
fn unknown_dependencies_and_tasks_without_functions_are_named() {
    let mut builder = builder_with(&["a", "b"]);
    builder
        .depends("a", ["zz", "b"])
        .depends("ghost", ["a"])
        .depends("b", ["ghost"])
        .options("phantom", TaskOptions::new().retries(1));
    builder.task("a", |_| async { Ok(1) });
    let error = builder.build().unwrap_err();
    assert_eq!(
        error.problems(),
        [
            BuildProblem::DuplicateTask { name: "a".into() },
            BuildProblem::MissingFunction {
                task: "ghost".into()
            },
            BuildProblem::UnknownDependency {
                task: "a".into(),
                dependency: "zz".into()
            },
            BuildProblem::UnknownDependency {
                task: "b".into(),
                dependency: "ghost".into()
            },
            BuildProblem::NotATask {
                name: "phantom".into()
            },
        ]
    );
    assert_eq!(
        error.to_string(),
        "task `a` is defined more than once; task `ghost` has dependencies but no function; \
         task `a` depends on `zz`, which is not a task; task `b` depends on `ghost`, which is \
         not a task; options are given for `phantom`, not a task"
    );
}

#[tokio::test]
async fn inputs_by_name_and_position_are_type_checked() {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("number", |_| async { Ok(7_u32) })
        .task("text", |_| async { Ok(String::from("seven")) })
        .task("both", |inputs| async move {
            assert_eq!(inputs.task(), "both");
            assert_eq!(
                inputs.names().collect::<Vec<_>>(),
                ["text", "number", "text"]
            );
            let text: String = inputs.get("text")?;
            let number: u32 = inputs.at(1)?;
            let again: &String = inputs.at_ref(2)?;
            Ok(format!("{text}={number}={again}"))
        })
        .task("wrong", |inputs| async move {
            let number: String = inputs.get("number")?;
            Ok(number)
        })
        .task("missing", |inputs| async move {
            Ok(inputs.get::<u32>("text2")?)
        })
        .task("beyond", |inputs| async move { Ok(inputs.at::<u32>(1)?) })
        .depends("both", ["text", "number", "text"])
        .depends("wrong", ["number"])
        .depends("missing", ["text"])
        .depends("beyond", ["number"]);
    let report = builder.build().unwrap().run(()).await;
    assert_eq!(report.value::<String>("both").unwrap(), "seven=7=seven");
    let error = |name: &str| {
        report
            .task(name)
            .unwrap()
            .error()
            .unwrap()
            .downcast_ref::<InputError>()
            .unwrap()
            .clone()
    };
    assert_eq!(
        error("wrong"),
        InputError::TypeMismatch {
            task: "wrong".into(),
            dependency: "number".into(),
            requested: "alloc::string::String",
            actual: "u32",
        }
    );
    assert_eq!(
        error("wrong").to_string(),
        "task `wrong` asked for `number` as `alloc::string::String`, but `number` is a `u32`"
    );
    assert_eq!(
        error("missing").to_string(),
        "task `missing` has no dependency `text2`"
    );
    assert_eq!(
        error("beyond").to_string(),
        "task `beyond` has 1 input(s), so there is no input at position 1"
    );
}

#[tokio::test]
async fn results_by_name() {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("a", |_| async { Ok(1_u8) })
        .task("b", |_| async {
            anyhow::bail!("no b") as anyhow::Result<u8>
        })
        .task("c", |_| async { Ok(3_u8) })
        .depends("c", ["b"]);
    let report = builder.build().unwrap().run(()).await;
    assert_eq!(report.value::<u8>("a").unwrap(), &1);
    assert_eq!(
        report.value::<u8>("nope").unwrap_err(),
        ValueError::UnknownTask {
            name: "nope".into()
        }
    );
    assert_eq!(
        report.value::<u8>("nope").unwrap_err().to_string(),
        "there is no task `nope`"
    );
    assert_eq!(
        report.value::<u16>("a").unwrap_err().to_string(),
        "the value of task `a` was asked for as `u16`, but it is a `u8`"
    );
    assert_eq!(
        report.value::<u8>("b").unwrap_err().to_string(),
        "task `b` has no value: it failed"
    );
    assert_eq!(
        report.value::<u8>("c").unwrap_err().to_string(),
        "task `c` has no value: it was skipped"
    );
    assert!(report.task("nope").is_err());
    assert_eq!(report.task("c").unwrap().status(), Status::Skipped);
}

#[tokio::test(start_paused = true)]
async fn named_options_and_blocking_tasks() {
    let mut builder = NamedGraphBuilder::new();
    builder
        .task("slow", |_| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .blocking_task("sum", |inputs| Ok(inputs.get::<u32>("n")? * 2))
        .task("n", |_| async { Ok(21_u32) })
        .depends("sum", ["n"])
        .options("slow", TaskOptions::new().timeout(Duration::from_secs(2)));
    let report = builder.build().unwrap().run(()).await;
    assert_eq!(report.value::<u32>("sum").unwrap(), &42);
    assert_eq!(
        format!("{:#}", anyhow::Error::new(report.check().unwrap_err())),
        "task `slow` failed: timed out after 2s"
    );
}
