async fn load() -> Vec<u8> { vec![1, 2, 3] }
async fn count(data: &[u8]) -> usize { data.len() }

fn main() {
    let _ = dagjoin::dag! {
        data = load();
        #[spawn]
        n = count(&data);
        n
    };
}
