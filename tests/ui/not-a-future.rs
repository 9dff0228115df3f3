fn plain(x: u32) -> u32 { x }
async fn twice(x: u32) -> u32 { x * 2 }

async fn main_async() {
    let out: (u32, u32) = dagjoin::dag! {
        a = plain(1);
        b = twice(2);
        c = twice(b);
        (a, c)
    }
    .await;
    let _ = out;
}

fn main() {
    let _ = main_async();
}
