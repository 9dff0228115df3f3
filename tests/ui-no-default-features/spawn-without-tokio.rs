async fn f(x: u32) -> Result<u32, std::io::Error> { Ok(x) }

fn main() {
    let _ = dagjoin::dag! {
        #[spawn]
        a = async { 1u32 };
        b = f(a)?;
        b
    };
}
