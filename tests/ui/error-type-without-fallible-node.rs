#[derive(Debug)]
struct MyError;

async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        type Error = MyError;
        a = f(1);
        a
    };
}
