async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        #[spawn]
        #[blocking]
        a = f(1);
        #[spawn]
        #[spawn]
        b = f(2);
        #[blocking(threads = 2)]
        c = 3;
        (a, b, c)
    };
}
