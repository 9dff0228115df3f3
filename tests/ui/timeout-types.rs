use std::time::Duration;

#[derive(Debug)]
struct MyError;

impl From<std::io::Error> for MyError {
    fn from(_: std::io::Error) -> Self { MyError }
}

async fn f(x: u32) -> Result<u32, std::io::Error> { Ok(x) }

fn main() {
    let millis: u64 = 50;
    let _ = dagjoin::dag! {
        type Error = MyError;
        // Not a `Duration`.
        #[timeout(millis)]
        a = f(1)?;
        // `MyError` has no `From<TimedOut>`.
        #[timeout(Duration::from_millis(millis))]
        b = f(a)?;
        // A count is a `u32`.
        #[retry(millis)]
        c = f(b)?;
        c
    };
}
