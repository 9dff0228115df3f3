async fn f(x: u32) -> u32 { x }

async fn run() {
    let out: u32 = dagjoin::dag! {
        a = f(c);
        b = f(a);
        c = f(b);
        d = f(1);
        d
    }
    .await;
    let _ = out;
}

fn main() {
    let _ = run();
}
