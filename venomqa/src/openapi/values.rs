//! Values out of schemas: a valid one (the spec's examples first), the variants of a
//! request body (one per `oneOf` branch), and the boundary and invalid ones of the
//! opt-in [`Inputs`](super::Inputs) modes.

use serde_json::{Map, Value};

/// A change to a generated body, making a boundary or an invalid variant of it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tweak {
    /// The body as generated.
    None,
    /// A property set to this value.
    Set(String, Value),
    /// A required property left out.
    Remove(String),
}

/// One body an operation is tried with.
#[derive(Debug, Clone)]
pub(crate) struct Variant {
    /// Its name in the action's (the `oneOf` branch's title, `name=max`), if any.
    pub(crate) name: Option<String>,
    /// The schema it is generated from (a branch of a `oneOf`, or the whole body).
    pub(crate) schema: Value,
    pub(crate) tweak: Tweak,
    /// Whether the server must refuse it (a 4xx).
    pub(crate) invalid: bool,
}

impl Variant {
    /// The body, generated with `nonce` and given the bound properties `bound`.
    pub(crate) fn body(&self, nonce: usize, bound: &[(String, Value)]) -> Value {
        let mut body = generate(&self.schema, nonce);
        if let Value::Object(map) = &mut body {
            for (name, value) in bound {
                map.insert(name.clone(), value.clone());
            }
            match &self.tweak {
                Tweak::None => {}
                Tweak::Set(name, value) => {
                    map.insert(name.clone(), value.clone());
                }
                Tweak::Remove(name) => {
                    map.remove(name);
                }
            }
        }
        body
    }
}

/// The schema's branches: each of a top-level `oneOf`/`anyOf`, or the schema itself.
fn branches(schema: &Value) -> Vec<Value> {
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            if !options.is_empty() {
                return options.clone();
            }
        }
    }
    vec![schema.clone()]
}

/// The variants of a body of schema `schema`: one valid per branch; with `boundary`, a
/// variant per property at a length or value limit; with `invalid`, one per required
/// property left out and per property of the wrong type. Properties in `bound` take
/// values from earlier responses and are not varied.
pub(crate) fn variants(
    schema: &Value,
    boundary: bool,
    invalid: bool,
    bound: &[String],
) -> Vec<Variant> {
    let branches = branches(schema);
    let named = branches.len() > 1;
    let mut out = Vec::new();
    for (i, branch) in branches.into_iter().enumerate() {
        let name = named.then(|| {
            branch
                .get("title")
                .and_then(Value::as_str)
                .map_or_else(|| format!("variant {}", i + 1), str::to_owned)
        });
        let label = |what: String| {
            Some(
                name.as_ref()
                    .map_or(what.clone(), |n| format!("{n}, {what}")),
            )
        };
        // By name, whatever order the build's serde_json keeps.
        let mut properties: Vec<(String, Value)> = branch
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        let required: Vec<String> = branch
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Variant {
            name: name.clone(),
            schema: branch.clone(),
            tweak: Tweak::None,
            invalid: false,
        });
        for (property, schema) in &properties {
            if bound.contains(property) || schema.get("enum").is_some() {
                // A value from an earlier answer is not varied, but can be left out.
                if invalid && required.contains(property) {
                    out.push(Variant {
                        name: label(format!("without {property}")),
                        schema: branch.clone(),
                        tweak: Tweak::Remove(property.clone()),
                        invalid: true,
                    });
                }
                continue;
            }
            if boundary {
                for (what, value) in limits(schema) {
                    out.push(Variant {
                        name: label(format!("{property}={what}")),
                        schema: branch.clone(),
                        tweak: Tweak::Set(property.clone(), value),
                        invalid: false,
                    });
                }
            }
            if invalid {
                if let Some(wrong) = wrong_type(schema) {
                    out.push(Variant {
                        name: label(format!("{property}=wrong type")),
                        schema: branch.clone(),
                        tweak: Tweak::Set(property.clone(), wrong),
                        invalid: true,
                    });
                }
                if required.contains(property) {
                    out.push(Variant {
                        name: label(format!("without {property}")),
                        schema: branch.clone(),
                        tweak: Tweak::Remove(property.clone()),
                        invalid: true,
                    });
                }
            }
        }
    }
    out
}

