//! What the spec implies about state: the kinds of resource its operations create, and
//! where each request parameter or body property takes its value from (an earlier
//! response), as RESTler and Schemathesis infer it: by OpenAPI links, by the path (a
//! parameter after a collection's path), and by name and type (`product_id`, `code`).

use std::collections::BTreeSet;

use serde_json::Value;

use super::spec::{Operation, Spec};

/// A kind of resource: what a create operation (a POST on a collection path whose answer
/// has an `id`) makes.
#[derive(Debug, Clone)]
pub(crate) struct Kind {
    /// The collection's last path segment (`orders`), its name in action names and in
    /// the context.
    pub(crate) name: String,
    /// The collection's path (`/orders`).
    pub(crate) collection: String,
    /// The fields kept of each instance: `id` and whatever another request binds.
    pub(crate) fields: BTreeSet<String>,
}

/// Where a value comes from: field `field` of an instance of kind `kind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) kind: usize,
    pub(crate) field: String,
}

/// An operation with its bindings.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The kind it creates, if it is a create operation.
    pub(crate) creates: Option<usize>,
    /// The kind of the resource it acts on (the last bound path parameter's), if any.
    pub(crate) subject: Option<usize>,
    /// Each path parameter, in order, and its source if it has one.
    pub(crate) path: Vec<(String, Option<Source>)>,
    /// Query parameters (required ones, and those with a source): name and source.
    pub(crate) query: Vec<(String, Option<Source>, Value)>,
    /// Body properties bound to a source (of the first live instance).
    pub(crate) body: Vec<(String, Source)>,
}

/// The kinds of `spec` and every operation's plan, in the spec's order.
pub(crate) fn plan(spec: &Spec) -> (Vec<Kind>, Vec<Plan>) {
    let ops = spec.operations();
    let mut kinds: Vec<Kind> = Vec::new();
    let mut creates = vec![None; ops.len()];
    // Top-level collections first (`POST /orders`), then nested ones
    // (`POST /users/{id}/orders`) whose answer is not the resource their path names.
    for nested in [false, true] {
        for (i, op) in ops.iter().enumerate() {
            let Some(collection) = creation(op) else {
                continue;
            };
            if collection.contains('{') != nested {
                continue;
            }
            if nested && updates_its_subject(ops, &creates, &kinds, op) {
                continue;
            }
            let k = match kinds.iter().position(|k| k.collection == collection) {
                Some(k) => k,
                None => {
                    kinds.push(Kind {
                        name: collection.rsplit('/').next().unwrap_or_default().to_owned(),
                        collection: collection.clone(),
                        fields: BTreeSet::from(["id".to_owned()]),
                    });
                    kinds.len() - 1
                }
            };
            creates[i] = Some(k);
        }
    }
    let mut plans = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let mut path = Vec::new();
        let mut subject = None;
        for name in op.path_parameters() {
            let source =
                linked(ops, &creates, &op.id, name).or_else(|| by_path(&kinds, &op.path, name));
            if let Some(s) = &source {
                subject = Some(s.kind);
            }
            path.push((name.to_owned(), source));
        }
        let own = creates[i].or(subject);
        let mut query = Vec::new();
        for p in op.parameters.iter().filter(|p| p.location == "query") {
            let source = linked(ops, &creates, &op.id, &p.name)
                .or_else(|| by_name(spec, &kinds, &creates, own, &p.name, &p.schema));
            if p.required || source.is_some() {
                query.push((p.name.clone(), source, p.schema.clone()));
            }
        }
        let mut body = Vec::new();
        let properties = op.body.iter().flat_map(body_properties);
        for (name, schema) in properties {
            if body.iter().any(|(n, _)| *n == name) {
                continue;
            }
            if let Some(s) = by_name(spec, &kinds, &creates, own, &name, &schema) {
                body.push((name, s));
            }
        }
        plans.push(Plan {
            creates: creates[i],
            subject,
            path,
            query,
            body,
        });
    }
    for plan in &plans {
        let sources = plan
            .path
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .chain(plan.query.iter().filter_map(|(_, s, _)| s.as_ref()))
            .chain(plan.body.iter().map(|(_, s)| s));
        for s in sources.cloned().collect::<Vec<_>>() {
            kinds[s.kind].fields.insert(s.field);
        }
    }
    (kinds, plans)
}

/// Whether `op` (a POST under a resource's path, `/orders/{id}/items`) answers with that
/// resource itself (the same schema as its create's answer): then it changes it rather
/// than creating another.
fn updates_its_subject(
    ops: &[Operation],
    creates: &[Option<usize>],
    kinds: &[Kind],
    op: &Operation,
) -> bool {
    let title = |op: &Operation| created_schema(op).and_then(|s| s.get("title").cloned());
    let Some(answer) = title(op) else {
        return false;
    };
    op.path_parameters().iter().any(|name| {
        by_path(kinds, &op.path, name).is_some_and(|s| {
            ops.iter()
                .zip(creates)
                .any(|(o, c)| *c == Some(s.kind) && title(o).as_ref() == Some(&answer))
        })
    })
}

