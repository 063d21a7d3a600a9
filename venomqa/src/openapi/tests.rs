//! The spec's parsing, the bindings inferred from it, the invariants' judgement, and a
//! property test of the generated values against an independent JSON Schema validator.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::call::{Call, Credentials, Model};
use super::checks::{judge, Validators};
use super::model::{plan, Source};
use super::values::{generate, variants};
use super::{OpenApiError, OpenApiWorld, Spec};

const SHOP: &str = r##"
openapi: 3.0.3
info: {title: mini, version: "1"}
security: [{key: []}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-Key}
  schemas:
    Order:
      type: object
      required: [id, status, note]
      properties:
        id: {type: integer}
        status: {type: string, enum: [open, paid]}
        note: {type: string, nullable: true}
    Voucher:
      type: object
      required: [id, code]
      properties: {id: {type: integer}, code: {type: string}}
paths:
  /vouchers:
    post:
      operationId: createVoucher
      requestBody:
        content: {application/json: {schema: {type: object, properties: {code: {type: string, example: HI}}}}}
      responses:
        "201": {description: made, content: {application/json: {schema: {$ref: "#/components/schemas/Voucher"}}}}
  /orders:
    post:
      operationId: createOrder
      security: []
      responses:
        "201":
          description: made
          content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}
          links:
            Pay: {operationId: payOrder, parameters: {order: "$response.body#/id"}}
  /orders/{order}/pay:
    parameters: [{name: order, in: path, required: true, schema: {type: integer}}]
    post:
      operationId: payOrder
      requestBody:
        content: {application/json: {schema: {type: object, required: [code], properties: {code: {type: string}, voucher_id: {type: integer}}}}}
      responses:
        "200": {description: paid, content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}}
        "4XX": {description: refused}
  /orders/{id}:
    get:
      operationId: getOrder
      parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
      responses:
        "200": {description: it, content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}}
"##;

#[test]
fn a_spec_parses_from_yaml_and_json_with_refs_inlined() {
    let spec = Spec::parse(SHOP).unwrap();
    let ids: Vec<&str> = spec.operations().iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        ids,
        ["createOrder", "getOrder", "payOrder", "createVoucher"],
        "by path, then method"
    );
    let pay = spec.operation("payOrder").unwrap();
    assert_eq!(pay.parameters[0].name, "order", "the path item's parameter");
    assert_eq!(
        pay.security,
        [vec!["key".to_owned()]],
        "the global security"
    );
    assert!(spec.operation("createOrder").unwrap().security.is_empty());
    let order = spec.operation("getOrder").unwrap().responses["200"]
        .clone()
        .unwrap();
    assert_eq!(
        order["title"], "Order",
        "an inlined schema is named after its component"
    );
    assert!(pay.documents(404) && pay.documents(200) && !pay.documents(500));

    let json = serde_json::to_string(&serde_yaml_ng::from_str::<Value>(SHOP).unwrap()).unwrap();
    assert_eq!(Spec::parse(&json).unwrap().operations().len(), 4);
}

#[test]
fn a_spec_of_another_version_or_with_a_broken_ref_is_refused_with_the_reason() {
    let swagger = Spec::parse("swagger: '2.0'\npaths: {}").unwrap_err();
    assert!(matches!(swagger, OpenApiError::Version(_)), "{swagger}");
    assert!(
        swagger.to_string().contains("swagger: \"2.0\""),
        "{swagger}"
    );
    let broken = SHOP.replace("#/components/schemas/Voucher", "#/components/schemas/Nope");
    let e = Spec::parse(&broken).unwrap_err();
    assert!(e.to_string().contains("createVoucher"), "{e}");
    assert!(
        e.to_string()
            .contains("#/components/schemas/Nope points to nothing"),
        "{e}"
    );
    let e = Spec::parse("{not json").unwrap_err();
    assert!(matches!(e, OpenApiError::Parse(_)), "{e}");
    let e = OpenApiWorld::new(&Spec::parse(SHOP).unwrap())
        .seed("nope")
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the spec has no operation \"nope\"; `Spec::operations()` lists them"
    );
}

