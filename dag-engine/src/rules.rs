//! Rules: a condition over a run's state and a body that grows the graph once it holds.
//!
//! A [`Rule`](crate::Rule) waits for tasks to complete ([`When::completed`]), for a tag to settle (every
//! task with it done, and none can be added any more: [`When::settled`]), or for a number of
//! tasks with a tag to complete ([`When::tagged_completed`]). The engine keeps, per rule, how
//! many of its conditions are still unmet, and per task and tag the rules that wait on them:
//! a change of state touches only the rules that wait on it, never a poll over all of them.
//!
//! A tag can settle because the engine knows every source of tasks with it: a task may carry
//! a tag only if what added it declared the tag ([`Rule::adds`](crate::Rule::adds),
//! [`TaskBuilder::adds`](crate::TaskBuilder::adds)), and a tag is settled once none of its
//! sources can add any more and all its tasks are done.

use core::fmt::{self, Write as _};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use core::any::Any;

use crate::error::ValueError;
use crate::executor::Value;
use crate::graph::{Base, Call, GraphInner, Node, Work};
use crate::grow::Added;
use crate::id::{Handle, Status, TaskState};
use crate::state::RunState;

/// A task a [`When`] waits for: from a [`Handle`] (of the graph, or of a task a run added)
/// or a task's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRef(Target);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Handle { builder: u64, index: u32 },
    Name(Box<str>),
}

impl TaskRef {
    /// The node of this task in a run of `graph` that added `added`.
    pub(crate) fn find(&self, graph: &GraphInner, added: &Added) -> Result<u32, String> {
        match &self.0 {
            Target::Handle { builder, index } => {
                let found = if *builder == graph.id {
                    *index != 0 && (*index as usize) < graph.len()
                } else {
                    added
                        .step(*builder)
                        .is_some_and(|range| range.contains(index))
                };
                found.then_some(*index).ok_or_else(|| {
                    format!(
                        "it waits for a task whose handle is of another graph or run (builder \
                         {builder}, node {index})"
                    )
                })
            }
            Target::Name(name) => graph
                .lookup(name)
                .or_else(|| added.lookup(name))
                .ok_or_else(|| format!("it waits for `{name}`, which is not a task")),
        }
    }
}

impl<T> From<Handle<T>> for TaskRef {
    fn from(handle: Handle<T>) -> Self {
        Self(Target::Handle {
            builder: handle.builder,
            index: handle.index,
        })
    }
}

impl<T> From<&Handle<T>> for TaskRef {
    fn from(handle: &Handle<T>) -> Self {
        (*handle).into()
    }
}

impl From<&str> for TaskRef {
    fn from(name: &str) -> Self {
        Self(Target::Name(name.into()))
    }
}

impl From<String> for TaskRef {
    fn from(name: String) -> Self {
        Self(Target::Name(name.into()))
    }
}

/// When a [`Rule`](crate::Rule) fires: once every one of its conditions holds (combine them with
/// [`and`](When::and)).
///
/// ```
/// use dagjoin::runtime::{GraphBuilder, When};
///
/// let mut g = GraphBuilder::<()>::new();
/// let a = g.add(|| async { 1 }, ());
/// let b = g.add(|| async { 2 }, ());
/// let when = When::completed(a).and(When::completed(b)).and(When::settled("part"));
/// assert_eq!(
///     when.to_string(),
///     "a task completes, a task completes, and tag `part` settles"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct When(Vec<Atom>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Atom {
    Completed(TaskRef),
    Settled(Arc<str>),
    Count(Arc<str>, usize),
}

impl When {
    /// When `task` has completed. If it fails, is skipped or does not run, the rule can never
    /// fire: it is reported as unfired, and does not keep the run going.
    ///
    /// The task must exist when the rule is registered: a rule of the graph names a task of
    /// the graph (by handle or name, checked when the graph is built), a rule that a growth
    /// step or rule registers may also name the tasks the run has added so far.
    pub fn completed(task: impl Into<TaskRef>) -> Self {
        Self(vec![Atom::Completed(task.into())])
    }

