async fn fetch_user(id: u32) -> String { format!("user{id}") }
async fn render(user: String, orders: Vec<u32>) -> String { format!("{user}: {orders:?}") }
async fn fetch_orders(_user: &str) -> Vec<u32> { vec![1] }

fn main() {
    let _ = dagjoin::dag! {
        user   = fetch_user(7);
        orders = fetch_orders(&usr);
        page   = render(user, ordrs);
        page
    };
}
