//! The `dag!` language: dependencies found anywhere in an expression, captured variables,
//! laziness, the trailing expression, and how values reach their consumers.

#![allow(
    clippy::many_single_char_names,
    reason = "node names in small test graphs"
)]
#![allow(
    clippy::uninlined_format_args,
    reason = "tests both kinds of format arguments"
)]
#![allow(clippy::unused_async, reason = "stand-ins for real async tasks")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dagjoin::dag;
use futures::executor::block_on;

async fn val<T>(v: T) -> T {
    v
}

#[test]
fn empty_dag_is_unit() {
    let out: () = block_on(dag! {});
    assert_eq!(out, ());
    let out = block_on(dag! { 7 });
    assert_eq!(out, 7);
}

#[test]
fn without_trailing_expression_the_output_is_unit() {
    let ran = AtomicUsize::new(0);
    let out: () = block_on(dag! {
        a = async { ran.fetch_add(1, Ordering::SeqCst); 1 };
        b = async { ran.fetch_add(a, Ordering::SeqCst); };
    });
    assert_eq!(out, ());
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

#[test]
fn dependencies_anywhere_in_an_expression() {
    struct S {
        x: u32,
    }
    impl S {
        async fn plus(&self, y: u32) -> u32 {
            self.x + y
        }
    }
    let out = block_on(dag! {
        a = val(2u32);
        s = val(S { x: 40 });
        by_receiver = s.plus(a);
        in_closure = val([3].iter().map(|k| a * k).sum::<u32>());
        in_block = val({ let twice = a * 2; twice + 1 });
        in_async = async { val(a).await + 100 };
        in_vec = val(vec![a, in_closure]);
        in_format = val(format!("{}-{a}-{in_block:>3}", by_receiver));
        in_match = val(match in_async { 102 => "yes", _ => "no" });
        (by_receiver, in_closure, in_block, in_async, in_vec, in_format, in_match)
    });
    assert_eq!(
        out,
        (42, 6, 5, 102, vec![2, 6], "42-2-  5".to_owned(), "yes")
    );
}

#[test]
fn nodes_may_have_doc_comments() {
    let out = block_on(dag! {
        /// The first input.
        a = val(1_u32);
        /** The second. */
        b = val(2_u32);
        #[doc = "Their sum."]
        c = val(a + b);
        c
    });
    assert_eq!(out, 3);
}

#[test]
fn captured_variables_are_parameters() {
    let base = 10;
    let name = String::from("n");
    let out = block_on(dag! {
        a = val(base + 1);
        b = val(format!("{name}{a}"));
        b
    });
    assert_eq!(out, "n11");
    // Still usable: the dag borrowed it.
    assert_eq!(name, "n");
}

#[test]
fn a_closure_returning_a_dag_is_a_reusable_graph() {
    let graph = |x: u64| {
        dag! {
            move;
            a = val(x + 1);
            b = val(x * 2);
            c = val(a + b);
            c
        }
    };
    assert_eq!(block_on(graph(1)), 4);
    assert_eq!(block_on(graph(10)), 31);
}

#[test]
fn the_future_is_lazy() {
    let ran = AtomicUsize::new(0);
    let fut = dag! {
        a = async { ran.fetch_add(1, Ordering::SeqCst) };
        a
    };
    assert_eq!(
        ran.load(Ordering::SeqCst),
        0,
        "nothing runs before the first poll"
    );
    block_on(fut);
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}

#[test]
fn names_bound_inside_an_expression_hide_nodes() {
    let out = block_on(dag! {
        a = val(1);
        b = val([10, 20].iter().map(|a| a + 1).sum::<i32>());
        c = val(a + b);
        c
    });
    assert_eq!(out, 33);
}

/// Counts clones, so tests can see which consumers got a copy.
#[derive(Debug)]
struct Counted {
    value: u32,
    clones: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.clones.fetch_add(1, Ordering::SeqCst);
        Counted {
            value: self.value,
            clones: self.clones.clone(),
        }
    }
}

fn counted(value: u32) -> (Counted, Arc<AtomicUsize>) {
    let clones = Arc::new(AtomicUsize::new(0));
    (
        Counted {
            value,
            clones: clones.clone(),
        },
        clones,
    )
}

async fn consume(c: Counted) -> u32 {
    c.value
}

async fn inspect(c: &Counted) -> u32 {
    c.value
}

