//! Calling an operation from the explorer's context: its parameters and body bound from
//! the resources earlier answers created, its credentials, and what the answer adds to
//! the context.

use serde_json::{json, Map, Value};

use super::model::{Kind, Plan, Source};
use super::spec::{Operation, Spec};
use super::values::{generate, Variant};
use crate::journey::{Client, Context, Response, StepError};

/// The context key of the resources created so far: `{kind: [{id, ..fields}]}`. Part of
/// the state's fingerprint.
pub(crate) const RESOURCES: &str = "openapi.resources";
/// The context key of the bearer token a login got (not part of the fingerprint).
pub(crate) const TOKEN: &str = "openapi.token";
/// The context key of the last call's operation, status and body, for the invariants
/// (not part of the fingerprint).
pub(crate) const LAST: &str = "openapi.last";

/// Credentials, by security scheme name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    pub(crate) by_scheme: Vec<(String, String)>,
    /// A login operation fills the bearer schemes with its token.
    pub(crate) login: bool,
}

/// Everything a call needs, shared by every action's closure.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) spec: Spec,
    pub(crate) kinds: Vec<Kind>,
    pub(crate) plans: Vec<Plan>,
    pub(crate) credentials: Credentials,
}

/// One way to call an operation: which instance each bound path parameter takes (0 is
/// the first), and the body variant.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) op: usize,
    pub(crate) slots: Vec<usize>,
    pub(crate) variant: Option<Variant>,
}

/// The instances of kind `kind` in `ctx`.
pub(crate) fn instances<'c>(ctx: &'c Context, kind: &Kind) -> &'c [Value] {
    ctx.get(RESOURCES)
        .and_then(|r| r.get(&kind.name))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn live(instance: &Value) -> bool {
    instance.get("gone") != Some(&Value::Bool(true))
}

impl Model {
    fn op(&self, call: &Call) -> (&Operation, &Plan) {
        (&self.spec.operations()[call.op], &self.plans[call.op])
    }

    fn value(&self, ctx: &Context, source: &Source, slot: usize) -> Option<Value> {
        self.value_of(ctx, source, slot, false)
    }

    fn value_of(&self, ctx: &Context, source: &Source, slot: usize, gone: bool) -> Option<Value> {
        let instance = instances(ctx, &self.kinds[source.kind]).get(slot)?;
        (gone || live(instance))
            .then(|| instance.get(&source.field).cloned())
            .flatten()
    }

    /// Whether `call` can run in `ctx`: every instance it names exists and is not
    /// deleted, and a create stays under `limit` instances of its kind.
    pub(crate) fn enabled(&self, ctx: &Context, call: &Call, limit: usize) -> bool {
        let (_, plan) = self.op(call);
        if let Some(k) = plan.creates {
            if instances(ctx, &self.kinds[k]).len() >= limit {
                return false;
            }
        }
        let mut slots = call.slots.iter();
        let path_ok = plan.path.iter().all(|(_, source)| match source {
            Some(s) => slots
                .next()
                .is_some_and(|slot| self.value(ctx, s, *slot).is_some()),
            None => true,
        });
        let bound = bound_properties(plan, call.variant.as_ref());
        path_ok
            && plan
                .query
                .iter()
                .all(|(_, s, _)| s.as_ref().is_none_or(|s| self.first(ctx, s).is_some()))
            && bound.iter().all(|(_, s)| self.first(ctx, s).is_some())
    }

    fn first(&self, ctx: &Context, source: &Source) -> Option<Value> {
        (0..instances(ctx, &self.kinds[source.kind]).len()).find_map(|i| self.value(ctx, source, i))
    }

    /// Sends `call` with `client`, records the answer under [`LAST`], and adds what it
    /// created (or updates, or deletes) to [`RESOURCES`].
    pub(crate) fn send(
        &self,
        client: &Client,
        ctx: &mut Context,
        call: &Call,
    ) -> Result<Response, StepError> {
        self.send_with(client, ctx, call, false)
    }

    /// [`send`](Self::send) to a deleted resource, whose read must not succeed.
    pub(crate) fn send_gone(
        &self,
        client: &Client,
        ctx: &mut Context,
        call: &Call,
    ) -> Result<Response, StepError> {
        self.send_with(client, ctx, call, true)
    }

    fn send_with(
        &self,
        client: &Client,
        ctx: &mut Context,
        call: &Call,
        gone: bool,
    ) -> Result<Response, StepError> {
        let (op, plan) = self.op(call);
        let mut path = op.path.clone();
        let mut slots = call.slots.iter();
        let mut subject: Option<(usize, usize)> = None;
        for (name, source) in &plan.path {
            let value = match source {
                Some(s) => {
                    let slot = *slots.next().unwrap_or(&0);
                    subject = Some((s.kind, slot));
                    self.value_of(ctx, s, slot, gone).ok_or_else(|| {
                        StepError::msg(format!("no {} #{}", self.kinds[s.kind].name, slot + 1))
                    })?
                }
                None => generate(&schema_of(op, name), 1),
            };
            path = path.replace(&format!("{{{name}}}"), &segment(&value));
        }
        let mut request = client.request(op.method, &path);
        for (name, source, schema) in &plan.query {
            let value = match source {
                Some(s) => self.first(ctx, s).unwrap_or(Value::Null),
                None => generate(schema, 1),
            };
            request = request.query(name.clone(), plain(&value));
        }
        request = self.authorize(request, op, ctx);
        let nonce = plan
            .creates
            .map_or(1, |k| instances(ctx, &self.kinds[k]).len() + 1);
        let invalid = call.variant.as_ref().is_some_and(|v| v.invalid);
        if let Some(variant) = &call.variant {
            let bound: Vec<(String, Value)> = bound_properties(plan, Some(variant))
                .into_iter()
                .filter_map(|(name, s)| self.first(ctx, s).map(|v| (name.clone(), v)))
                .collect();
            request = request.json(&variant.body(nonce, &bound));
        }
        let response = request.send()?;
        let body: Option<Value> = response.json().ok();
        ctx.set(
            LAST,
            json!({"op": call.op, "status": response.status(), "body": body,
                   "json": body.is_some() || response.bytes().is_empty(),
                   "invalid": invalid, "request": format!("{} {path}", op.method.as_str())}),
        );
        if response.is_success() {
            self.record(ctx, op, plan, subject, &response, body.as_ref());
        }
        Ok(response)
    }

