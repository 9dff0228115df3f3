struct Conn;

async fn open() -> Conn { Conn }
async fn query(_conn: &Conn) -> u32 { 1 }
async fn close(_conn: Conn) {}

fn main() {
    let _ = dagjoin::dag! {
        conn   = open();
        rows   = query(&conn);
        closed = close(conn);
        (rows, closed)
    };
}