/// The values at a property's documented limits: the longest and shortest strings, the
/// largest and smallest numbers.
fn limits(schema: &Value) -> Vec<(&'static str, Value)> {
    let n = |k: &str| schema.get(k).and_then(Value::as_u64);
    let mut out = Vec::new();
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => {
            let email = schema.get("format").and_then(Value::as_str) == Some("email");
            if let Some(max) = n("maxLength").filter(|m| *m <= 100_000) {
                out.push(("max", Value::from(text_of(max as usize, email))));
            }
            if let Some(min) = n("minLength").filter(|m| *m > 1 && !email) {
                out.push(("min", Value::from(text_of(min as usize, false))));
            }
        }
        Some("integer" | "number") => {
            if let Some(max) = schema.get("maximum").filter(|m| m.is_number()) {
                out.push(("max", max.clone()));
            }
            if let Some(min) = schema.get("minimum").filter(|m| m.is_number()) {
                out.push(("min", min.clone()));
            }
        }
        _ => {}
    }
    out
}

/// A string of exactly `len` characters (an e-mail address when `email`, if it fits).
fn text_of(len: usize, email: bool) -> String {
    const DOMAIN: &str = "@example.com";
    if email && len > DOMAIN.len() {
        return format!("{}{DOMAIN}", "a".repeat(len - DOMAIN.len()));
    }
    "a".repeat(len)
}

/// A value of another type than the schema's, if it has one.
fn wrong_type(schema: &Value) -> Option<Value> {
    match schema.get("type").and_then(Value::as_str)? {
        "string" => Some(Value::from(12345)),
        "integer" | "number" | "boolean" | "object" | "array" => Some(Value::from("not a value")),
        _ => None,
    }
}

/// A valid value of `schema`: its example (or default, first enum value, constant) where
/// it has one, else the smallest value its type and limits allow. `nonce` (from 1) makes
/// strings of a later instance differ (`ann@example.com`, `ann2@example.com`), so a
/// second resource does not collide with the first on a unique field.
pub(crate) fn generate(schema: &Value, nonce: usize) -> Value {
    if let Some(v) = schema.get("const") {
        return v.clone();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        if let Some(first) = values.iter().find(|v| !v.is_null()) {
            return first.clone();
        }
    }
    let example = schema
        .get("example")
        .or_else(|| schema.get("examples").and_then(|e| e.get(0)))
        .or_else(|| schema.get("default"));
    if let Some(example) = example {
        return with_nonce(example, nonce);
    }
    if let Some(Value::Array(options)) = schema.get("oneOf").or_else(|| schema.get("anyOf")) {
        if let Some(first) = options.first() {
            return generate(first, nonce);
        }
    }
    if let Some(Value::Array(parts)) = schema.get("allOf") {
        let mut merged = Map::new();
        for part in parts {
            match generate(part, nonce) {
                Value::Object(o) => merged.extend(o),
                other if parts.len() == 1 => return other,
                _ => {}
            }
        }
        return Value::Object(merged);
    }
    let kind = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "",
    };
    match kind {
        "object" => object(schema, nonce),
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            let n = schema
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .max(1);
            Value::Array((0..n).map(|_| generate(&items, nonce)).collect())
        }
        "string" => string(schema, nonce),
        "integer" => Value::from(integer(schema)),
        "number" => schema
            .get("minimum")
            .cloned()
            .unwrap_or_else(|| Value::from(1.0)),
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    }
}

fn object(schema: &Value, nonce: usize) -> Value {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    for (name, property) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        // A read-only property is the server's to set; optional properties go in only
        // where the spec shows an example of them.
        if property.get("readOnly") == Some(&Value::Bool(true)) {
            continue;
        }
        let shown = property.get("example").is_some() || property.get("default").is_some();
        if required.contains(&name.as_str()) || shown {
            out.insert(name.clone(), generate(property, nonce));
        }
    }
    Value::Object(out)
}

fn string(schema: &Value, nonce: usize) -> Value {
    let suffix = if nonce > 1 {
        nonce.to_string()
    } else {
        String::new()
    };
    let text = match schema.get("format").and_then(Value::as_str) {
        Some("email") => format!("user{suffix}@example.com"),
        Some("date-time") => "2026-01-01T00:00:00Z".to_owned(),
        Some("date") => "2026-01-01".to_owned(),
        Some("uuid") => format!("00000000-0000-4000-8000-{nonce:012}"),
        Some("uri" | "url") => format!("https://example.com/{nonce}"),
        _ => format!("value{suffix}"),
    };
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .map(|m| m as usize);
    let mut text = text;
    while text.chars().count() < min {
        text.push('a');
    }
    if let Some(max) = max {
        text = text.chars().take(max).collect();
    }
    Value::from(text)
}