/// The collection `op` creates in: a POST on a path that does not end in a parameter,
/// with a success answer whose object has an `id`.
fn creation(op: &Operation) -> Option<String> {
    if op.method != crate::journey::Method::Post || op.path.ends_with('}') {
        return None;
    }
    let has_id = op
        .responses
        .iter()
        .filter(|(status, _)| status.starts_with('2'))
        .filter_map(|(_, schema)| schema.as_ref())
        .any(|s| property(s, "id").is_some());
    has_id.then(|| op.path.trim_end_matches('/').to_owned())
}

/// A link from a create operation's answer to `parameter` of operation `target`.
fn linked(
    ops: &[Operation],
    creates: &[Option<usize>],
    target: &str,
    parameter: &str,
) -> Option<Source> {
    ops.iter().zip(creates).find_map(|(op, kind)| {
        let kind = (*kind)?;
        op.links
            .iter()
            .find(|l| l.operation == target && l.parameter == parameter)
            .and_then(|l| {
                let field = l.pointer.trim_start_matches('/');
                (!field.is_empty() && !field.contains('/')).then(|| Source {
                    kind,
                    field: field.to_owned(),
                })
            })
    })
}

/// The kind whose collection path comes right before `{name}` in `path`.
fn by_path(kinds: &[Kind], path: &str, name: &str) -> Option<Source> {
    let at = path.find(&format!("/{{{name}}}"))?;
    let before = &path[..at];
    kinds
        .iter()
        .position(|k| k.collection == before)
        .map(|kind| Source {
            kind,
            field: "id".to_owned(),
        })
}

/// A source by name and type: `<kind>_id` / `<kind>Id` is that kind's id; a name another
/// kind's answers have (of the same type) is that field, unless the operation's own kind
/// has it too (then it is the operation's own data: a user's `name` is not a product's).
fn by_name(
    spec: &Spec,
    kinds: &[Kind],
    creates: &[Option<usize>],
    own: Option<usize>,
    name: &str,
    schema: &Value,
) -> Option<Source> {
    let lower = name.to_ascii_lowercase();
    for (k, kind) in kinds.iter().enumerate() {
        let singular = kind
            .name
            .strip_suffix('s')
            .unwrap_or(&kind.name)
            .to_ascii_lowercase();
        if Some(k) != own && (lower == format!("{singular}_id") || lower == format!("{singular}id"))
        {
            return Some(Source {
                kind: k,
                field: "id".to_owned(),
            });
        }
    }
    if name == "id" {
        return None;
    }
    let made = |k: usize| {
        spec.operations()
            .iter()
            .zip(creates)
            .filter(move |(_, c)| **c == Some(k))
            .filter_map(|(op, _)| created_schema(op))
    };
    if own.is_some_and(|k| made(k).any(|s| property(&s, name).is_some())) {
        return None;
    }
    let wanted = schema.get("type");
    (0..kinds.len())
        .filter(|k| Some(*k) != own)
        .find(|k| {
            made(*k).any(|s| {
                property(&s, name).is_some_and(|p| wanted.is_none() || p.get("type") == wanted)
            })
        })
        .map(|kind| Source {
            kind,
            field: name.to_owned(),
        })
}

/// The schema of a create operation's success answer.
fn created_schema(op: &Operation) -> Option<Value> {
    op.responses
        .iter()
        .filter(|(status, _)| status.starts_with('2'))
        .find_map(|(_, schema)| schema.clone())
}

/// The top-level property `name` of an object schema (or of an `allOf` part).
pub(crate) fn property<'v>(schema: &'v Value, name: &str) -> Option<&'v Value> {
    schema
        .get("properties")
        .and_then(|p| p.get(name))
        .or_else(|| {
            schema
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|parts| parts.iter().find_map(|p| property(p, name)))
        })
}

/// The top-level properties of a body schema and of each of its `oneOf`/`anyOf` branches.
fn body_properties(schema: &Value) -> Vec<(String, Value)> {
    let mut schemas = vec![schema];
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(options)) = schema.get(key) {
            schemas.extend(options.iter());
        }
    }
    let mut properties: Vec<(String, Value)> = schemas
        .into_iter()
        .filter_map(|s| s.get("properties").and_then(Value::as_object))
        .flat_map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect();
    // By name, whatever order the build's serde_json keeps (the first of a name wins).
    properties.sort_by(|a, b| a.0.cmp(&b.0));
    properties
}