    fn record(
        &self,
        ctx: &mut Context,
        op: &Operation,
        plan: &Plan,
        subject: Option<(usize, usize)>,
        response: &Response,
        body: Option<&Value>,
    ) {
        let mut resources = ctx.get(RESOURCES).cloned().unwrap_or_else(|| json!({}));
        if let Some(k) = plan.creates {
            let kind = &self.kinds[k];
            let mut instance = Map::new();
            for field in &kind.fields {
                if let Some(v) = body.and_then(|b| b.get(field)) {
                    instance.insert(field.clone(), v.clone());
                }
            }
            if !instance.contains_key("id") {
                let located = response
                    .header("location")
                    .and_then(|l| l.rsplit('/').next());
                match located {
                    Some(id) => instance.insert("id".into(), Value::from(id)),
                    None => return,
                };
            }
            push(&mut resources, &kind.name, Value::Object(instance));
        } else if let Some((k, slot)) = subject.filter(|_| plan.subject.is_some()) {
            let kind = &self.kinds[k];
            let Some(instance) = resources.pointer_mut(&format!("/{}/{slot}", kind.name)) else {
                return;
            };
            if op.method == crate::journey::Method::Delete && op.path.ends_with('}') {
                instance["gone"] = Value::Bool(true);
            } else if let Some(b) = body.filter(|b| b.get("id") == instance.get("id")) {
                for field in &kind.fields {
                    if let Some(v) = b.get(field) {
                        instance[field] = v.clone();
                    }
                }
            }
        }
        ctx.set(RESOURCES, resources);
    }

    /// `request` with the credentials of the first of `op`'s security alternatives that
    /// has them all.
    pub(crate) fn authorize<'c>(
        &self,
        mut request: crate::journey::RequestBuilder<'c>,
        op: &Operation,
        ctx: &Context,
    ) -> crate::journey::RequestBuilder<'c> {
        let token = ctx.get(TOKEN).and_then(Value::as_str);
        let credential = |scheme: &str| -> Option<(String, &Value)> {
            let definition = self.spec.security_scheme(scheme)?;
            let given = self
                .credentials
                .by_scheme
                .iter()
                .find(|(s, _)| s == scheme)
                .map(|(_, v)| v.clone());
            let bearer = matches!(
                definition.get("type").and_then(Value::as_str),
                Some("oauth2" | "openIdConnect")
            ) || definition
                .get("scheme")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("bearer"));
            let value = given.or_else(|| {
                (bearer && self.credentials.login)
                    .then(|| token.map(str::to_owned))
                    .flatten()
            })?;
            Some((value, definition))
        };
        for alternative in &op.security {
            let found: Option<Vec<_>> = alternative.iter().map(|s| credential(s)).collect();
            let Some(found) = found else { continue };
            for (value, definition) in found {
                let name = definition
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                request = match (
                    definition.get("type").and_then(Value::as_str),
                    definition.get("in").and_then(Value::as_str),
                ) {
                    (Some("apiKey"), Some("query")) => request.query(name.to_owned(), value),
                    (Some("apiKey"), Some("cookie")) => {
                        request.header("Cookie", format!("{name}={value}"))
                    }
                    (Some("apiKey"), _) => request.api_key(name.to_owned(), value),
                    (Some("http"), _)
                        if definition
                            .get("scheme")
                            .and_then(Value::as_str)
                            .is_some_and(|s| s.eq_ignore_ascii_case("basic")) =>
                    {
                        request.authorization("Basic", value)
                    }
                    _ => request.bearer(value),
                };
            }
            break;
        }
        request
    }
}

fn push(resources: &mut Value, kind: &str, instance: Value) {
    if let Value::Object(map) = resources {
        let list = map.entry(kind.to_owned()).or_insert_with(|| json!([]));
        if let Value::Array(items) = list {
            items.push(instance);
        }
    }
}

/// The body properties `variant`'s schema has that are bound to a source.
fn bound_properties<'p>(plan: &'p Plan, variant: Option<&Variant>) -> Vec<&'p (String, Source)> {
    let Some(variant) = variant else {
        return Vec::new();
    };
    plan.body
        .iter()
        .filter(|(name, _)| super::model::property(&variant.schema, name).is_some())
        .collect()
}

/// The schema of path parameter `name`.
fn schema_of(op: &Operation, name: &str) -> Value {
    op.parameters
        .iter()
        .find(|p| p.name == name && p.location == "path")
        .map_or(Value::Null, |p| p.schema.clone())
}

/// A value as it goes into a query: a string without its quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as it goes into a path segment: [`plain`], percent-encoded.
fn segment(value: &Value) -> String {
    percent_encoding::utf8_percent_encode(&plain(value), percent_encoding::NON_ALPHANUMERIC)
        .to_string()
}
