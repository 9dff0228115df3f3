async fn f() -> u32 { 1 }
async fn g(x: u32) -> u32 { x + 1 }

async fn main_async() {
    let out: u32 = dagjoin::dag! {
        a = f();
        g(a)
    }
    .await;
    let _ = out;
}

async fn fallible() -> anyhow::Result<u32> {
    dagjoin::dag! {
        a = async { Ok::<_, std::io::Error>(1) }?;
        g(a)
    }
    .await
}

fn main() {
    let _ = main_async();
    let _ = fallible();
}