    /// When every one of `tasks` has completed.
    pub fn all_completed<I>(tasks: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<TaskRef>,
    {
        Self(
            tasks
                .into_iter()
                .map(|task| Atom::Completed(task.into()))
                .collect(),
        )
    }

    /// When tag `tag` is settled: every task with it is done (whatever its status), and none
    /// can be added any more, because every rule and growth step that declared it has fired
    /// or can no longer fire.
    pub fn settled(tag: &str) -> Self {
        Self(vec![Atom::Settled(tag.into())])
    }

    /// When at least `n` tasks with tag `tag` have completed. If the tag settles with fewer,
    /// the rule can never fire.
    pub fn tagged_completed(tag: &str, n: usize) -> Self {
        Self(vec![Atom::Count(tag.into(), n)])
    }

    /// When both `self` and `other` hold.
    #[must_use]
    pub fn and(mut self, other: Self) -> Self {
        self.0.extend(other.0);
        self
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, atom) in self.0.iter().enumerate() {
            match i {
                0 => {}
                _ if i + 1 == self.0.len() => f.write_str(", and ")?,
                _ => f.write_str(", ")?,
            }
            match atom {
                Atom::Completed(TaskRef(Target::Name(name))) => write!(f, "`{name}` completes")?,
                Atom::Completed(TaskRef(Target::Handle { .. })) => {
                    f.write_str("a task completes")?;
                }
                Atom::Settled(tag) => write!(f, "tag `{tag}` settles")?,
                Atom::Count(tag, n) => write!(f, "{n} tasks tagged `{tag}` complete")?,
            }
        }
        if self.0.is_empty() {
            f.write_str("the run starts")?;
        }
        Ok(())
    }
}

