//! From a plan to Rust. The code follows the plan's shape: a `Seq` is a run of `let`
//! statements, a `Par` one join whose branches return what later statements use, and a
//! dependency that the plan does not put before its consumer is read from a slot.
//!
//! Input and output, for the seed graph:
//!
//! ```text
//! dag! {                              async {
//!     a   = fast_a();                     let (b, c) = join((
//!     b   = slow_b(a);                        branch(async {
//!     sa  = slow_a();                             let a = (fast_a()).await;
//!     fb  = fast_b();                             (slow_b(a)).await
//!     c   = fast_c(sa, fb);                   }),
//!     end = end_task(b, c);                   branch(async {
//!     end                                         let (sa, fb) = join((
//! }                                                   branch(slow_a()),
//!                                                     branch(fast_b()),
//!                                                 )).await;
//!                                                 (fast_c(sa, fb)).await
//!                                             }),
//!                                         )).await;
//!                                         let end = (end_task(b, c)).await;
//!                                         end
//!                                     }
//! ```
//!
//! Values: a node used by value by one consumer is moved there; with several, the others get
//! a clone, made just before the stage that uses it. A branch of several nodes counts as one
//! consumer: it takes one value, by move, as a hand-written `async move` block would, and
//! shares it among its own consumers in the same way. Consumers that only borrow share the
//! original, and the move waits until they are done. A value read from a slot is taken (moved
//! by the last taker, cloned for the others) or borrowed from the slot.

use std::collections::BTreeMap;

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::Ident;

use crate::check::{self, Ctxt};
use crate::graph::{self, unraw, Graph, Mode, NodeId, Placement};
use crate::parse;
use crate::plan::{self, Plan};
use crate::uses;

/// Joins with more branches than this poll only the branches that woke.
const FLAT_JOIN_LIMIT: usize = 32;
/// Largest tuple the runtime's joins take; wider joins nest tuples.
const TUPLE_LIMIT: usize = 16;

/// The macro's entry point: never panics, returns either code or `compile_error!`s.
pub fn dag(input: TokenStream) -> TokenStream {
    match try_dag(input) {
        Ok(tokens) => tokens,
        Err(err) => {
            let errors = err.to_compile_error();
            // A future whose output takes any type, so the user sees no follow-on type errors
            // (and, unlike an expression of type `!`, no unreachable code after it).
            quote!(async { #errors loop {} })
        }
    }
}

fn try_dag(input: TokenStream) -> syn::Result<TokenStream> {
    let mut input = parse::parse(input)?;
    let misplaced = core::mem::take(&mut input.misplaced);
    let graph = Graph::new(input);
    let cx = Ctxt::new();
    for error in misplaced {
        cx.syn_error(error);
    }
    check::check(&cx, &graph);
    cx.check()?;
    let plan = plan::plan(&graph.deps());
    Ok(Expander::new(&graph, &plan).expand(&plan))
}

/// A clone of a value handed to a consumer.
struct CloneFor {
    /// The `Owned` wrapper that carries it.
    var: Ident,
    /// The use that needs it: where a missing `Clone` is reported.
    site: Span,
    /// Why it is made, when that is not plain from the uses: the message for a value that is
    /// not `Clone`.
    why: Option<String>,
}

/// Who uses a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Consumer {
    Node(usize),
    /// The trailing expression.
    Tail,
}

/// A use of a value seen from the scope that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// A statement of the scope, the output, or a branch that is one node.
    Consumer(Consumer),
    /// A branch of several nodes, named by its first node: it takes one value for all its
    /// consumers, as a hand-written `async move` block would, and hands it on to them.
    Branch(usize),
    /// Returned from the scope to the enclosing one.
    Export,
}

/// One target of a value in a scope, with how it uses the value.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The stage it is in; `usize::MAX` after the last one.
    stage: usize,
    mode: Mode,
    target: Target,
    /// The first consumer that takes the value by value: where a missing `Clone` is reported.
    taker: Option<Consumer>,
}

struct Expander<'a> {
    graph: &'a Graph,
    krate: &'a TokenStream,
    /// Whether each node's value lives in a slot (some consumer is not sequenced after it).
    in_slot: Vec<bool>,
    /// The field of each such node's slot in the tuple of slots.
    slot_index: Vec<usize>,
    /// Per producer: consumers with their mode, in order.
    consumers: Vec<Vec<(Consumer, Mode)>>,
    /// Per producer: consumers that wait on its slot, with their waker index.
    waiter_index: BTreeMap<(usize, usize), usize>,
    /// The `Owned` wrapper each consumer takes its own value from, where it does not use the
    /// binding of the scope itself.
    handed: BTreeMap<(usize, Consumer), Ident>,
    /// Per branch of several nodes (by its first node): the values handed into it, with their
    /// wrappers.
    incoming: BTreeMap<usize, Vec<(usize, Ident)>>,
    /// Numbers the wrappers of values handed into branches.
    wrappers: usize,
    /// The declarations of the tuples of slots, in order; see `declare_slots`.
    slot_tuples: Vec<TokenStream>,
    /// How many of them are emitted so far.
    declared: usize,
    /// Numbers the groups of branches made before their join.
    groups: usize,
}

impl<'a> Expander<'a> {
    fn new(graph: &'a Graph, plan: &Plan) -> Self {
        let n = graph.len();
        let barriers = plan::barriers(plan, n);
        let mut consumers = vec![Vec::new(); n];
        let mut in_slot = vec![false; n];
        let mut waiter_index = BTreeMap::new();
        let mut waiters = vec![0; n];
        for (c, node) in graph.nodes.iter().enumerate() {
            for u in &node.uses {
                let p = u.node.0;
                consumers[p].push((Consumer::Node(c), u.mode));
                if !barriers[c].contains(&p) {
                    in_slot[p] = true;
                }
                waiter_index.insert((p, c), waiters[p]);
                waiters[p] += 1;
            }
        }
        for u in &graph.tail_uses {
            consumers[u.node.0].push((Consumer::Tail, u.mode));
        }
        let mut slot_index = vec![usize::MAX; n];
        for (i, v) in (0..n).filter(|&v| in_slot[v]).enumerate() {
            slot_index[v] = i;
        }
        let slot_tuples = slot_tuples(&graph.krate, &in_slot, &consumers);
        Expander {
            graph,
            krate: &graph.krate,
            in_slot,
            slot_index,
            consumers,
            waiter_index,
            handed: BTreeMap::new(),
            incoming: BTreeMap::new(),
            wrappers: 0,
            slot_tuples,
            declared: 0,
            groups: 0,
        }
    }

