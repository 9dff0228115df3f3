// A node that runs beside others is made like a `futures::join!` argument: temporaries of its
// expression end once its future is made, so a future that borrows one does not compile.
async fn id() -> u32 { 7 }
async fn len(s: &str) -> usize { s.len() }

async fn main_async() {
    let _ = dagjoin::dag! {
        a = id();
        b = len(&format!("user{a}"));
        c = len(&a.to_string());
        d = async { len(&format!("user{a}")).await };
        (b, c, d)
    }
    .await;
}

fn main() {
    let _ = main_async();
}
