async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        a = f(b);
        b = f(a);
        c = f(c);
        c = f(1);
    };
}