/// The erased body of a rule.
type ErasedBody = dyn Fn(&mut Pending, &View<'_>) -> anyhow::Result<()> + Send + Sync;

/// A rule without its parameter type.
pub(crate) struct RuleDef {
    pub name: Box<str>,
    pub when: When,
    pub body: Box<ErasedBody>,
    pub adds: Box<[Arc<str>]>,
    pub required: bool,
}

impl RuleDef {
    /// The rule as a graph keeps it.
    pub fn erased(rule: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        rule
    }

    /// What is wrong with the tasks the rule waits for, in a run of `graph` (which adds
    /// nothing yet).
    pub fn check(&self, graph: &GraphInner) -> Vec<crate::error::BuildProblem> {
        let added = Added::new(graph.len());
        self.when
            .0
            .iter()
            .filter_map(|atom| match atom {
                Atom::Completed(task) => task.find(graph, &added).err(),
                Atom::Settled(_) | Atom::Count(..) => None,
            })
            .map(|problem| crate::error::BuildProblem::Rule {
                rule: self.name.to_string(),
                problem,
            })
            .collect()
    }
}

/// What became of a rule in a run.
#[derive(Clone, Debug)]
pub(crate) enum Fate {
    /// Its condition does not hold yet.
    Waiting,
    /// It fired, and its body grew the graph.
    Fired,
    /// It fired, and its body failed (it added nothing).
    Failed(Arc<anyhow::Error>),
    /// It can never fire, for this reason.
    Never(Box<str>),
}

/// What a report keeps of a rule.
#[derive(Clone, Debug)]
pub(crate) struct RuleRecord {
    pub name: Box<str>,
    pub required: bool,
    pub fate: Fate,
}

/// A rule of a run: its definition, its unmet conditions and what became of it.
pub(crate) struct RuleRun {
    pub def: Arc<RuleDef>,
    /// Its name in the run: its own, made unique with `#2`, `#3`, .. if another rule has it.
    pub name: Box<str>,
    unmet: usize,
    pub fate: Fate,
    /// What it waits for, in words, per unmet condition (for the report of an unfired rule).
    waits: Vec<(Atom, Option<u32>)>,
}

/// A tag's state in a run.
#[derive(Default)]
struct Tag {
    /// Rules and growth steps that declared it and may still add tasks with it.
    open: usize,
    /// Its tasks that are not done.
    unsettled: usize,
    /// Its tasks that completed.
    completed: usize,
    /// Its tasks, in the order they came.
    tasks: Vec<u32>,
    settled: bool,
    /// Rules waiting for it to settle.
    on_settle: Vec<usize>,
    /// Rules waiting for `n` of its tasks to complete.
    on_count: Vec<(usize, usize)>,
}

/// The rules and tags of a run.
#[derive(Default)]
pub(crate) struct Rules {
    pub all: Vec<RuleRun>,
    tags: HashMap<Arc<str>, Tag>,
    /// The tags of each task that has one.
    tags_of: HashMap<u32, Vec<Arc<str>>>,
    /// The tags each growth step declared (it is a source of them until it is done).
    sources: HashMap<u32, Vec<Arc<str>>>,
    /// The rules waiting for each task.
    watching: HashMap<u32, Vec<usize>>,
    /// Rules whose conditions all hold, in the order they came to.
    pub due: VecDeque<usize>,
    /// The names of the run's rules.
    names: HashMap<Box<str>, u32>,
    /// Tags whose counts changed, to check for settling.
    touched: Vec<Arc<str>>,
}

impl Rules {
    /// Task `v` carries `tag`.
    pub fn tag_task(&mut self, v: u32, tag: &Arc<str>) {
        let state = self.tags.entry(tag.clone()).or_default();
        state.unsettled += 1;
        state.tasks.push(v);
        self.tags_of.entry(v).or_default().push(tag.clone());
    }

    /// Growth step `v` may add tasks with `tags` until it is done.
    pub fn source(&mut self, v: u32, tags: &[Arc<str>]) {
        for tag in tags {
            self.tags.entry(tag.clone()).or_default().open += 1;
        }
        self.sources.entry(v).or_default().extend_from_slice(tags);
    }

    /// Whether `tag` is settled: nothing may add tasks with it any more.
    pub fn is_settled(&self, tag: &str) -> bool {
        self.tags.get(tag).is_some_and(|state| state.settled)
    }

    /// The tasks with `tag` so far.
    pub fn tagged(&self, tag: &str) -> &[u32] {
        self.tags.get(tag).map_or(&[], |state| &state.tasks)
    }

    /// Registers rule `def`, with the state of the tasks so far: its sources open, its
    /// conditions watched (those that hold already count as met). The tasks a condition names
    /// are found with `find`.
    pub fn register(
        &mut self,
        def: Arc<RuleDef>,
        find: impl Fn(&TaskRef) -> Result<u32, String>,
        state: impl Fn(u32) -> TaskState,
        name: impl Fn(u32) -> String,
        task_named: &dyn Fn(&str) -> bool,
    ) -> Result<(), String> {
        let r = self.all.len();
        let mut waits = Vec::new();
        let mut unmet = 0;
        let mut never = None;
        // Resolve first, so that a bad reference registers nothing.
        let mut atoms = Vec::with_capacity(def.when.0.len());
        for atom in &def.when.0 {
            let node = match atom {
                Atom::Completed(task) => Some(find(task)?),
                Atom::Settled(_) | Atom::Count(..) => None,
            };
            atoms.push((atom.clone(), node));
        }
        for tag in &def.adds {
            if self.is_settled(tag) {
                return Err(format!(
                    "it declares tag `{tag}`, which has settled: no task with it can be added \
                     any more"
                ));
            }
        }
        for tag in &def.adds {
            self.tags.entry(tag.clone()).or_default().open += 1;
        }
        for (atom, node) in atoms {
            match (&atom, node) {
                (Atom::Completed(_), Some(v)) => match state(v) {
                    TaskState::Done(Status::Completed) => continue,
                    TaskState::Done(status) => never = Some(never_because(&name(v), status)),
                    _ => self.watching.entry(v).or_default().push(r),
                },
                (Atom::Settled(tag), _) => {
                    let state = self.tags.entry(tag.clone()).or_default();
                    if state.settled {
                        continue;
                    }
                    state.on_settle.push(r);
                    self.touched.push(tag.clone());
                }
                (Atom::Count(tag, n), _) => {
                    let state = self.tags.entry(tag.clone()).or_default();
                    if state.completed >= *n {
                        continue;
                    }
                    if state.settled {
                        never = Some(too_few(tag, state.completed, *n));
                    }
                    state.on_count.push((r, *n));
                    self.touched.push(tag.clone());
                }
                (Atom::Completed(_), None) => unreachable!("resolved above"),
            }
            unmet += 1;
            waits.push((atom, node));
        }
        let name = self.unique(&def.name, task_named);
        self.all.push(RuleRun {
            def,
            name,
            unmet,
            fate: Fate::Waiting,
            waits,
        });
        if let Some(why) = never {
            self.never(r, why.into());
        } else if unmet == 0 {
            self.due.push_back(r);
        }
        Ok(())
    }

    /// Task `v` is done with `status`: the rules waiting for it, and its tags, learn of it.
    pub fn done(&mut self, v: u32, status: Status, name: impl Fn(u32) -> String) {
        // Most runs watch few tasks: an empty map is not even hashed into.
        let watchers = (!self.watching.is_empty()).then(|| self.watching.remove(&v));
        if let Some(rules) = watchers.flatten() {
            for r in rules {
                if status == Status::Completed {
                    self.met(r);
                } else {
                    self.never(r, never_because(&name(v), status).into());
                }
            }
        }
        let tags = (!self.tags_of.is_empty()).then(|| self.tags_of.remove(&v));
        if let Some(tags) = tags.flatten() {
            for tag in tags {
                let state = self.tags.get_mut(&tag).expect("a task's tags are known");
                state.unsettled -= 1;
                if status == Status::Completed {
                    state.completed += 1;
                    let completed = state.completed;
                    let mut met = Vec::new();
                    state.on_count.retain(|&(r, n)| {
                        let holds = completed >= n;
                        if holds {
                            met.push(r);
                        }
                        !holds
                    });
                    for r in met {
                        self.met(r);
                    }
                }
                self.touched.push(tag);
            }
        }
        let sources = (!self.sources.is_empty()).then(|| self.sources.remove(&v));
        if let Some(tags) = sources.flatten() {
            self.close(&tags);
        }
    }

    /// Rule `r` has fired (or failed): it is no longer a source of its tags.
    pub fn fired(&mut self, r: usize, fate: Fate) {
        self.all[r].fate = fate;
        let tags = self.all[r].def.adds.clone();
        self.close(&tags);
    }

    /// Checks the tags whose counts changed: those that settled now meet their rules.
    pub fn settle(&mut self) {
        while let Some(tag) = self.touched.pop() {
            let Some(state) = self.tags.get_mut(&tag) else {
                continue;
            };
            if state.settled || state.open > 0 || state.unsettled > 0 {
                continue;
            }
            state.settled = true;
            let completed = state.completed;
            let on_settle = core::mem::take(&mut state.on_settle);
            let on_count = core::mem::take(&mut state.on_count);
            for r in on_settle {
                self.met(r);
            }
            for (r, n) in on_count {
                self.never(r, too_few(&tag, completed, n).into());
            }
        }
    }

    /// The run has nothing left to do: rules waiting for tasks can never fire now. Rules
    /// waiting only for tags stay, since others giving up may settle them; with `all`, they
    /// give up too. Whether a rule gave up.
    pub fn give_up(&mut self, all: bool, name: impl Fn(u32) -> String) -> bool {
        let mut gave_up = false;
        for r in 0..self.all.len() {
            let rule = &self.all[r];
            if !matches!(rule.fate, Fate::Waiting) || rule.unmet == 0 {
                continue;
            }
            let on_tasks = rule
                .waits
                .iter()
                .any(|(atom, _)| matches!(atom, Atom::Completed(_) | Atom::Count(..)));
            if all || on_tasks {
                let why = self.waiting_for(r, &name);
                self.never(r, why.into());
                gave_up = true;
            }
        }
        self.settle();
        gave_up
    }

    /// What rule `r` still waits for, in words.
    fn waiting_for(&self, r: usize, name: &impl Fn(u32) -> String) -> String {
        let mut why = String::from("nothing left to run could make it fire: it waits for ");
        let mut first = true;
        for (atom, node) in &self.all[r].waits {
            let unmet = match atom {
                Atom::Completed(_) => node.is_some_and(|v| self.watching.contains_key(&v)),
                Atom::Settled(tag) => !self.is_settled(tag),
                Atom::Count(tag, n) => self.tags.get(tag).map_or(0, |s| s.completed) < *n,
            };
            if !unmet {
                continue;
            }
            if !first {
                why.push_str(", ");
            }
            first = false;
            match atom {
                Atom::Completed(_) => {
                    let task = node.map_or_else(|| "a task".to_owned(), name);
                    let _ = write!(why, "`{task}` to complete");
                }
                Atom::Settled(tag) => {
                    let _ = write!(why, "tag `{tag}` to settle");
                }
                Atom::Count(tag, n) => {
                    let done = self.tags.get(tag).map_or(0, |s| s.completed);
                    let _ = write!(why, "{n} tasks tagged `{tag}` to complete ({done} did)");
                }
            }
        }
        why
    }

    /// Registers rule `def` as failed at once with `error` (it named a task the run lacks).
    pub fn failed(
        &mut self,
        def: Arc<RuleDef>,
        error: anyhow::Error,
        task_named: &dyn Fn(&str) -> bool,
    ) {
        let name = self.unique(&def.name, task_named);
        self.all.push(RuleRun {
            def,
            name,
            unmet: 0,
            fate: Fate::Failed(Arc::new(error)),
            waits: Vec::new(),
        });
    }

    /// `name`, or if a rule of the run has it, `name#2`, `name#3`, .., one that no rule has
    /// (nor a task, by `task_named`: the names of the tasks they add start with it).
    fn unique(&mut self, name: &str, task_named: &dyn Fn(&str) -> bool) -> Box<str> {
        let mut candidate: Box<str> = name.into();
        let mut suffix = 1;
        while self.names.contains_key(&candidate) || task_named(&candidate) {
            suffix += 1;
            candidate = format!("{name}#{suffix}").into();
        }
        self.names.insert(candidate.clone(), 1);
        candidate
    }

    /// The tags growth step `v` declared.
    pub fn declared(&self, v: u32) -> Vec<Arc<str>> {
        self.sources.get(&v).cloned().unwrap_or_default()
    }

    /// Whether a rule still waits for its conditions.
    pub fn waiting(&self) -> bool {
        self.all
            .iter()
            .any(|rule| matches!(rule.fate, Fate::Waiting) && rule.unmet > 0)
    }

    /// What became of each rule, for the report.
    pub fn records(&mut self) -> Box<[RuleRecord]> {
        self.all
            .iter()
            .map(|rule| RuleRecord {
                name: rule.name.clone(),
                required: rule.def.required,
                fate: match &rule.fate {
                    Fate::Waiting if rule.unmet == 0 => {
                        Fate::Never("the run stopped before it could fire".into())
                    }
                    Fate::Waiting => Fate::Never("the run ended before its conditions held".into()),
                    fate => fate.clone(),
                },
            })
            .collect()
    }

    fn met(&mut self, r: usize) {
        let rule = &mut self.all[r];
        if matches!(rule.fate, Fate::Waiting) && rule.unmet > 0 {
            rule.unmet -= 1;
            if rule.unmet == 0 {
                self.due.push_back(r);
            }
        }
    }

    fn never(&mut self, r: usize, why: Box<str>) {
        if matches!(self.all[r].fate, Fate::Waiting) && self.all[r].unmet > 0 {
            self.fired(r, Fate::Never(why));
        }
    }

    /// Sources of `tags` are done with them.
    fn close(&mut self, tags: &[Arc<str>]) {
        for tag in tags {
            if let Some(state) = self.tags.get_mut(tag) {
                state.open -= 1;
            }
            self.touched.push(tag.clone());
        }
    }
}

fn never_because(task: &str, status: Status) -> String {
    let what = match status {
        Status::Failed => "failed",
        Status::Skipped => "was skipped",
        Status::Cancelled => "was cancelled",
        Status::NotRun => "did not run",
        Status::Completed => "completed",
    };
    format!("it waits for `{task}`, which {what}")
}

fn too_few(tag: &str, completed: usize, n: usize) -> String {
    format!("tag `{tag}` settled with {completed} completed tasks, fewer than the {n} it waits for")
}

/// What a growth step or a rule adds, gathered while it runs and added to the run only if all
/// of it is right (the scheduler's `commit`): a step adds all it asked for or
/// nothing.
pub(crate) struct Pending {
    /// The id of the handles of the tasks it adds.
    pub id: u64,
    /// The node of the first task it adds.
    pub first: u32,
    pub tasks: Vec<NewTask>,
    /// The inputs of all its tasks, one after the other.
    pub deps: Vec<u32>,
    /// Whether it read a task's value or tags beyond its inputs (through a shared `Growth`).
    pub read: core::cell::Cell<bool>,
    pub rules: Vec<Arc<RuleDef>>,
    /// What is wrong with what it asked for: each fails the step.
    pub problems: Vec<String>,
    /// The next suffix of each derived name, and of the last base apart (tasks added in a loop
    /// share it, and skip the map).
    suffixes: HashMap<Base, u32>,
    last: Option<(Base, u32)>,
    /// The names given in this step, to find the tasks a named dependency means.
    given: HashMap<String, u32>,
}

/// A task a step adds.
pub(crate) struct NewTask {
    pub node: Node,
    pub name: NewName,
    /// Its inputs, in [`Pending::deps`].
    pub deps: core::ops::Range<u32>,
    /// Its tags and, for a growth step, the tags it declares (`None`: none, as for most).
    pub tagging: Option<Box<Tagging>>,
}

/// The tags of a task a step adds, and those it declares if it is a growth step.
pub(crate) struct Tagging {
    pub tags: Vec<Arc<str>>,
    pub adds: Vec<Arc<str>>,
}

impl NewTask {
    /// Its tags, and the tags it declares.
    pub fn tagging(tags: Vec<Arc<str>>, adds: Vec<Arc<str>>) -> Option<Box<Tagging>> {
        (!tags.is_empty() || !adds.is_empty()).then(|| Box::new(Tagging { tags, adds }))
    }

    /// The tags it declares, as a growth step.
    pub fn adds(&self) -> &[Arc<str>] {
        self.tagging.as_ref().map_or(&[], |tagging| &tagging.adds)
    }
}

/// The name of a task a step adds.
pub(crate) enum NewName {
    Given(String),
    /// `{adder}/{base}`, or `{adder}/{base}#{suffix}`.
    Derived(Base, u32),
}

impl Pending {
    pub fn new(id: u64, first: u32) -> Self {
        Self {
            id,
            first,
            tasks: Vec::new(),
            deps: Vec::new(),
            read: core::cell::Cell::new(false),
            rules: Vec::new(),
            problems: Vec::new(),
            suffixes: HashMap::new(),
            last: None,
            given: HashMap::new(),
        }
    }

    /// The node the next task added gets.
    pub fn next(&self) -> u32 {
        self.first + crate::graph::index(self.tasks.len())
    }

    /// Adds `task`; its node.
    pub fn push(&mut self, task: NewTask) -> u32 {
        let v = self.next();
        if let NewName::Given(name) = &task.name {
            self.given.insert(name.clone(), v);
        }
        self.tasks.push(task);
        v
    }

    /// A name for the next task, derived from `base`.
    pub fn derive(&mut self, base: Base) -> NewName {
        let next = match self.last {
            Some((last, next)) if last == base => next,
            _ => {
                if let Some((last, next)) = self.last.take() {
                    self.suffixes.insert(last, next);
                }
                self.suffixes.remove(&base).unwrap_or(1)
            }
        };
        self.last = Some((base, next + 1));
        NewName::Derived(base, next)
    }

    /// Writes the name of `task`, added by `adder`.
    pub fn write_name(text: &mut String, adder: &str, name: &NewName) {
        match name {
            NewName::Given(name) => text.push_str(name),
            NewName::Derived(base, suffix) => {
                text.push_str(adder);
                text.push('/');
                crate::graph::write_derived(text, *base, *suffix);
            }
        }
    }
}

/// What a growth step or a rule sees of the run while it runs.
pub(crate) struct View<'r> {
    pub graph: &'r GraphInner,
    pub state: &'r RunState,
    pub rules: &'r Rules,
    /// The name of the step or rule.
    pub adder: &'r str,
    /// The tags it declared.
    pub adds: &'r [Arc<str>],
}

