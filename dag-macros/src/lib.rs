//! Procedural macro behind [`dagjoin::dag!`](https://docs.rs/dagjoin).
//!
//! This crate is an implementation detail of `dagjoin`: depend on `dagjoin` and call
//! `dagjoin::dag!`. The macro here expects the path of the `dagjoin` crate as its first
//! tokens, which the `dag!` shim in `dagjoin` supplies.
//!
//! The work is split the way the data flows: `parse` reads the statements, `attrs` a node's
//! attributes, `graph` models the nodes and `uses` finds each node's dependencies, `check`
//! validates the graph, `plan` computes the schedule and `expand` writes it out as Rust.

mod attrs;
mod check;
mod expand;
mod graph;
mod parse;
mod plan;
mod uses;

use proc_macro::TokenStream;

/// Expands a `dag! { .. }` body. Input: `$crate; statements..`.
#[doc(hidden)]
#[proc_macro]
pub fn dag_impl(input: TokenStream) -> TokenStream {
    expand::dag(input.into()).into()
}