    fn expand(mut self, plan: &Plan) -> TokenStream {
        let stages: Vec<Plan> = match plan {
            Plan::Seq(parts) => parts.clone(),
            other => vec![other.clone()],
        };
        let body = self.seq(&stages, &[], true, &[]);
        let tail = self.tail();
        let move_token = &self.graph.move_token;
        let output = if self.graph.fallible() {
            let error = self.error_type();
            let tail = if tail.is_empty() {
                quote!(())
            } else {
                quote!({ #tail })
            };
            quote!(::core::result::Result::<_, #error>::Ok(#tail))
        } else {
            tail
        };
        let krate = self.krate;
        let future = quote! {
            #krate::__private::dag(async #move_token {
                #body
                #output
            })
        };
        // At the trailing expression's first token: when the graph's output is a future where
        // a value is expected, rustc points there, and not into this crate.
        match self
            .graph
            .tail
            .as_ref()
            .and_then(|t| t.to_token_stream().into_iter().next())
        {
            Some(first) => block_at(first.span(), &future),
            None => future,
        }
    }

    /// `span` with the hygiene of the `dag!` shim in this crate, of edition 2021: a block made
    /// with it keeps the temporaries of its tail expression until the end of the enclosing
    /// statement, as in edition 2021, whatever the caller's edition. In edition 2024 they
    /// would be dropped at the end of the block.
    fn edition_2021(&self, span: Span) -> Span {
        let shim = self.krate.clone().into_iter().next();
        shim.map_or(span, |token| token.span().located_at(span))
    }

    /// The error type of a fallible graph.
    fn error_type(&self) -> TokenStream {
        let krate = self.krate;
        if let Some(option) = &self.graph.error_type {
            quote::ToTokens::to_token_stream(&option.ty)
        } else {
            quote!(#krate::__private::anyhow::Error)
        }
    }

    /// `Ok::<_, E>(value)` in a fallible graph, else `value`.
    fn ok(&self, value: TokenStream) -> TokenStream {
        if self.graph.fallible() {
            let error = self.error_type();
            quote!(::core::result::Result::<_, #error>::Ok(#value))
        } else {
            value
        }
    }

    fn name(&self, v: usize) -> &Ident {
        &self.graph.nodes[v].name
    }

    /// The slot of node `v`: a field of one of the tuples that hold the graph's slots.
    fn slot(&self, v: usize) -> TokenStream {
        let index = self.slot_index[v];
        let slots = slots_ident(index / SLOTS_PER_TUPLE);
        let field = syn::Index::from(index % SLOTS_PER_TUPLE);
        quote!(#slots.#field)
    }

    /// Declares the tuples of slots up to the one holding the slot numbered `last`, those not
    /// declared yet.
    ///
    /// A slot's type is inferred from the branch that sets it, and rustc re-examines the
    /// pending obligations of every slot whose type is still unknown at each step of its type
    /// check, so that declaring all slots first makes type-checking quadratic (the 1000-node
    /// layered graph: about 3 s of 10 s). Declared just before the branch that sets them, at
    /// most one tuple's slots are unknown at a time.
    fn declare_slots(&mut self, last: usize) -> TokenStream {
        let upto = (last / SLOTS_PER_TUPLE + 1).min(self.slot_tuples.len());
        let mut out = TokenStream::new();
        while self.declared < upto {
            out.extend(self.slot_tuples[self.declared].clone());
            self.declared += 1;
        }
        out
    }

    /// The highest-numbered slot that the nodes of `part` set or read, if any.
    fn last_slot(&self, part: &Plan) -> Option<usize> {
        let mut last = None;
        for v in nodes_of(part) {
            let read = self.graph.nodes[v].uses.iter().map(|u| u.node.0);
            for s in read.chain([v]).filter(|&s| self.in_slot[s]) {
                last = last.max(Some(self.slot_index[s]));
            }
        }
        last
    }

    /// How a consumer takes a value out of a slot.
    fn take_method(&self, p: usize) -> Ident {
        let takers = self.consumers[p]
            .iter()
            .filter(|(_, m)| *m == Mode::Own)
            .count();
        let borrowers = self.consumers[p].len() - takers;
        let name = if borrowers > 0 {
            "take_clone"
        } else if takers == 1 {
            "take_unique"
        } else {
            "take_shared"
        };
        Ident::new(name, Span::call_site())
    }

    /// Statements for the parts of a `Seq`, then (unless `top`) the exported values.
    /// `incoming`: values handed into the scope, each with its wrapper.
    fn seq(
        &mut self,
        stages: &[Plan],
        exports: &[usize],
        top: bool,
        incoming: &[(usize, Ident)],
    ) -> TokenStream {
        // Per node: its stage, and the branch of several nodes it is in, if any.
        let mut place = BTreeMap::new();
        for (i, stage) in stages.iter().enumerate() {
            match stage {
                Plan::Par(parts) => {
                    for part in parts {
                        let nodes = nodes_of(part);
                        let branch = (nodes.len() > 1).then(|| nodes[0]);
                        for v in nodes {
                            place.insert(v, (i, branch));
                        }
                    }
                }
                _ => {
                    for v in nodes_of(stage) {
                        place.insert(v, (i, None));
                    }
                }
            }
        }
        let mut out = TokenStream::new();
        // Clones and hand-overs waiting for the stage of their consumer.
        let mut handovers: BTreeMap<usize, TokenStream> = BTreeMap::new();
        for (p, var) in incoming {
            let name = self.name(*p);
            out.extend(quote!(let #name = #var.into_inner();));
        }
        for &(p, _) in incoming {
            for (stage, tokens) in self.distribute(p, 0, stages, &place, exports, top) {
                handovers.entry(stage).or_default().extend(tokens);
            }
        }
        for (i, stage) in stages.iter().enumerate() {
            if let Some(tokens) = handovers.remove(&i) {
                out.extend(tokens);
            }
            // A branch that ends with the node it returns: `..; (EXPR).await` rather than
            // `..; let v = (EXPR).await; v`.
            if let (Plan::Node(v), [export], false) = (stage, exports, top) {
                if i + 1 == stages.len() && v == export && !self.in_slot[*v] {
                    let value = self.awaited(*v);
                    out.extend(self.ok(value));
                    return out;
                }
            }
            let inside = nodes_of(stage);
            let bound: Vec<usize> = inside
                .iter()
                .copied()
                .filter(|&p| {
                    !self.in_slot[p]
                        && self.consumers[p]
                            .iter()
                            .any(|(c, _)| !inside_consumer(&inside, *c))
                })
                .collect();
            out.extend(self.stage(stage, &bound, top));
            for &p in &bound {
                for (stage, tokens) in self.distribute(p, i + 1, stages, &place, exports, top) {
                    handovers.entry(stage).or_default().extend(tokens);
                }
            }
        }
        out.extend(handovers.into_values());
        if !top && (!exports.is_empty() || self.graph.fallible()) {
            let values = self.values(exports);
            out.extend(self.ok(values));
        }
        out
    }

    /// Once `p` is held in a scope (bound by a stage or handed in), from stage `first` on:
    /// decides which target gets the value itself and clones it for the other targets that
    /// need their own. A branch of several nodes is one target, whatever the number of its
    /// consumers. Consumers in the stage that binds `p` are served inside that stage.
    ///
    /// Returns the statements with the stage they are for: each is made just before that
    /// stage, so that it does not live across earlier awaits.
    fn distribute(
        &mut self,
        p: usize,
        first: usize,
        stages: &[Plan],
        place: &BTreeMap<usize, (usize, Option<usize>)>,
        exports: &[usize],
        top: bool,
    ) -> Vec<(usize, TokenStream)> {
        let entries = self.targets(p, first, place, exports, top);
        let mover = mover(&entries);
        // One taker that gets a clone only because others borrow the value meanwhile: the
        // error for a value that is not `Clone` says so.
        let takers = entries.iter().filter(|e| e.mode == Mode::Own).count();
        let borrowed_meanwhile = mover.is_none() && takers == 1;
        // Per stage: the clones made for it, and the wrapper the value itself moves into.
        let mut clones: BTreeMap<usize, Vec<CloneFor>> = BTreeMap::new();
        let mut moved_into: BTreeMap<usize, Ident> = BTreeMap::new();
        for (i, entry) in entries.iter().enumerate() {
            if entry.mode == Mode::Borrow || entry.target == Target::Export {
                // A borrow reads the scope's value; an export returns the value itself.
                continue;
            }
            // A statement of this scope or the output reads the value in place.
            let in_place = match entry.target {
                Target::Consumer(Consumer::Tail) => true,
                Target::Consumer(Consumer::Node(v)) => {
                    matches!(stages.get(entry.stage), Some(Plan::Node(s)) if *s == v)
                }
                Target::Branch(_) | Target::Export => false,
            };
            if in_place && Some(i) == mover {
                continue;
            }
            let var = self.wrapper(p, entry.target);
            if Some(i) == mover {
                moved_into.insert(entry.stage, var);
            } else {
                let site = entry
                    .taker
                    .map_or_else(Span::call_site, |c| self.site(p, c));
                let why = match entry.taker {
                    Some(Consumer::Node(taker)) if borrowed_meanwhile => {
                        Some(self.moved_while_borrowed(p, taker, entry.stage, place))
                    }
                    _ => None,
                };
                clones
                    .entry(entry.stage)
                    .or_default()
                    .push(CloneFor { var, site, why });
            }
        }
        let name = self.name(p);
        let krate = self.krate;
        let mut out: Vec<(usize, TokenStream)> = clones
            .into_iter()
            .map(|(stage, made)| (stage, self.clone_statement(p, &made)))
            .collect();
        // The move comes after every clone made for the same stage.
        out.extend(
            moved_into
                .into_iter()
                .map(|(stage, var)| (stage, quote!(let #var = #krate::__private::Owned(#name);))),
        );
        out
    }

    /// The targets of `p` in a scope from stage `first` on: each consumer in place or in a
    /// branch of one node, each branch of several nodes with a consumer, the output (at `top`)
    /// and the export.
    fn targets(
        &self,
        p: usize,
        first: usize,
        place: &BTreeMap<usize, (usize, Option<usize>)>,
        exports: &[usize],
        top: bool,
    ) -> Vec<Entry> {
        const LAST: usize = usize::MAX;
        let mut entries: Vec<Entry> = Vec::new();
        for &(c, mode) in &self.consumers[p] {
            let (stage, target) = match c {
                Consumer::Node(v) => match place.get(&v) {
                    Some(&(stage, _)) if stage < first => continue,
                    Some(&(stage, Some(branch))) => (stage, Target::Branch(branch)),
                    Some(&(stage, None)) => (stage, Target::Consumer(c)),
                    None => continue,
                },
                Consumer::Tail if top => (LAST, Target::Consumer(c)),
                Consumer::Tail => continue,
            };
            let taker = (mode == Mode::Own).then_some(c);
            if let Some(entry) = entries.iter_mut().find(|e| e.target == target) {
                if mode == Mode::Own {
                    entry.mode = Mode::Own;
                    entry.taker = entry.taker.or(taker);
                }
            } else {
                entries.push(Entry {
                    stage,
                    mode,
                    target,
                    taker,
                });
            }
        }
        if exports.contains(&p) {
            entries.push(Entry {
                stage: LAST,
                mode: Mode::Own,
                target: Target::Export,
                taker: None,
            });
        }
        entries
    }

    /// The `Owned` wrapper that carries `p` to `target`, registered for the consumer or the
    /// branch that takes it.
    fn wrapper(&mut self, p: usize, target: Target) -> Ident {
        let name = unraw(self.name(p));
        match target {
            Target::Consumer(c) => {
                // Numbered: names alone can meet (`x` for `y_for_z`, `x_for_y` for `z`).
                self.wrappers += 1;
                let var = match c {
                    Consumer::Node(v) => format_ident!(
                        "__dag_{}_for_{}_{}",
                        name,
                        unraw(self.name(v)),
                        self.wrappers,
                        span = Span::mixed_site()
                    ),
                    Consumer::Tail => {
                        format_ident!("__dag_{}_for_output", name, span = Span::mixed_site())
                    }
                };
                self.handed.insert((p, c), var.clone());
                var
            }
            Target::Branch(first) => {
                self.wrappers += 1;
                let var = format_ident!(
                    "__dag_{}_into_branch_{}",
                    name,
                    self.wrappers,
                    span = Span::mixed_site()
                );
                self.incoming
                    .entry(first)
                    .or_default()
                    .push((p, var.clone()));
                var
            }
            Target::Export => unreachable!("an export returns the value itself"),
        }
    }

    /// The message for a value that is not `Clone`, where task `taker` is the only one that
    /// takes `p` by value, in stage `stage`, and others borrow it in that stage or later.
    fn moved_while_borrowed(
        &self,
        p: usize,
        taker: usize,
        stage: usize,
        place: &BTreeMap<usize, (usize, Option<usize>)>,
    ) -> String {
        let borrowers: Vec<String> = self.consumers[p]
            .iter()
            .filter_map(|&(c, mode)| match c {
                Consumer::Node(v) if mode == Mode::Borrow => Some(v),
                _ => None,
            })
            .filter(|v| place.get(v).is_none_or(|&(s, _)| s >= stage))
            .map(|v| format!("`{}`", unraw(self.name(v))))
            .collect();
        let (value, taker) = (unraw(self.name(p)), unraw(self.name(taker)));
        let ways_out = format!("let `{taker}` borrow `{value}` too, or wrap it in an `Arc`");
        let (borrowers, order) = match borrowers.as_slice() {
            // Nothing runs after the output.
            [] => ("the output".to_owned(), String::new()),
            [one] => (
                one.clone(),
                format!(
                    "to move `{value}` once {one} is done, make `{taker}` use {one}'s value; or "
                ),
            ),
            [init @ .., last] => {
                let all = format!("{} and {last}", init.join(", "));
                let order = format!(
                    "to move `{value}` once {all} are done, make `{taker}` use their values; or "
                );
                (all, order)
            }
        };
        format!(
            "task `{taker}` takes `{value}` by value while {borrowers} may still borrow it, so `{taker}` needs its own copy, and `{{Self}}` is not `Clone`; {order}{ways_out}"
        )
    }

    /// `let (c1, .., p) = { let p = p; (Owned(clone(&p)), .., p) };`: the clones in `made`,
    /// each pointing at the use a missing `Clone` is reported at, then `p` again.
    ///
    /// The clones borrow a copy of `p` that ends with the block: a local that is ever borrowed
    /// stays in the future's state until its scope ends, and the scope's own `p` would then be
    /// kept across every later await.
    fn clone_statement(&self, p: usize, made: &[CloneFor]) -> TokenStream {
        let krate = self.krate;
        let name = self.name(p);
        let mut items = TokenStream::new();
        let vars = made.iter().map(|made| &made.var);
        let values: Vec<TokenStream> = made
            .iter()
            .map(|made| {
                let site = made.site;
                let mut at_site = name.clone();
                at_site.set_span(site);
                let clone = match &made.why {
                    None => quote_spanned!(site=> ::core::clone::Clone::clone),
                    Some(message) => {
                        // A trait of its own, whose error says why this clone is made; one
                        // per block at most, as there is one taker.
                        let name = Ident::new("TakenWhileBorrowed", Span::mixed_site());
                        items.extend(quote! {
                            #[diagnostic::on_unimplemented(message = #message)]
                            trait #name { fn __dag_clone(&self) -> Self; }
                            impl<T: ::core::clone::Clone> #name for T {
                                #[inline]
                                fn __dag_clone(&self) -> Self { ::core::clone::Clone::clone(self) }
                            }
                        });
                        quote_spanned!(site=> #name::__dag_clone)
                    }
                };
                quote_spanned! {site=>
                    #krate::__private::Owned(#clone(&#at_site))
                }
            })
            .collect();
        quote! {
            let (#(#vars,)* #name) = { #items let #name = #name; (#(#values,)* #name) };
        }
    }

    /// Where consumer `c` names `p`: the place errors about that use point at.
    fn site(&self, p: usize, c: Consumer) -> Span {
        let uses = match c {
            Consumer::Node(v) => &self.graph.nodes[v].uses,
            Consumer::Tail => &self.graph.tail_uses,
        };
        uses.iter()
            .find(|u| u.node == NodeId(p))
            .map_or_else(Span::call_site, |u| u.site.span())
    }

    /// `p`, `(p, q)` or `()`.
    fn values(&self, nodes: &[usize]) -> TokenStream {
        let names = nodes.iter().map(|&v| self.name(v));
        if let [v] = nodes {
            let name = self.name(*v);
            quote!(#name)
        } else {
            quote!((#(#names),*))
        }
    }

    /// The pattern that binds a part's exports: `p`, `(p, q)` or `_`.
    fn pattern(&self, nodes: &[usize]) -> TokenStream {
        if nodes.is_empty() {
            quote!(_)
        } else {
            self.values(nodes)
        }
    }

    /// One part of a `Seq`: binds the values in `bound`. `top`: the part is a statement of
    /// the graph's own future, where the slots are declared.
    fn stage(&mut self, stage: &Plan, bound: &[usize], top: bool) -> TokenStream {
        match stage {
            Plan::Node(v) => {
                let v = *v;
                let value = self.awaited(v);
                if self.in_slot[v] {
                    let declarations = if top {
                        self.declare_slots(self.slot_index[v])
                    } else {
                        TokenStream::new()
                    };
                    let set = set_slot(&self.slot(v), &value);
                    quote!(#declarations #set)
                } else if bound.contains(&v) {
                    let name = self.name(v);
                    quote!(let #name = #value;)
                } else {
                    quote!(#value;)
                }
            }
            Plan::Par(parts) => {
                let mut branches = Vec::with_capacity(parts.len());
                let mut patterns = Vec::with_capacity(parts.len());
                // Branches that use slots are made before the join, each just after the slots
                // it uses are declared (see `declare_slots`): `let __dag_branches_N = (..);`,
                // one local for the branches made after the same declarations (a local per
                // branch would slow rustc's coroutine passes down as one per slot did).
                let mut made = TokenStream::new();
                // The open group: its position in `branches` and its members.
                let mut group: Option<(usize, Vec<TokenStream>, Vec<TokenStream>)> = None;
                for part in parts {
                    let inside = nodes_of(part);
                    let exports: Vec<usize> = bound
                        .iter()
                        .copied()
                        .filter(|v| inside.contains(v))
                        .collect();
                    let pattern = self.pattern(&exports);
                    let Some(last) = self.last_slot(part).filter(|_| top) else {
                        // A group is a run of branches: the join polls them in their order.
                        made.extend(self.close_group(group.take(), &mut branches, &mut patterns));
                        branches.push(self.branch(part, &exports));
                        patterns.push(pattern);
                        continue;
                    };
                    let declarations = self.declare_slots(last);
                    let branch = self.branch(part, &exports);
                    if !declarations.is_empty() {
                        made.extend(self.close_group(group.take(), &mut branches, &mut patterns));
                        made.extend(declarations);
                    }
                    let (_, members, member_patterns) = group.get_or_insert_with(|| {
                        branches.push(TokenStream::new());
                        patterns.push(TokenStream::new());
                        (branches.len() - 1, Vec::new(), Vec::new())
                    });
                    members.push(branch);
                    member_patterns.push(pattern);
                }
                made.extend(self.close_group(group, &mut branches, &mut patterns));
                let join = self.join(parts.len(), &branches, &patterns);
                quote!(#made #join)
            }
            Plan::Seq(_) => unreachable!("a Seq has no Seq parts"),
        }
    }

    /// Binds a group of branches made before their join to a local, which takes the group's
    /// place (at `at`) in the join's branches; the pattern there takes the group's outputs.
    fn close_group(
        &mut self,
        group: Option<(usize, Vec<TokenStream>, Vec<TokenStream>)>,
        branches: &mut [TokenStream],
        patterns: &mut [TokenStream],
    ) -> TokenStream {
        let Some((at, members, member_patterns)) = group else {
            return TokenStream::new();
        };
        self.groups += 1;
        let var = format_ident!("__dag_branches_{}", self.groups, span = Span::mixed_site());
        let tuple = nest(&members);
        branches[at] = quote!(#var);
        patterns[at] = nest(&member_patterns);
        quote!(let #var = #tuple;)
    }

    /// A branch of a join, as `branch(future)`; the future's output is `exports`.
    fn branch(&mut self, part: &Plan, exports: &[usize]) -> TokenStream {
        let krate = self.krate;
        match part {
            Plan::Node(v) => {
                let v = *v;
                let span = self.graph.nodes[v].expr.span();
                let future = if self.in_slot[v] {
                    let set = set_slot(&self.slot(v), &self.awaited(v));
                    let done = self.ok(quote!(()));
                    quote_spanned!(span=> async { #set #done })
                } else if self.graph.fallible() {
                    let value = self.awaited(v);
                    let value = self.ok(value);
                    quote_spanned!(span=> async { #value })
                } else {
                    let (prelude, expr) = self.node_code(v);
                    let future = self.placed(v, &expr);
                    let uses = &self.graph.nodes[v].uses;
                    let waits = uses.iter().any(|u| self.in_slot[u.node.0]);
                    // `f(&a, a)`: a copy handed over that the expression also borrows.
                    let borrows_copy = uses.iter().any(|u| {
                        u.ref_site.is_some()
                            && self.handed.contains_key(&(u.node.0, Consumer::Node(v)))
                    });
                    if prelude.is_empty() {
                        future
                    } else if waits || borrows_copy || may_capture_by_reference(&expr) {
                        // The values taken or handed over are locals of this block, which
                        // lives as long as the future: the expression may borrow them, and
                        // a closure or an `async` block may capture them by reference (a
                        // `Copy` value used by value, too).
                        quote_spanned!(span=> async { #prelude (#future).await })
                    } else {
                        // Only values handed over: take them and make the future in place, as
                        // `join!(f(a.clone()), ..)` would, without a wrapping async block.
                        let mut block = Group::new(Delimiter::Brace, quote!(#prelude #future));
                        block.set_span(self.edition_2021(span));
                        quote!(#block)
                    }
                };
                quote_spanned!(span=> #krate::__private::branch(#future))
            }
            Plan::Seq(stages) => {
                let incoming = self.incoming.remove(&nodes_of(part)[0]).unwrap_or_default();
                let body = self.seq(stages, exports, false, &incoming);
                quote!(#krate::__private::branch(async { #body }))
            }
            Plan::Par(_) => unreachable!("a Par has no Par parts"),
        }
    }

    /// `let (patterns..) = join((branches..)).await;`, nesting tuples for wide joins.
    /// `leaves`: the number of branches, counting those inside groups.
    fn join(
        &self,
        leaves: usize,
        branches: &[TokenStream],
        patterns: &[TokenStream],
    ) -> TokenStream {
        let krate = self.krate;
        let wide = leaves > FLAT_JOIN_LIMIT;
        let fallible = self.graph.fallible();
        let function = match (fallible, wide) {
            (false, false) => quote!(join),
            (false, true) => quote!(join_wide),
            (true, false) => quote!(try_join),
            (true, true) => quote!(try_join_wide),
        };
        let question = fallible.then(|| quote!(?));
        let branches = nest(branches);
        let pattern = nest(patterns);
        quote! {
            let #pattern = #krate::__private::#function(#branches).await #question;
        }
    }

    /// The future a node runs, given its expression: the expression's own future, or the
    /// expression spawned as a task or run on the blocking pool.
    fn placed(&self, v: usize, expr: &TokenStream) -> TokenStream {
        let krate = self.krate;
        let span = self.graph.nodes[v].expr.span();
        match self.graph.nodes[v].placement {
            // Through `task`, whose error for an expression that is not a future says so.
            Placement::Inline => quote!(#krate::__private::task(#expr)),
            Placement::Spawn => quote_spanned!(span=> #krate::__private::spawn(#expr)),
            Placement::Blocking => {
                quote_spanned!(span=> #krate::__private::spawn_blocking(move || #expr))
            }
        }
    }

    /// A node's value: `{ prelude; (EXPR).await }`, with the error converted and returned
    /// for a fallible node; for a node with a timeout or retries, its attempts.
    fn awaited(&mut self, v: usize) -> TokenStream {
        let (prelude, expr) = self.node_code(v);
        let node = &self.graph.nodes[v];
        let future = self.placed(v, &expr);
        if node.timeout.is_some() || node.retry.is_some() {
            return self.attempts(v, &prelude, &future);
        }
        let span = node.expr.span();
        let mut value = quote_spanned!(span=> (#future).await);
        if let Some(question) = node.question {
            let krate = self.krate;
            let span = question.span;
            let name = unraw(&node.name);
            value = if self.graph.error_type.is_some() {
                quote_spanned!(span=> #value?)
            } else {
                quote_spanned!(span=> ::core::result::Result::map_err(#value, |e| #krate::__private::task_error(e, #name))?)
            };
        }
        if prelude.is_empty() {
            value
        } else {
            quote!({ #prelude #value })
        }
    }

    /// The value of a node with `#[timeout(..)]` or `#[retry(..)]`:
    ///
    /// ```text
    /// {
    ///     PRELUDE
    ///     let a = a;                      // each input it takes by value
    ///     let limit: Duration = LIMIT;
    ///     let retries: u32 = N;
    ///     let mut retry = Retry::new(retries);
    ///     loop {
    ///         let a = clone_for_retry(&a);
    ///         let result = ATTEMPT;       // Result<T, the graph's error>
    ///         match result {
    ///             Ok(value) => break value,
    ///             Err(error) => retry.failed(error).await?,
    ///         }
    ///     }
    /// }
    /// ```
    ///
    /// Without `#[retry]`, `ATTEMPT?` in place of the loop.
    fn attempts(&self, v: usize, prelude: &TokenStream, future: &TokenStream) -> TokenStream {
        let krate = self.krate;
        let node = &self.graph.nodes[v];
        let span = node.expr.span();
        let name = unraw(&node.name);
        let mut value = quote_spanned!(span=> (#future).await);
        let mut setup = TokenStream::new();
        if let Some(timeout) = &node.timeout {
            let limit_span = timeout.limit.span();
            let limit_expr = &timeout.limit;
            let limit = Ident::new("__dag_limit", Span::mixed_site());
            setup.extend(quote_spanned! {limit_span=>
                let #limit: ::core::time::Duration = #limit_expr;
            });
            // At the attribute, where an error about the timer points.
            let at_attr = block_at(timeout.span, &quote!(#limit));
            let timed_out = if let Some(option) = &self.graph.error_type {
                let ty = &option.ty;
                let ty = respan(quote::ToTokens::to_token_stream(ty), timeout.span);
                quote_spanned!(timeout.span=> |e| #krate::__private::timed_out_into::<#ty>(e))
            } else {
                quote_spanned!(timeout.span=> #krate::__private::timed_out)
            };
            value = quote_spanned! {span=>
                ::core::result::Result::map_err(
                    #krate::__private::timeout(#at_attr, #name, #future).await,
                    #timed_out,
                )
            };
        }
        if let Some(question) = node.question {
            let error = if let Some(option) = &self.graph.error_type {
                let ty = &option.ty;
                quote_spanned!(question.span=> <#ty as ::core::convert::From<_>>::from)
            } else {
                quote_spanned!(question.span=> |e| #krate::__private::task_error(e, #name))
            };
            value = if node.timeout.is_some() {
                quote_spanned! {question.span=>
                    ::core::result::Result::and_then(#value, |r| ::core::result::Result::map_err(r, #error))
                }
            } else {
                quote_spanned!(question.span=> ::core::result::Result::map_err(#value, #error))
            };
        }
        let Some(retry) = &node.retry else {
            return quote!({ #prelude #setup #value? });
        };
        let retries_expr = &retry.retries;
        let retries = Ident::new("__dag_retries", Span::mixed_site());
        setup.extend(quote_spanned! {retries_expr.span()=>
            let #retries: u32 = #retries_expr;
        });
        let state = Ident::new("__dag_retry", Span::mixed_site());
        let make = match &retry.backoff {
            None => quote!(#krate::__private::Retry::new(#retries)),
            Some(backoff) => quote_spanned! {retry.span=>
                #krate::__private::retry_with_backoff(#retries, #backoff)
            },
        };
        let mut keep = TokenStream::new();
        let mut copies = TokenStream::new();
        for u in node.uses.iter().filter(|u| u.mode == Mode::Own) {
            let input = self.name(u.node.0);
            let mut at_site = input.clone();
            at_site.set_span(u.site.span());
            keep.extend(quote!(let #input = #input;));
            // All at the use: the error for a value that is not `Clone` points there.
            copies.extend(quote_spanned! {at_site.span()=>
                let #input = #krate::__private::clone_for_retry(&#at_site);
            });
        }
        let (result, ok, err) = (
            Ident::new("__dag_result", Span::mixed_site()),
            Ident::new("__dag_value", Span::mixed_site()),
            Ident::new("__dag_error", Span::mixed_site()),
        );
        // The attempt's result is bound first: the temporaries of its expression end with the
        // attempt, not after the backoff.
        quote! {{
            #prelude
            #keep
            #setup
            let mut #state = #make;
            loop {
                #copies
                let #result = #value;
                match #result {
                    ::core::result::Result::Ok(#ok) => break #ok,
                    ::core::result::Result::Err(#err) => #state.failed(#err).await?,
                }
            }
        }}
    }

    /// What a node needs before its expression (waits on slots, values taken from slots or
    /// clones given to it) and the expression, rewritten where it borrows from a slot.
    fn node_code(&self, v: usize) -> (TokenStream, TokenStream) {
        let node = &self.graph.nodes[v];
        let (inputs, replace) = self.inputs(&node.uses, Consumer::Node(v));
        let expr = if replace.is_empty() {
            node.expr.clone()
        } else {
            uses::rewrite(&self.graph.names, &node.expr, &replace)
        };
        let mut tokens = TokenStream::new();
        quote::ToTokens::to_tokens(&expr, &mut tokens);
        let mut prelude = self.hints(&node.free, &node.uses);
        prelude.extend(inputs);
        (prelude, tokens)
    }

    /// For each node whose name one of the `free` variables of an expression nearly spells: a
    /// binding of its name, in scope of that expression only. If the variable is a typo,
    /// rustc's "cannot find value" then says that a similar name exists.
    fn hints(&self, free: &[Ident], uses: &[graph::Use]) -> TokenStream {
        if free.is_empty() {
            return TokenStream::new();
        }
        self.graph
            .near_misses(free, uses)
            .into_iter()
            .map(|name| quote!(let #name: () = (); let _ = #name;))
            .collect()
    }

    fn inputs(
        &self,
        uses: &[graph::Use],
        consumer: Consumer,
    ) -> (TokenStream, BTreeMap<NodeId, TokenStream>) {
        let mut waits = TokenStream::new();
        let mut bindings = TokenStream::new();
        let mut replace = BTreeMap::new();
        for u in uses {
            let p = u.node.0;
            let name = self.name(p);
            let site = u.site.span();
            if self.in_slot[p] {
                let slot = self.slot(p);
                if let Consumer::Node(c) = consumer {
                    let index = self.waiter_index[&(p, c)];
                    waits.extend(quote!(#slot.wait(#index).await;));
                }
                match u.mode {
                    Mode::Own => {
                        let mut take = self.take_method(p);
                        take.set_span(site);
                        bindings.extend(quote_spanned!(site=> let #name = #slot.#take();));
                    }
                    Mode::Borrow => {
                        let r =
                            format_ident!("__dag_{}_ref", unraw(name), span = Span::mixed_site());
                        bindings.extend(quote!(let #r = #slot.get();));
                        if u.in_format_string {
                            bindings.extend(quote!(let #name = #r;));
                        }
                        replace.insert(u.node, uses::deref_tokens(&r));
                    }
                }
            } else if let Some(var) = self.handed.get(&(p, consumer)) {
                bindings.extend(quote!(let #name = #var.into_inner();));
            }
        }
        waits.extend(bindings);
        (waits, replace)
    }

    fn tail(&self) -> TokenStream {
        let Some(tail) = &self.graph.tail else {
            return TokenStream::new();
        };
        let (inputs, replace) = self.inputs(&self.graph.tail_uses, Consumer::Tail);
        let mut prelude = self.hints(&self.graph.tail_free, &self.graph.tail_uses);
        prelude.extend(inputs);
        let tail = if replace.is_empty() {
            tail.clone()
        } else {
            uses::rewrite(&self.graph.names, tail, &replace)
        };
        let span = tail.span();
        quote_spanned!(span=> #prelude #tail)
    }
}

/// Whether `expr` has a closure, an `async` block or a macro call (a `|`, the `async` keyword
/// or a `!` anywhere, macro arguments included): those may capture or borrow the variables
/// they name (a nested `dag!` is an `async` block).
fn may_capture_by_reference(expr: &TokenStream) -> bool {
    expr.clone().into_iter().any(|tree| match tree {
        TokenTree::Group(group) => may_capture_by_reference(&group.stream()),
        TokenTree::Ident(ident) => ident == "async",
        TokenTree::Punct(punct) => matches!(punct.as_char(), '|' | '!'),
        TokenTree::Literal(_) => false,
    })
}

/// `{ ; EXPR }`, a block with the single span `span`: an error about the expression's type
/// points there. The empty statement keeps `unused_braces` quiet.
fn block_at(span: Span, expr: &TokenStream) -> TokenStream {
    let mut block = Group::new(Delimiter::Brace, quote!(; #expr));
    block.set_span(span);
    quote!(#block)
}

/// `tokens` with every span set to `span`, where an error about them belongs.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span.located_at(span));
            }
            tree
        })
        .collect()
}

/// How many slots one local of the graph's future holds; see `slot_tuples`.
const SLOTS_PER_TUPLE: usize = 32;

/// The declarations of the graph's slots, in tuples of up to [`SLOTS_PER_TUPLE`], each a
/// local of the graph's future: `let __dag_slots_N = (Slot::<_, WAITERS>::new(TAKERS), ..);`.
///
/// Not one local per slot: rustc's coroutine passes grow faster than linearly with the number
/// of locals held across an await (the 1000-node layered graph, 849 slots, compiled in 31 s
/// with one local per slot, 20 s with one tuple). Not one tuple for all: until the slots'
/// types are inferred, each use of a field makes rustc resolve the whole tuple's type (19.3 s
/// with one tuple, 14.9 s with tuples of 32). Branches reach the slots as fields of the tuples
/// themselves, so each captures a reference per slot it uses: one reference to a tuple would
/// save 8 bytes per extra slot, but gives every branch the tuple's type, which doubled that
/// compile time.
fn slot_tuples(
    krate: &TokenStream,
    in_slot: &[bool],
    consumers: &[Vec<(Consumer, Mode)>],
) -> Vec<TokenStream> {
    let mut slots = Vec::new();
    for v in (0..in_slot.len()).filter(|&v| in_slot[v]) {
        let waiters = consumers[v]
            .iter()
            .filter(|(c, _)| matches!(c, Consumer::Node(_)))
            .count();
        let takers = consumers[v].iter().filter(|(_, m)| *m == Mode::Own).count();
        slots.push(quote!(#krate::__private::Slot::<_, #waiters>::new(#takers)));
    }
    slots
        .chunks(SLOTS_PER_TUPLE)
        .enumerate()
        .map(|(i, chunk)| {
            let name = slots_ident(i);
            quote!(let #name = (#(#chunk,)*);)
        })
        .collect()
}

/// The local that holds the `chunk`th tuple of slots.
fn slots_ident(chunk: usize) -> Ident {
    format_ident!("__dag_slots_{}", chunk, span = Span::mixed_site())
}

/// Statements that put `value` (an awaited expression) into `slot`: the value first, so that
/// the branch does not hold a reference to the slot across the node's awaits.
fn set_slot(slot: &TokenStream, value: &TokenStream) -> TokenStream {
    let local = Ident::new("__dag_value", Span::mixed_site());
    quote! {
        let #local = #value;
        #slot.set(#local);
    }
}

/// Which entry gets the value itself: the last that takes it by value, after every borrow;
/// at the same stage, the export, else the first.
fn mover(entries: &[Entry]) -> Option<usize> {
    let last_borrow = entries
        .iter()
        .filter(|e| e.mode == Mode::Borrow)
        .map(|e| e.stage)
        .max();
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.mode == Mode::Own && last_borrow.is_none_or(|b| e.stage > b))
        .max_by_key(|(i, e)| {
            (
                e.stage,
                matches!(e.target, Target::Export),
                std::cmp::Reverse(*i),
            )
        })
        .map(|(i, _)| i)
}

fn inside_consumer(inside: &[usize], c: Consumer) -> bool {
    match c {
        Consumer::Node(v) => inside.contains(&v),
        Consumer::Tail => false,
    }
}

fn nodes_of(plan: &Plan) -> Vec<usize> {
    let mut nodes = plan::nodes_of(plan);
    nodes.sort_unstable();
    nodes
}

/// A tuple of at most `TUPLE_LIMIT` items, nesting groups when there are more.
fn nest(items: &[TokenStream]) -> TokenStream {
    if items.len() <= TUPLE_LIMIT {
        return quote!((#(#items,)*));
    }
    let chunk = items.len().div_ceil(TUPLE_LIMIT);
    let groups: Vec<TokenStream> = items.chunks(chunk).map(nest).collect();
    quote!((#(#groups,)*))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(tokens: TokenStream) -> String {
        dag(tokens).to_string()
    }

    #[test]
    fn seed_expands_to_nested_joins() {
        let out = expand(quote!(::dagjoin;
            a = fast_task_a();
            b = slow_task_b(a);
            sa = slow_task_a();
            fb = fast_task_b();
            c = fast_task_c(sa, fb);
            end = end_task(b, c);
            end
        ));
        assert!(!out.contains("Slot"), "{out}");
        assert_eq!(out.matches("__private :: join (").count(), 2, "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn n_shape_uses_a_slot() {
        let out = expand(quote!(::dagjoin; a = f(); b = g(); c = h(a, b); d = k(b); (c, d)));
        assert_eq!(out.matches("Slot").count(), 1, "{out}");
    }

    #[test]
    fn errors_are_compile_errors() {
        let out = expand(quote!(::dagjoin; a = f(b); b = g(a);));
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("dependency cycle"), "{out}");
    }

    #[test]
    fn nests_wide_tuples() {
        let items: Vec<TokenStream> = (0..40).map(|i| quote!(#i)).collect();
        let out = nest(&items).to_string();
        assert_eq!(out.matches('(').count(), 1 + 14, "{out}");
    }

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
    }

    /// Random and mutated token streams: the macro returns code or errors, never panics.
    #[test]
    fn never_panics_on_random_input() {
        let seeds: Vec<TokenStream> = vec![
            quote!(a = fast_task_a(); b = slow_task_b(a); sa = slow_task_a(); fb = fast_task_b(); c = fast_task_c(sa, fb); end = end_task(b, c); end),
            quote!(#[spawn] a = f(&b)?; b = async move { g(a).await }; c = vec![a, b]; format!("{a} {}", c)),
            quote!(a = { let x = b; x }; b = |c| c + a; c = match a { b => b, _ => c }; d = S { a, b: c.0 }; (a, &b)),
            quote!(x = f(); y = g(x); z = h(x, y); w = k(z, x); w == 1),
        ];
        let vocabulary: Vec<TokenStream> = vec![
            quote!(a),
            quote!(b),
            quote!(c),
            quote!(=),
            quote!(;),
            quote!(,),
            quote!(&),
            quote!(?),
            quote!(#[spawn]),
            quote!(#[x(y)]),
            quote!(()),
            quote!({}),
            quote!([]),
            quote!(f(a)),
            quote!(async),
            quote!(move),
            quote!(.await),
            quote!(|x|),
            quote!(==),
            quote!(r#type),
            quote!(1),
            quote!("{a}"),
            quote!(::),
            quote!(!),
            quote!(let),
            quote!(_),
            quote!(self),
            quote!(fn),
        ];
        let mut rng = Rng(0xDEAD_BEEF);
        for round in 0..3000 {
            let mut tokens: Vec<proc_macro2::TokenTree> = if round % 3 == 0 {
                (0..rng.below(30))
                    .flat_map(|_| vocabulary[rng.below(vocabulary.len())].clone())
                    .collect()
            } else {
                seeds[rng.below(seeds.len())].clone().into_iter().collect()
            };
            for _ in 0..rng.below(6) {
                if tokens.is_empty() {
                    break;
                }
                let at = rng.below(tokens.len());
                match rng.below(3) {
                    0 => {
                        tokens.remove(at);
                    }
                    1 => tokens
                        .splice(at..at, vocabulary[rng.below(vocabulary.len())].clone())
                        .for_each(drop),
                    _ => {
                        let other = rng.below(tokens.len());
                        tokens.swap(at, other);
                    }
                }
            }
            let body: TokenStream = tokens.into_iter().collect();
            let input = quote!(::dagjoin; #body);
            let out = std::panic::catch_unwind(|| dag(input.clone()));
            assert!(out.is_ok(), "panicked on input: {input}");
        }
    }
}
