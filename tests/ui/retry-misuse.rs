async fn f(x: u32) -> Result<u32, std::io::Error> { Ok(x) }
async fn g(x: u32) -> u32 { x }

fn main() {
    let _ = dagjoin::dag! {
        // No count.
        #[retry]
        a = f(1)?;
        // Nothing can fail.
        #[retry(2)]
        b = g(a);
        // Not an option of `#[retry]`.
        #[retry(2, wait = 10ms)]
        c = f(b)?;
        // Twice.
        #[retry(1)]
        #[retry(2)]
        d = f(c)?;
        // Durations need a unit.
        #[retry(2, backoff = 100)]
        e = f(d)?;
        #[retry(2, backoff = 1.5s)]
        h = f(e)?;
        h
    };
}
