//! Without the default features, placement attributes and the default error type are
//! compile errors that name the missing feature. Run by `cargo test --no-default-features`.

#![cfg(not(any(feature = "tokio", feature = "anyhow")))]

#[test]
fn ui_without_default_features() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui-no-default-features/*.rs");
}
