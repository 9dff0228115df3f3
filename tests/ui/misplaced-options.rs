#[derive(Debug)]
struct MyError;

async fn f(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        move;
        move;
        type Error = MyError;
        a = f(1);
        type Error = MyError;
        a
    };
}
