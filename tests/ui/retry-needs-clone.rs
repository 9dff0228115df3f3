struct Conn;

async fn open() -> Conn { Conn }
async fn send(_conn: Conn) -> Result<u32, std::io::Error> { Ok(1) }

fn main() {
    let _ = dagjoin::dag! {
        conn = open();
        // Each attempt takes the connection by value.
        #[retry(3)]
        sent = send(conn)?;
        sent
    };
}