#[test]
fn parameters_bind_by_link_by_path_and_by_name() {
    let spec = Spec::parse(SHOP).unwrap();
    let (kinds, plans) = plan(&spec);
    let names: Vec<&str> = kinds.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(
        names,
        ["orders", "vouchers"],
        "not `pay`: it answers with the order"
    );
    let (orders, vouchers) = (0, 1);
    let source = |kind, field: &str| Source {
        kind,
        field: field.to_owned(),
    };
    // payOrder's {order}: by the createOrder link (no collection path names it).
    assert_eq!(
        plans[2].path,
        [("order".to_owned(), Some(source(orders, "id")))]
    );
    assert_eq!(plans[2].subject, Some(orders));
    // Its body: `code` only vouchers have, `voucher_id` by its name.
    assert_eq!(
        plans[2].body,
        [
            ("code".to_owned(), source(vouchers, "code")),
            ("voucher_id".to_owned(), source(vouchers, "id"))
        ]
    );
    // getOrder's {id}: by the collection path before it.
    assert_eq!(
        plans[1].path,
        [("id".to_owned(), Some(source(orders, "id")))]
    );
    // createVoucher's own `code` is its own data, not bound.
    assert!(plans[3].body.is_empty());
    assert_eq!(plans[3].creates, Some(vouchers));
    assert_eq!(plans[2].creates, None, "paying creates nothing");
    assert!(
        kinds[vouchers].fields.contains("code"),
        "kept for the binding"
    );
}

#[test]
fn the_world_has_an_action_per_instance_and_variant_and_reads_as_checks() {
    let spec = Spec::parse(SHOP).unwrap();
    let world = OpenApiWorld::new(&spec).instances(2).build().unwrap();
    assert_eq!(
        world.action_names(),
        [
            "createOrder",
            "payOrder(orders 1)",
            "payOrder(orders 2)",
            "createVoucher"
        ]
    );
    let names: Vec<String> = world
        .invariants()
        .iter()
        .map(|i| i.name().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            super::DOCUMENTED_STATUS,
            super::RESPONSE_SCHEMA,
            super::READS
        ]
    );
    let world = OpenApiWorld::new(&spec)
        .instances(1)
        .reads_as_actions(true)
        .exclude_operation("createVoucher")
        .check_reads(false)
        .inputs(super::Inputs::Invalid)
        .build()
        .unwrap();
    assert_eq!(
        world.action_names(),
        [
            "createOrder",
            "getOrder(orders 1)",
            "payOrder(orders 1)",
            "payOrder(orders 1, without code)"
        ],
        "a bound property is not varied; `code` is bound but left out when invalid"
    );
    assert_eq!(world.invariants().len(), 2);
}

fn model(spec: &Spec) -> (Model, Validators) {
    let (kinds, plans) = plan(spec);
    let mut validators = Validators::new();
    for (i, op) in spec.operations().iter().enumerate() {
        for (status, schema) in &op.responses {
            if let Some(schema) = schema {
                validators.insert((i, status.clone()), spec.validator(schema).unwrap());
            }
        }
    }
    let model = Model {
        spec: spec.clone(),
        kinds,
        plans,
        credentials: Credentials::default(),
    };
    (model, validators)
}

#[test]
fn an_answer_is_judged_by_its_documented_status_and_schema() {
    let spec = Spec::parse(SHOP).unwrap();
    let (model, validators) = model(&spec);
    let ok = json!({"id": 1, "status": "open", "note": null});
    assert_eq!(
        judge(&model, &validators, 1, 200, Some(&ok), true),
        None,
        "nullable: null is fine"
    );
    let missing = json!({"id": 1, "status": "open"});
    let why = judge(&model, &validators, 1, 200, Some(&missing), true).unwrap();
    assert_eq!(
        why,
        "the 200 body does not match its schema: at /: \"note\" is a required property"
    );
    let wrong = json!({"id": 1, "status": "lost", "note": "x"});
    assert!(judge(&model, &validators, 1, 200, Some(&wrong), true)
        .unwrap()
        .contains("at /status"));
    assert_eq!(
        judge(&model, &validators, 1, 200, Some(&wrong), false),
        None,
        "schemas off"
    );
    let why = judge(&model, &validators, 1, 404, None, true).unwrap();
    assert_eq!(why, "status 404 is not documented (the spec has 200)");
    assert_eq!(
        judge(&model, &validators, 2, 409, None, true),
        None,
        "4XX covers 409"
    );
    let why = judge(&model, &validators, 1, 200, None, true).unwrap();
    assert!(why.contains("not JSON"), "{why}");
}

