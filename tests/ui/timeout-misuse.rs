async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        // No limit.
        #[timeout]
        a = f(1);
        // A blocking closure cannot be interrupted.
        #[blocking]
        #[timeout(5s)]
        b = a + 1;
        // Twice.
        #[timeout(1s)]
        #[timeout(2s)]
        c = f(b);
        // No unit, an unknown unit.
        #[timeout(500)]
        d = f(c);
        #[timeout(5min)]
        e = f(d);
        e
    };
}
