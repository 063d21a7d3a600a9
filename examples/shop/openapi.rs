//! The shop explored from its OpenAPI spec alone (`examples/shop/openapi.yaml`, served at
//! `GET /openapi.yaml`): no hand-written action or invariant. The setup is declared, not
//! written: sign a customer up (`createUser`, whose answer has the bearer token), and
//! create the catalogue (`createProduct`, `createVoucher`, with the spec's examples).

use venomqa::explore::World;
use venomqa::journey::Client;
use venomqa::openapi::{Inputs, OpenApiError, OpenApiWorld, Spec};

/// Where the shop serves its spec.
pub const SPEC_PATH: &str = "/openapi.yaml";

/// The bugs the spec-driven exploration finds, and the inputs each needs: the stock
/// going negative (the product's schema says `minimum: 0`), a cancelled order without
/// its required `total_cents`, and a 500 for a name the spec allows.
pub const SPEC_BUGS: [(&str, Inputs); 3] = [
    ("voucher_oversell", Inputs::Valid),
    ("cancel_drops_total", Inputs::Valid),
    ("long_name", Inputs::Boundary),
];

/// The spec the server at `client` serves.
pub fn fetch_spec(client: &Client) -> Result<Spec, OpenApiError> {
    Spec::fetch(client, SPEC_PATH)
}

/// The shop's world from `spec`, with `inputs`.
pub fn spec_world(spec: &Spec, inputs: Inputs) -> Result<World, OpenApiError> {
    OpenApiWorld::new(spec)
        .login("createUser", "/token")
        .credential("adminKey", crate::ADMIN_KEY)
        .seed("createProduct")
        .seed("createVoucher")
        .inputs(inputs)
        .build()
}

/// The world of the spec the shop at `client` serves, with valid inputs.
///
/// # Panics
/// If the server does not serve a spec that builds a world.
pub fn served_world(client: &Client) -> World {
    let spec = fetch_spec(client).expect("the shop serves its spec");
    spec_world(&spec, Inputs::Valid).expect("the shop's spec builds a world")
}
