async fn make() -> Vec<u32> {
    Vec::new()
}

async fn fill(v: &mut Vec<u32>) -> usize {
    v.push(1);
    v.len()
}

async fn main_async() {
    let _ = dagjoin::dag! {
        a = make();
        b = fill(&mut a);
        c = make();
        (b, std::mem::take(&mut c))
    }
    .await;
}

fn main() {
    let _ = main_async();
}
