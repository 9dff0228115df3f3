fn plain(x: u32) -> u32 { x }

async fn main_async() {
    let out: u32 = dagjoin::dag! {
        a = plain(1);
        a
    }
    .await;
    let _ = out;
}

fn main() {
    let _ = main_async();
}
