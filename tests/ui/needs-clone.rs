struct Token(u32);

async fn make() -> Token { Token(1) }
async fn take(t: Token) -> u32 { t.0 }

async fn main_async() {
    let _ = dagjoin::dag! {
        a = make();
        b = take(a);
        c = take(a);
        (b, c)
    }
    .await;
}

fn main() {
    let _ = main_async();
}
