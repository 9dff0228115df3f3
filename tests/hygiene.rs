//! Generated code names everything through absolute paths: it works when the caller
//! shadows prelude names, `core` and `futures`, has its own `__private`, has no prelude at
//! all, and reaches the crate under another name.

#![allow(
    clippy::many_single_char_names,
    reason = "node names in small test graphs"
)]
#![allow(clippy::unused_async, reason = "stand-ins for real async tasks")]

extern crate dagjoin as dj;

#[allow(dead_code, non_camel_case_types)]
mod shadowing {
    struct Option;
    struct Result;
    struct Box;
    struct Clone;
    struct Future;
    struct IntoFuture;
    mod core {}
    mod futures {}
    mod __private {}
    mod std {}
    fn join() {}
    fn branch() {}
    struct Slot;

    async fn val(x: u64) -> u64 {
        x
    }

    /// Series-parallel, non-series-parallel (slots), clones and a wide join.
    pub async fn run() -> (u64, u64, u64) {
        let sp = dj::dag! {
            a = val(1);
            b = val(a + 1);
            c = val(a + 2);
            b + c
        }
        .await;
        let n = dj::dag! {
            a = val(1);
            b = val(2);
            c = val(a + b);
            d = val(b * 10);
            e = val([1u64, 2].iter().map(|x| x + d).sum());
            c + d + e
        }
        .await;
        let wide = dj::dag! {
            n0 = val(0); n1 = val(1); n2 = val(2); n3 = val(3); n4 = val(4); n5 = val(5);
            n6 = val(6); n7 = val(7); n8 = val(8); n9 = val(9); n10 = val(10); n11 = val(11);
            n12 = val(12); n13 = val(13); n14 = val(14); n15 = val(15); n16 = val(16);
            n17 = val(17); n18 = val(18); n19 = val(19); n20 = val(20); n21 = val(21);
            n22 = val(22); n23 = val(23); n24 = val(24); n25 = val(25); n26 = val(26);
            n27 = val(27); n28 = val(28); n29 = val(29); n30 = val(30); n31 = val(31);
            n32 = val(32); n33 = val(33); n34 = val(34); n35 = val(35);
            n0 + n1 + n2 + n3 + n4 + n5 + n6 + n7 + n8 + n9 + n10 + n11 + n12 + n13 + n14
                + n15 + n16 + n17 + n18 + n19 + n20 + n21 + n22 + n23 + n24 + n25 + n26
                + n27 + n28 + n29 + n30 + n31 + n32 + n33 + n34 + n35
        }
        .await;
        (sp, n, wide)
    }
}

mod no_prelude {
    #![no_implicit_prelude]

    async fn text(s: &str) -> ::std::string::String {
        ::std::string::ToString::to_string(s)
    }

    pub async fn run() -> ::std::string::String {
        ::dagjoin::dag! {
            a = text("a");
            b = text(&a);
            c = text(&a);
            d = text(&(b + &c));
            d
        }
        .await
    }
}

#[test]
fn generated_code_is_hygienic() {
    assert_eq!(
        futures::executor::block_on(shadowing::run()),
        (5, 66, (0..36).sum())
    );
    assert_eq!(futures::executor::block_on(no_prelude::run()), "aa");
}
