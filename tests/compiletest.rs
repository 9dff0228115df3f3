//! Compile errors users see: each rejected input has a case in `tests/ui` with its expected
//! output beside it. Regenerate with `TRYBUILD=overwrite cargo test --test compiletest`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
