//! Exploration from an OpenAPI spec (feature `openapi`): the actions, their dependencies
//! and the invariants come from the API's own description, not from hand-written code.
//!
//! - **Actions**: one per operation that changes state (POST, PUT, PATCH, DELETE), per
//!   instance of the resource its path names, per body variant (each `oneOf` branch). A
//!   path parameter is bound to a resource an earlier answer created (by the spec's
//!   links, by the collection path before it, by name), so "pay order 1" is enabled only
//!   once an order exists. Body properties named after another resource
//!   (`product_id`, or a field only another resource has, like a voucher's `code`) take
//!   its value. Everything else comes from the schema: its examples first, else the
//!   smallest valid value.
//! - **Invariants**, each switchable: [`DOCUMENTED_STATUS`], [`RESPONSE_SCHEMA`] (the
//!   `jsonschema` crate validates every answer), [`READS`] (after every step, each GET on
//!   each resource created so far answers as documented), and the explorer's own rule
//!   that no answer is a 5xx.
//! - **Inputs**: valid bodies by default; [`Inputs::Boundary`] adds bodies at each
//!   property's limits, [`Inputs::Invalid`] adds invalid ones (which must get a 4xx), kept
//!   apart from the state exploration unless asked for.
//!
//! Violations are the explorer's: shrunk, with each step's request, answer and database
//! diff, and as a journey and a `#[venom_test]`.
//!
//! ```no_run
//! use venomqa::explore::{Explorer, World};
//! use venomqa::openapi::{OpenApiWorld, Spec};
//! # fn demo(client: venomqa::journey::Client, db: &mut venomqa::sqlite::SqliteCaptureSession) -> Result<(), Box<dyn std::error::Error>> {
//! let spec = Spec::fetch(&client, "/openapi.yaml")?;
//! let world: World = OpenApiWorld::new(&spec)
//!     .login("createUser", "/token")          // a bearer token from this operation's answer
//!     .credential("adminKey", "shop-admin-key") // an apiKey scheme's value
//!     .seed("createProduct")                  // run once in the setup
//!     .build()?;
//! let result = Explorer::new(&world, client).state_manager(db).max_depth(6).run()?;
//! result.assert_passed();
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, doc(cfg(feature = "openapi")))]

mod call;
mod checks;
mod model;
mod schema;
mod spec;
mod values;
mod world;

pub use checks::{DOCUMENTED_STATUS, READS, RESPONSE_SCHEMA};
pub use spec::{Link, Operation, Parameter, Spec};
pub use world::{Inputs, OpenApiWorld};

/// What went wrong reading a spec or building a world from it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenApiError {
    /// The file could not be read.
    #[error("could not read the OpenAPI spec {path}; check the path")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server did not serve it.
    #[error("could not fetch the OpenAPI spec at {path}; is the server up, and the path right?")]
    Fetch {
        /// The URL path.
        path: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Neither JSON nor YAML.
    #[error("the OpenAPI spec is neither JSON nor YAML")]
    Parse(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Not OpenAPI 3.0 or 3.1.
    #[error(
        "the spec is {0}; venomqa reads OpenAPI 3.0 and 3.1 (convert a Swagger 2.0 spec first)"
    )]
    Version(String),
    /// Something in the spec that cannot be used (a `$ref` to nothing, a schema the
    /// validator refuses).
    #[error("the OpenAPI spec is invalid at {at}: {message}")]
    Invalid {
        /// The operation or schema.
        at: String,
        /// What is wrong.
        message: String,
    },
    /// An operation id the world names that the spec does not have.
    #[error("the spec has no operation {0:?}; `Spec::operations()` lists them")]
    UnknownOperation(String),
}
#[cfg(all(test, feature = "sqlite"))]
mod explore_tests;
#[cfg(test)]
mod tests;
