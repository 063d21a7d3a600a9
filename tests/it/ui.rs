//! Compile errors of `#[venom_test]`: each one points at the user's token and says what
//! to write instead. The `.stderr` files next to the cases are the expected output
//! (regenerate with `TRYBUILD=overwrite` after a deliberate change, and review the diff).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
    if !cfg!(feature = "tokio") {
        t.compile_fail("ui/needs-tokio/*.rs");
    }
}
