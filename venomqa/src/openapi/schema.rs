//! Schemas out of a spec: `$ref`s inlined, OpenAPI 3.0's dialect turned into JSON Schema,
//! and validators compiled by the `jsonschema` crate.

use serde_json::{Map, Value};

/// How deep `$ref`s are followed before a recursive schema is cut off (and accepts
/// anything below that depth).
const MAX_REF_DEPTH: usize = 12;

/// `schema` with every local `$ref` (`#/components/...`) replaced by what it points to,
/// recursively; a schema that came from `#/components/schemas/Name` gets `title: Name` if
/// it has none (the name of a body variant, the kind of a response). A ref that does not
/// resolve is an error naming it.
pub(crate) fn inline(spec: &Value, schema: &Value) -> Result<Value, String> {
    inline_at(spec, schema, 0)
}

fn inline_at(spec: &Value, schema: &Value, depth: usize) -> Result<Value, String> {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                if depth >= MAX_REF_DEPTH {
                    return Ok(Value::Object(Map::new()));
                }
                let target = resolve(spec, reference)?;
                let mut inlined = inline_at(spec, target, depth + 1)?;
                if let (Some(name), Value::Object(o)) = (
                    reference.strip_prefix("#/components/schemas/"),
                    &mut inlined,
                ) {
                    o.entry("title").or_insert_with(|| Value::from(name));
                }
                return Ok(inlined);
            }
            let mut out = Map::new();
            for (k, v) in map {
                // Examples are data, not schemas: keep them as written.
                let v = if matches!(k.as_str(), "example" | "examples" | "default" | "enum") {
                    v.clone()
                } else {
                    inline_at(spec, v, depth)?
                };
                out.insert(k.clone(), v);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|v| inline_at(spec, v, depth))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

/// What the local reference `reference` (`#/a/b`) points to in `spec`.
pub(crate) fn resolve<'s>(spec: &'s Value, reference: &str) -> Result<&'s Value, String> {
    let pointer = reference
        .strip_prefix('#')
        .ok_or_else(|| format!("{reference}: only local references (#/...) are supported"))?;
    spec.pointer(pointer)
        .ok_or_else(|| format!("{reference} points to nothing in the spec"))
}

/// Follows `value`'s `$ref` (a parameter, a response, a request body), if it has one.
pub(crate) fn deref<'s>(spec: &'s Value, value: &'s Value) -> Result<&'s Value, String> {
    let mut value = value;
    for _ in 0..MAX_REF_DEPTH {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => value = resolve(spec, reference)?,
            None => return Ok(value),
        }
    }
    Err("a $ref chain loops".to_owned())
}

/// An OpenAPI 3.0 schema (inlined) as JSON Schema draft 4: `nullable: true` becomes a
/// `null` alternative. 3.1 schemas are JSON Schema 2020-12 already.
pub(crate) fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let v = if matches!(k.as_str(), "example" | "examples" | "default" | "enum") {
                    v.clone()
                } else {
                    to_json_schema(v)
                };
                out.insert(k.clone(), v);
            }
            if out.remove("nullable") != Some(Value::Bool(true)) {
                return Value::Object(out);
            }
            match out.get("type").cloned() {
                Some(Value::String(t)) => {
                    out.insert("type".into(), Value::from(vec![t, "null".to_owned()]));
                    if let Some(Value::Array(values)) = out.get_mut("enum") {
                        values.push(Value::Null);
                    }
                    Value::Object(out)
                }
                _ => serde_json::json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// `schema` as an answer must meet it: a `writeOnly` property (a password) is required in
/// requests only, so it leaves `required`.
fn answer_view(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let v = if matches!(k.as_str(), "example" | "examples" | "default" | "enum") {
                        v.clone()
                    } else {
                        answer_view(v)
                    };
                    (k.clone(), v)
                })
                .collect();
            let write_only: Vec<String> = map
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| {
                    p.iter()
                        .filter(|(_, s)| s.get("writeOnly") == Some(&Value::Bool(true)))
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            if let Some(Value::Array(required)) = out.get_mut("required") {
                required.retain(|r| {
                    !r.as_str()
                        .is_some_and(|r| write_only.iter().any(|w| w == r))
                });
                if required.is_empty() {
                    out.remove("required");
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(answer_view).collect()),
        other => other.clone(),
    }
}

/// A compiled response schema.
pub(crate) struct Validator {
    inner: jsonschema::Validator,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator")
    }
}

impl Validator {
    /// Compiles `schema` (inlined) for a spec of version `openapi` (`3.0.x` or `3.1.x`).
    pub(crate) fn new(schema: &Value, openapi_31: bool) -> Result<Validator, String> {
        let schema = &answer_view(schema);
        let inner = if openapi_31 {
            jsonschema::draft202012::new(schema)
        } else {
            jsonschema::draft4::new(&to_json_schema(schema))
        };
        inner
            .map(|inner| Validator { inner })
            .map_err(|e| e.to_string())
    }

    /// The first few ways `value` breaks the schema, each as `at <pointer>: <why>`; empty
    /// when it conforms.
    pub(crate) fn problems(&self, value: &Value) -> Vec<String> {
        self.inner
            .iter_errors(value)
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                format!("at {at}: {}", e.to_string().trim())
            })
            .collect()
    }
}