#[test]
fn a_write_only_property_is_not_required_in_an_answer() {
    let schema = json!({"type": "object", "required": ["id", "password"], "properties": {
        "id": {"type": "integer"}, "password": {"type": "string", "writeOnly": true}}});
    let v = super::schema::Validator::new(&schema, false).unwrap();
    assert!(v.problems(&json!({"id": 1})).is_empty());
    assert_eq!(
        v.problems(&json!({})),
        ["at /: \"id\" is a required property"]
    );
}

#[test]
fn a_call_is_enabled_once_what_it_names_exists() {
    let spec = Spec::parse(SHOP).unwrap();
    let (model, _) = model(&spec);
    let variant = variants(
        spec.operation("payOrder").unwrap().body.as_ref().unwrap(),
        false,
        false,
        &[],
    );
    let pay = |slot| Call {
        op: 2,
        slots: vec![slot],
        variant: variant.first().cloned(),
    };
    let mut ctx = crate::journey::Context::new();
    assert!(!model.enabled(&ctx, &pay(0), 2), "no order yet");
    ctx.set(super::call::RESOURCES, json!({"orders": [{"id": 7}]}));
    assert!(
        !model.enabled(&ctx, &pay(0), 2),
        "an order, but no voucher for its code"
    );
    ctx.set(
        super::call::RESOURCES,
        json!({"orders": [{"id": 7}], "vouchers": [{"id": 1, "code": "HI"}]}),
    );
    assert!(model.enabled(&ctx, &pay(0), 2));
    assert!(!model.enabled(&ctx, &pay(1), 2), "no second order");
    let create = Call {
        op: 0,
        slots: vec![],
        variant: None,
    };
    assert!(model.enabled(&ctx, &create, 2));
    assert!(!model.enabled(&ctx, &create, 1), "at the limit");
    ctx.set(
        super::call::RESOURCES,
        json!({"orders": [{"id": 7, "gone": true}], "vouchers": [{"id": 1, "code": "HI"}]}),
    );
    assert!(!model.enabled(&ctx, &pay(0), 2), "a deleted order");
}

/// A random property schema: a string (length limits, an e-mail format), an integer
/// (limits), a boolean, or an enum.
fn property() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..5, 0u64..30, any::<bool>()).prop_map(|(min, extra, email)| {
            let mut s = json!({"type": "string", "minLength": min, "maxLength": min + extra + 14});
            if email {
                s["format"] = json!("email");
            }
            s
        }),
        (-50i64..50, 0i64..100).prop_map(
            |(min, span)| json!({"type": "integer", "minimum": min, "maximum": min + span})
        ),
        Just(json!({"type": "boolean"})),
        Just(json!({"type": "string", "enum": ["a", "b"]})),
    ]
}

fn object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-z]{1,6}", property(), 1..6).prop_flat_map(|props| {
        let names: Vec<String> = props.keys().cloned().collect();
        prop::sample::subsequence(names.clone(), 0..=names.len()).prop_map(move |required| {
            let mut schema =
                json!({"type": "object", "properties": props, "additionalProperties": false});
            if !required.is_empty() {
                schema["required"] = json!(required); // draft 4 wants at least one
            }
            schema
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, rng_seed: proptest::test_runner::RngSeed::Fixed(7), failure_persistence: None, ..ProptestConfig::default() })]

    /// Every generated body, and every boundary variant, conforms to its schema by the
    /// `jsonschema` crate's judgement (an oracle that is not this module); every invalid
    /// variant does not.
    #[test]
    fn generated_bodies_conform_and_invalid_ones_do_not(schema in object(), nonce in 1usize..4) {
        let validator = jsonschema::draft4::new(&schema).unwrap();
        let body = generate(&schema, nonce);
        prop_assert!(validator.is_valid(&body), "{body} against {schema}");
        for v in variants(&schema, true, true, &[]) {
            let body = v.body(nonce, &[]);
            prop_assert_eq!(validator.is_valid(&body), !v.invalid, "{:?}: {} against {}", v.name, body, schema);
        }
    }
}
