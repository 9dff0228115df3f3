struct Token(u32);

async fn make(x: u32) -> Token { Token(x) }
async fn take(t: Token, u: Token) -> u32 { t.0 + u.0 }
async fn take_one(t: Token) -> u32 { t.0 }

async fn main_async() {
    // a -> c, b -> c, b -> d: `b` reaches `c` and `d` through a slot, by value twice.
    let _ = dagjoin::dag! {
        a = make(1);
        b = make(2);
        c = take(a, b);
        d = take_one(b);
        (c, d)
    }
    .await;
}

fn main() {
    let _ = main_async();
}
