#[derive(Debug)]
struct MyError;

#[derive(Debug)]
struct OtherError;

async fn f(x: u32) -> Result<u32, OtherError> { Ok(x) }

async fn run() -> Result<u32, MyError> {
    dagjoin::dag! {
        type Error = MyError;
        a = f(1)?;
        a
    }
    .await
}

fn main() {
    let _ = run();
}