impl View<'_> {
    /// The node of the task behind a handle from `builder` with index `index`: a task of the
    /// graph, one the run added, or one of `adding` that the step with handle id `id` adds.
    pub fn resolve(
        &self,
        id: u64,
        adding: core::ops::Range<u32>,
        builder: u64,
        index: u32,
    ) -> Result<u32, String> {
        let found = if builder == self.graph.id {
            (index as usize) < self.graph.len()
        } else if builder == id {
            adding.contains(&index)
        } else {
            self.state
                .added
                .step(builder)
                .is_some_and(|range| range.contains(&index))
        };
        if found {
            Ok(index)
        } else {
            Err(format!(
                "a handle from another graph or another run (builder {builder}, node {index}); \
                 use the handles of this graph and of the tasks this run added"
            ))
        }
    }

    /// The node of the task called `name`: of the graph, added by the run, or added by
    /// `pending`.
    pub fn lookup(&self, pending: &Pending, name: &str) -> Option<u32> {
        if let Some(&v) = pending.given.get(name) {
            return Some(v);
        }
        self.graph
            .lookup(name)
            .or_else(|| self.state.added.lookup(name))
    }

    /// The handle of node `v`.
    pub fn handle<T>(&self, v: u32) -> Handle<T> {
        let builder = if self.state.added.has(v) {
            self.state.added.step_of(v).unwrap_or(0)
        } else {
            self.graph.id
        };
        Handle::new(builder, v)
    }

    /// The value of node `v`, typed.
    pub fn value<T: Any>(&self, v: u32) -> Result<&T, ValueError> {
        if v as usize >= self.state.values.len() {
            // A task this step adds: it has not run.
            return Err(ValueError::NoValue {
                task: format!("a task `{}` adds", self.adder),
                status: Status::NotRun,
            });
        }
        let name = || self.state.name(v).to_owned();
        let value = self.state.values[v as usize]
            .as_ref()
            .ok_or_else(|| ValueError::NoValue {
                task: name(),
                status: self.state.records[v as usize].status(),
            })?;
        value
            .downcast_ref::<T>()
            .ok_or_else(|| ValueError::TypeMismatch {
                task: name(),
                requested: core::any::type_name::<T>(),
                actual: self.state.node(v).output.name,
            })
    }
}

/// The work of a growth step, erased: the graph keeps it as `dyn Any` (it knows nothing of
/// what a step grows), and the scheduler takes it back as this.
pub(crate) struct Step(pub Box<StepFn>);

/// A growth step's function: from its inputs, it gathers what to add in a [`Pending`] and
/// returns its task's value.
pub(crate) type StepFn =
    dyn Fn(Call<'_>, &mut Pending, &View<'_>) -> Result<Value, anyhow::Error> + Send + Sync;

impl Step {
    /// The work of a task that runs growth step `f`.
    pub fn work<F>(f: F) -> Work
    where
        F: Fn(Call<'_>, &mut Pending, &View<'_>) -> Result<Value, anyhow::Error>
            + Send
            + Sync
            + 'static,
    {
        Work::Grow(Arc::new(Self(Box::new(f))))
    }
}
