//! The `#[venom_test]` attribute. Use it through the `venomqa` crate, which re-exports it
//! and holds everything the generated code calls.
//!
//! This crate only parses the attribute and rewrites the function; see `venomqa`'s
//! documentation for what the test gets at run time.

mod expand;

use proc_macro::TokenStream;

/// Runs a test inside a checkpoint of a database backend, and rolls its changes back when
/// it returns, returns `Err`, or panics.
///
/// ```ignore
/// #[venom_test]                                 // the session type's backend, else venomqa.yaml / env, else sqlite
/// #[venom_test(backend = "mysql")]              // a registered backend
/// #[venom_test(config = "analytics")]           // a named entry of venomqa.yaml
/// #[venom_test(backend = "postgres", url = "postgres://postgres@127.0.0.1/test")]
/// #[venom_test(crate = "my_reexport::venomqa")] // where venomqa is, if renamed
/// ```
///
/// The function may be `async` (with venomqa's `tokio` feature), take no parameter or one
/// `&mut` session (`&mut venomqa::Session`, or a typed one such as
/// `&mut venomqa::sqlite::SqliteSession`), and return `()` or a `Result`. Other
/// attributes (`#[should_panic]`, `#[ignore]`, ...) are kept. Do not add `#[test]`.
///
/// A typed session names its backend: `fn t(db: &mut MySqlSession)` runs on `mysql` (its
/// `venomqa.yaml` entry, if any) without `backend = ".."`. Naming another built-in
/// backend in the attribute is a compile error at both; another name (a registration of
/// the type's backend under a name of its own) and `config = ".."` are checked when the
/// test runs.
#[proc_macro_attribute]
pub fn venom_test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
