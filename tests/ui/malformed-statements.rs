async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        a = ;
        f(1);
        b f(2);
        c = f(3) f(4);
        e = f(6)
        g = f(7);
        h = f(8)
        /// The next node.
        i = f(9);
        d = f(5)
    };
}
