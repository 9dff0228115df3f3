async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        a = f(1);
        b = f(a);
        a = f(2);
        b
    };
}
