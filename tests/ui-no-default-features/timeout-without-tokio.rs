#[derive(Debug)]
struct MyError;

impl From<dagjoin::TimedOut> for MyError {
    fn from(_: dagjoin::TimedOut) -> Self { MyError }
}

fn main() {
    let _ = dagjoin::dag! {
        type Error = MyError;
        #[timeout(50ms)]
        a = async { 1u32 };
        #[retry(2, backoff = 10ms)]
        #[timeout(50ms)]
        b = async { a };
        b
    };
}