#[test]
fn a_value_used_once_is_moved() {
    let (x, clones) = counted(5);
    let out = block_on(dag! {
        a = val(x);
        b = consume(a);
        b
    });
    assert_eq!(out, 5);
    assert_eq!(clones.load(Ordering::SeqCst), 0);
}

#[test]
fn a_value_used_by_several_consumers_is_cloned_for_all_but_one() {
    let (x, clones) = counted(5);
    let out = block_on(dag! {
        a = val(x);
        b = consume(a);
        c = consume(a);
        d = consume(a);
        b + c + d
    });
    assert_eq!(out, 15);
    assert_eq!(clones.load(Ordering::SeqCst), 2);
}

#[test]
fn borrowing_does_not_clone() {
    let (x, clones) = counted(5);
    let out = block_on(dag! {
        a = val(x);
        b = inspect(&a);
        c = inspect(&a);
        len = val(a.value);
        b + c + len
    });
    assert_eq!(out, 15);
    assert_eq!(clones.load(Ordering::SeqCst), 0);
}

#[test]
fn a_value_borrowed_then_moved_is_not_cloned() {
    let (x, clones) = counted(5);
    let out = block_on(dag! {
        a = val(x);
        b = inspect(&a);
        c = async move { consume(a).await + b };
        c
    });
    assert_eq!(out, 10);
    assert_eq!(
        clones.load(Ordering::SeqCst),
        0,
        "c runs after b, so it can take the value"
    );
}

#[test]
fn a_value_borrowed_and_moved_concurrently_is_cloned_for_the_mover() {
    let (x, clones) = counted(5);
    let out = block_on(dag! {
        a = val(x);
        b = inspect(&a);
        c = consume(a);
        (b, c, a.value)
    });
    assert_eq!(out, (5, 5, 5));
    assert_eq!(clones.load(Ordering::SeqCst), 1);
}

/// Not `Clone`: only works if every consumer but one borrows, and the mover is last.
struct Unique(u32);

#[test]
fn values_that_are_not_clone_can_be_borrowed_and_moved_last() {
    let out = block_on(dag! {
        a = val(Unique(3));
        b = val(a.0 + 1);
        c = val(&a.0 + 2);
        a
    });
    assert_eq!(out.0, 3);
}

#[test]
fn values_read_through_slots_are_cloned_moved_and_borrowed() {
    // a->c, b->c, b->d is not series-parallel: some value travels through a slot.
    let (x, clones_a) = counted(1);
    let (y, clones_b) = counted(2);
    let out = block_on(dag! {
        a = val(x);
        b = val(y);
        c = async { consume(a).await + inspect(&b).await };
        d = consume(b);
        e = inspect(&b);
        (c, d, e)
    });
    assert_eq!(out, (3, 2, 2));
    assert_eq!(clones_a.load(Ordering::SeqCst), 0);
    // `d` needs its own `b` while `c` and `e` borrow it.
    assert_eq!(clones_b.load(Ordering::SeqCst), 1);
}

#[test]
fn into_future_values_work() {
    struct Ready(u8);
    impl std::future::IntoFuture for Ready {
        type Output = u8;
        type IntoFuture = std::future::Ready<u8>;
        fn into_future(self) -> Self::IntoFuture {
            std::future::ready(self.0)
        }
    }
    let out = block_on(dag! {
        a = Ready(1);
        b = Ready(a + 1);
        b
    });
    assert_eq!(out, 2);
}

#[test]
fn raw_identifiers_are_node_names() {
    let out = block_on(dag! {
        r#type = val(1);
        r#loop = val(r#type + 1);
        r#loop
    });
    assert_eq!(out, 2);
}

async fn len(s: &str) -> usize {
    s.len()
}

#[test]
fn a_node_may_borrow_a_temporary_of_its_own_expression() {
    // As in `let b = len(&format!(..)).await;`, the temporary lives until the node is done,
    // also for nodes that run beside others (here `b`, `c` and `d` in one join).
    let out = block_on(dag! {
        a = val(7_u32);
        b = len(&format!("user{a}"));
        c = len(&a.to_string());
        d = len(String::from("abc").as_str());
        (b, c, d)
    });
    assert_eq!(out, (5, 1, 3));
}

fn id(x: u32) -> u32 {
    x
}

#[test]
fn a_node_given_its_own_copy_may_borrow_a_temporary_of_its_expression() {
    // `a` goes by value to `b`, `c` and `d`, which run side by side: each is given its own
    // copy, and `b`'s future borrows a temporary of its expression (also in edition 2024,
    // where a block's tail expression would drop it; see tests/edition2024/).
    let out = block_on(dag! {
        a = val(7_u32);
        b = len(&format!("user{}", id(a)));
        c = val(id(a) + 1);
        d = val(id(a) + 2);
        e = len(&format!("{a}:{}", id(a)));
        (b, c, d, e)
    });
    assert_eq!(out, (5, 8, 9, 3));
}

