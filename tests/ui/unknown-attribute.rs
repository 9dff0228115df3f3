async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        #[parallel]
        a = f(1);
        a
    };
}
