use std::rc::Rc;

async fn shared() -> Rc<u32> { Rc::new(1) }
async fn read(x: Rc<u32>) -> u32 { *x }

async fn run() -> u32 {
    dagjoin::dag! {
        a = shared();
        #[spawn]
        b = read(a);
        b
    }
    .await
}

fn main() {
    let _ = run();
}