async fn add_ref(x: &u32, y: u32) -> u32 {
    x + y
}

/// Holds `f` until it is polled.
async fn call<F: Fn() -> u32>(f: F) -> u32 {
    f()
}

#[test]
fn copies_of_a_node_may_be_captured_by_reference() {
    // `a` goes by value to several nodes that run side by side, each given its own copy; a
    // closure or an `async` block (not `move`) captures a `Copy` value by reference, so each
    // copy must live as long as its node's future.
    let out = block_on(dag! {
        a = val(1_u32);
        b = call(|| a + 1);
        c = call(|| a + 2);
        d = async { val(a + 3).await };
        e = async {
            let doubled = 'block: {
                if a > 5 {
                    break 'block 0;
                }
                a * 2
            };
            match a {
                1 => doubled + 4,
                _ => 0,
            }
        };
        (b, c, d, e)
    });
    assert_eq!(out, (2, 3, 4, 6));
    // A graph inside a node (an `async` block), a macro, a copy both borrowed and used.
    let out = block_on(dag! {
        a = val(1_u32);
        b = dag! { x = val(a + 1); y = val(a + 2); x + y };
        c = val(vec![a, a]);
        d = add_ref(&a, a);
        (b, c, d)
    });
    assert_eq!(out, (5, vec![1, 1], 2));
    // The same where the values pass through slots (`a` -> `c`, `b` -> `c`, `b` -> `d`).
    let out = block_on(dag! {
        a = val(1_u32);
        b = val(10_u32);
        c = call(|| a + b);
        d = async { val(b + 1).await };
        e = call(|| a + 100);
        (c, d, e)
    });
    assert_eq!(out, (11, 11, 101));
}

/// Passes its arguments on to `format!`, as logging macros do.
macro_rules! log_line {
    ($($arg:tt)*) => {
        format!($($arg)*)
    };
}

async fn unwrap(u: Unique) -> u32 {
    u.0
}

#[test]
fn macros_see_the_nodes_they_use_and_only_those() {
    let out = block_on(dag! {
        user = val("alice");
        // Arguments of any macro are uses; so are format strings of the format macros.
        line = async move { log_line!("hello {} and {}", user, format!("{user}")) };
        // `a` is not `Clone`: `b` must be its only consumer. None of the others names it: a
        // literal of a macro that takes no format string is text, `stringify!` evaluates
        // nothing, and a graph inside a node has its own `a`.
        a = val(Unique(1));
        b = unwrap(a);
        c = val((stringify!(a), vec!["{a}"]));
        d = dag! {
            /// Not a format string: {a}.
            a = val(5_u32);
            a + 1
        };
        (line, b, c, d)
    });
    assert_eq!(
        out,
        ("hello alice and alice".to_owned(), 1, ("a", vec!["{a}"]), 6)
    );
}

#[test]
fn node_names_that_contain_each_other_do_not_mix_up_values() {
    // Each node gets its own copy of `x` and of `x_for_y`; the copies' names must not meet.
    let out = block_on(dag! {
        x = val(1_u32);
        x_for_y = val(100_u32);
        z = val((x_for_y, x).0);
        y_for_z = val((x, x_for_y).0);
        (z, y_for_z)
    });
    assert_eq!(out, (100, 1));
}

#[test]
fn a_variable_spelled_like_a_task_is_still_the_variable() {
    // `users` is one letter from the task `user`: the hint for typos must not hide it.
    let users = [10_u32, 20];
    let out = block_on(dag! {
        user  = val(3_u32);
        total = val(user + users.iter().sum::<u32>());
        total
    });
    assert_eq!(out, 33);
}

async fn parse<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

#[test]
#[forbid(unused_variables)]
fn hints_for_misspelled_tasks_hide_nothing_and_need_no_allow() {
    // `parser` is one letter from the task `parse`, which is also a function named with a
    // turbofish; `ordr`, bound inside a task, is one letter from `order`.
    let parser = 1_u32;
    let out = block_on(dag! {
        parse = parse::<u32>("5");
        order = val(parser);
        total = async { let ordr = 3_u32; ordr + 1 };
        (parse, order, total)
    });
    assert_eq!(out, (Some(5), 1, 4));
}
