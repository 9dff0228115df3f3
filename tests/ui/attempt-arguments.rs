async fn f(x: u32) -> Result<u32, std::io::Error> { Ok(x) }

fn main() {
    let _ = dagjoin::dag! {
        n = f(3)?;
        // A task's value cannot choose the count or the limit.
        #[retry(n)]
        a = f(1)?;
        #[timeout(std::time::Duration::from_millis(n.into()))]
        b = f(2)?;
        // Units go on literals alone; the count comes first.
        #[timeout(1s + 500ms)]
        c = f(a)?;
        #[retry(backoff = 1s)]
        d = f(b)?;
        d
    };
}
