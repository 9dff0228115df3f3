async fn f(x: u32) -> u32 { x }

fn main() {
    // A misplaced `move;` is reported with the graph's own errors, not instead of them.
    let _ = dagjoin::dag! {
        a = f(b);
        move;
        b = f(a);
        b
    };
}