fn integer(schema: &Value) -> i64 {
    let exclusive = |k: &str| schema.get(k);
    let mut value = match schema.get("minimum").and_then(Value::as_i64) {
        Some(min) if exclusive("exclusiveMinimum") == Some(&Value::Bool(true)) => min + 1,
        Some(min) => min,
        None => match exclusive("exclusiveMinimum").and_then(Value::as_i64) {
            Some(min) => min + 1,
            None => 1,
        },
    };
    if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
        value = value.min(max);
    }
    value
}

/// `example` for the `nonce`th instance: a string gets the nonce (before the `@` of an
/// e-mail address); other values stay as they are.
fn with_nonce(example: &Value, nonce: usize) -> Value {
    match example {
        Value::String(s) if nonce > 1 => Value::from(match s.split_once('@') {
            Some((local, domain)) => format!("{local}{nonce}@{domain}"),
            None => format!("{s}{nonce}"),
        }),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_comes_from_the_examples_and_the_limits() {
        let schema = json!({"type": "object", "required": ["email", "n"], "properties": {
            "email": {"type": "string", "format": "email", "example": "ann@example.com"},
            "n": {"type": "integer", "minimum": 3},
            "note": {"type": "string"},
            "tag": {"type": "string", "default": "x"},
        }});
        assert_eq!(
            generate(&schema, 1),
            json!({"email": "ann@example.com", "n": 3, "tag": "x"})
        );
        assert_eq!(generate(&schema, 2)["email"], "ann2@example.com");
        let with_id = json!({"type": "object", "required": ["id", "n"], "properties": {
            "id": {"type": "integer", "readOnly": true}, "n": {"type": "integer"}}});
        assert_eq!(
            generate(&with_id, 1),
            json!({"n": 1}),
            "the server sets a read-only id"
        );
    }

    #[test]
    fn one_of_gives_a_named_variant_per_branch_and_the_modes_add_theirs() {
        let schema = json!({"oneOf": [
            {"title": "Card", "type": "object", "required": ["method"], "properties": {"method": {"enum": ["card"]}}},
            {"title": "Cash", "type": "object", "required": ["method", "amount"], "properties": {
                "method": {"enum": ["cash"]}, "amount": {"type": "integer", "minimum": 1, "maximum": 9}}},
        ]});
        let names = |v: Vec<Variant>| v.into_iter().map(|v| v.name.unwrap()).collect::<Vec<_>>();
        assert_eq!(
            names(variants(&schema, false, false, &[])),
            ["Card", "Cash"]
        );
        assert_eq!(
            names(variants(&schema, true, true, &[])),
            [
                "Card",
                "Card, without method",
                "Cash",
                "Cash, amount=max",
                "Cash, amount=min",
                "Cash, amount=wrong type",
                "Cash, without amount",
                "Cash, without method"
            ]
        );
        let v = &variants(&schema, true, false, &[])[2];
        assert_eq!(v.body(1, &[]), json!({"method": "cash", "amount": 9}));
        let bound = variants(&schema, true, false, &["amount".to_owned()]);
        assert_eq!(bound.len(), 2, "a bound property is not varied");
        assert_eq!(
            bound[1].body(1, &[("amount".into(), json!(5))])["amount"],
            5
        );
        let invalid = variants(&schema, false, true, &["amount".to_owned()]);
        let left_out = invalid
            .iter()
            .find(|v| v.name.as_deref() == Some("Cash, without amount"));
        let body = left_out
            .expect("a bound property can be left out")
            .body(1, &[("amount".into(), json!(5))]);
        assert_eq!(body, json!({"method": "cash"}));
    }

    #[test]
    fn a_string_at_its_max_length_is_still_an_email_address() {
        let schema = json!({"type": "string", "format": "email", "maxLength": 40});
        let (_, v) = &limits(&schema)[0];
        assert_eq!(v.as_str().unwrap().len(), 40);
        assert!(v.as_str().unwrap().ends_with("@example.com"));
    }
}
