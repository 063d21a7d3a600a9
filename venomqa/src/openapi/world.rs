//! [`OpenApiWorld`]: a [`World`] built from a [`Spec`].

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::call::{Call, Credentials, Model, TOKEN};
use super::checks::{invariants, Validators};
use super::model::plan;
use super::spec::Spec;
use super::values::variants;
use super::OpenApiError;
use crate::explore::{Action, World};
use crate::journey::{Client, Context, StepError};

/// Which request bodies the actions send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Inputs {
    /// Valid bodies only (one per `oneOf` branch): the state exploration.
    #[default]
    Valid,
    /// Also, per property, a body at its limits (`maxLength`, `minimum`, `maximum`):
    /// valid inputs that servers often get wrong.
    Boundary,
    /// Also invalid bodies (a required property left out, a property of the wrong type),
    /// which must be refused with a 4xx ([`DOCUMENTED_STATUS`](super::DOCUMENTED_STATUS)).
    Invalid,
}

type SetupFn = Arc<dyn Fn(&Client, &mut Context) -> Result<(), StepError> + Send + Sync>;

/// Builds a [`World`] from a [`Spec`]: actions, their preconditions, a setup (login,
/// seeds) and the spec's invariants. The world it builds takes hand-written actions and
/// invariants like any other ([`World::action`], [`World::invariant`]).
///
/// ```
/// use venomqa::openapi::{OpenApiWorld, Spec};
///
/// let spec = Spec::parse(r#"
/// openapi: 3.1.0
/// info: {title: notes, version: "1"}
/// paths:
///   /notes:
///     post:
///       operationId: createNote
///       requestBody:
///         content:
///           application/json:
///             schema: {type: object, required: [text], properties: {text: {type: string, example: hi}}}
///       responses:
///         "201":
///           description: created
///           content:
///             application/json:
///               schema: {type: object, required: [id], properties: {id: {type: integer}}}
///   /notes/{id}:
///     delete:
///       operationId: deleteNote
///       parameters: [{name: id, in: path, required: true, schema: {type: integer}}]
///       responses: {"204": {description: deleted}, "404": {description: none}}
/// "#)?;
/// let world = OpenApiWorld::new(&spec).instances(2).build()?;
/// assert_eq!(world.action_names(), ["createNote", "deleteNote(notes 1)", "deleteNote(notes 2)"]);
/// # Ok::<(), venomqa::openapi::OpenApiError>(())
/// ```
#[derive(Clone)]
pub struct OpenApiWorld {
    spec: Spec,
    name: String,
    instances: usize,
    inputs: Inputs,
    login: Option<(String, String)>,
    credentials: Vec<(String, String)>,
    seeds: Vec<String>,
    setup: Option<SetupFn>,
    tags: Vec<String>,
    excluded_tags: Vec<String>,
    operations: Vec<String>,
    excluded_operations: Vec<String>,
    excluded_paths: Vec<String>,
    reads_as_actions: bool,
    status: bool,
    schemas: bool,
    reads: bool,
    server_errors: bool,
}

impl std::fmt::Debug for OpenApiWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenApiWorld")
            .field("name", &self.name)
            .field("instances", &self.instances)
            .field("inputs", &self.inputs)
            .field("seeds", &self.seeds)
            .finish_non_exhaustive()
    }
}

impl World {
    /// The world of `spec` with the defaults of [`OpenApiWorld`].
    pub fn from_openapi(spec: &Spec) -> Result<World, OpenApiError> {
        OpenApiWorld::new(spec).build()
    }
}

impl OpenApiWorld {
    /// A world of `spec`: every operation, 2 instances of each resource, valid inputs,
    /// every invariant on.
    pub fn new(spec: &Spec) -> Self {
        let name = spec
            .document
            .pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or("openapi")
            .to_owned();
        OpenApiWorld {
            spec: spec.clone(),
            name,
            instances: 2,
            inputs: Inputs::Valid,
            login: None,
            credentials: Vec::new(),
            seeds: Vec::new(),
            setup: None,
            tags: Vec::new(),
            excluded_tags: Vec::new(),
            operations: Vec::new(),
            excluded_operations: Vec::new(),
            excluded_paths: Vec::new(),
            reads_as_actions: false,
            status: true,
            schemas: true,
            reads: true,
            server_errors: true,
        }
    }

    /// How many instances of each kind of resource the actions create at most (default
    /// 2), and so how many "pay order N" actions there are.
    pub fn instances(mut self, n: usize) -> Self {
        self.instances = n.max(1);
        self
    }

    /// Which bodies to send (default [`Inputs::Valid`]).
    pub fn inputs(mut self, inputs: Inputs) -> Self {
        self.inputs = inputs;
        self
    }

    /// Runs `operation` in the setup and takes the bearer token at `pointer` (`/token`)
    /// of its answer for every `http bearer` (or OAuth2) scheme.
    pub fn login(mut self, operation: impl Into<String>, pointer: impl Into<String>) -> Self {
        self.login = Some((operation.into(), pointer.into()));
        self
    }

    /// The credential of the security scheme `scheme` (`components.securitySchemes`): an
    /// API key, a bearer token, or `user:password` for HTTP basic.
    pub fn credential(mut self, scheme: impl Into<String>, value: impl Into<String>) -> Self {
        self.credentials.push((scheme.into(), value.into()));
        self
    }

    /// Runs `operation` once in the setup, after the login (a catalogue, an admin): what
    /// it creates is there from the first state. Seeds run in the order given.
    pub fn seed(mut self, operation: impl Into<String>) -> Self {
        self.seeds.push(operation.into());
        self
    }

    /// A hand-written setup, run before the login and the seeds.
    pub fn setup<T, F>(mut self, setup: F) -> Self
    where
        F: Fn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        self.setup = Some(Arc::new(move |c, ctx| setup(c, ctx).map(drop)));
        self
    }

    /// Only the operations with one of these tags (repeatable).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Not the operations with this tag.
    pub fn exclude_tag(mut self, tag: impl Into<String>) -> Self {
        self.excluded_tags.push(tag.into());
        self
    }

    /// Only these operations (repeatable).
    pub fn operation(mut self, id: impl Into<String>) -> Self {
        self.operations.push(id.into());
        self
    }

    /// Not this operation.
    pub fn exclude_operation(mut self, id: impl Into<String>) -> Self {
        self.excluded_operations.push(id.into());
        self
    }

    /// Not the operations whose path starts with `prefix`.
    pub fn exclude_path(mut self, prefix: impl Into<String>) -> Self {
        self.excluded_paths.push(prefix.into());
        self
    }

    /// Reads (GET, HEAD, OPTIONS) as actions too. By default they are checked after
    /// every step by [`READS`](super::READS) instead: a read changes no state, so as an
    /// action it only multiplies the steps.
    pub fn reads_as_actions(mut self, on: bool) -> Self {
        self.reads_as_actions = on;
        self
    }

    /// [`DOCUMENTED_STATUS`](super::DOCUMENTED_STATUS) on or off (default on).
    pub fn check_status(mut self, on: bool) -> Self {
        self.status = on;
        self
    }

    /// [`RESPONSE_SCHEMA`](super::RESPONSE_SCHEMA) on or off (default on); off, the
    /// reads check statuses only.
    pub fn check_schemas(mut self, on: bool) -> Self {
        self.schemas = on;
        self
    }

    /// [`READS`](super::READS) on or off (default on).
    pub fn check_reads(mut self, on: bool) -> Self {
        self.reads = on;
        self
    }

    /// The explorer's "no 5xx" rule on or off (default on; see
    /// [`World::server_errors_are_violations`]).
    pub fn check_server_errors(mut self, on: bool) -> Self {
        self.server_errors = on;
        self
    }

    fn selected(&self, i: usize) -> bool {
        let op = &self.spec.operations()[i];
        (self.tags.is_empty() || op.tags.iter().any(|t| self.tags.contains(t)))
            && !op.tags.iter().any(|t| self.excluded_tags.contains(t))
            && (self.operations.is_empty() || self.operations.contains(&op.id))
            && !self.excluded_operations.contains(&op.id)
            && !self
                .excluded_paths
                .iter()
                .any(|p| op.path.starts_with(p.as_str()))
    }

    fn index(&self, id: &str) -> Result<usize, OpenApiError> {
        let known = self.spec.operations().iter().position(|o| o.id == id);
        known.ok_or_else(|| OpenApiError::UnknownOperation(id.to_owned()))
    }

    /// The world.
    pub fn build(self) -> Result<World, OpenApiError> {
        for id in self
            .operations
            .iter()
            .chain(&self.seeds)
            .chain(self.login.iter().map(|(o, _)| o))
        {
            self.index(id)?;
        }
        let (kinds, plans) = plan(&self.spec);
        let mut validators: Validators = HashMap::new();
        for (i, op) in self.spec.operations().iter().enumerate() {
            for (status, schema) in &op.responses {
                if let Some(schema) = schema {
                    let v =
                        self.spec
                            .validator(schema)
                            .map_err(|message| OpenApiError::Invalid {
                                at: format!("{} {status}", op.id),
                                message,
                            })?;
                    validators.insert((i, status.clone()), v);
                }
            }
        }
        let model = Arc::new(Model {
            spec: self.spec.clone(),
            kinds,
            plans,
            credentials: Credentials {
                by_scheme: self.credentials.clone(),
                login: self.login.is_some(),
            },
        });
        let (boundary, invalid) = match self.inputs {
            Inputs::Valid => (false, false),
            Inputs::Boundary => (true, false),
            Inputs::Invalid => (true, true),
        };
        let mut actions = Vec::new();
        let mut reads = Vec::new();
        for (i, op) in self.spec.operations().iter().enumerate() {
            if !self.selected(i) {
                continue;
            }
            let bound_kinds: Vec<usize> = model.plans[i]
                .path
                .iter()
                .filter_map(|(_, s)| s.as_ref().map(|s| s.kind))
                .collect();
            let bound_names: Vec<String> =
                model.plans[i].body.iter().map(|(n, _)| n.clone()).collect();
            let body_variants: Vec<Option<_>> = match &op.body {
                Some(schema) if !op.is_read() => variants(schema, boundary, invalid, &bound_names)
                    .into_iter()
                    .map(Some)
                    .collect(),
                _ => vec![None],
            };
            for slots in combinations(bound_kinds.len(), self.instances) {
                for variant in &body_variants {
                    let call = Call {
                        op: i,
                        slots: slots.clone(),
                        variant: variant.clone(),
                    };
                    if op.is_read() {
                        reads.push(call.clone());
                        if !self.reads_as_actions {
                            continue;
                        }
                    }
                    actions.push(action(&model, &bound_kinds, call, self.instances));
                }
            }
        }
        let validators = Arc::new(validators);
        let checks = invariants(
            &model,
            &validators,
            self.status,
            self.schemas,
            self.reads.then_some(reads),
        );
        let setup = self.setup_fn(&model)?;
        let mut world = World::new(self.name)
            .setup(move |client, ctx| setup(client, ctx))
            .fingerprint_ignores([TOKEN, super::call::LAST])
            .server_errors_are_violations(self.server_errors)
            .actions(actions);
        for invariant in checks {
            world = world.invariant(invariant);
        }
        Ok(world)
    }

    fn setup_fn(&self, model: &Arc<Model>) -> Result<SetupFn, OpenApiError> {
        let login = match &self.login {
            Some((id, pointer)) => Some((self.index(id)?, pointer.clone())),
            None => None,
        };
        let seeds = self
            .seeds
            .iter()
            .map(|s| self.index(s))
            .collect::<Result<Vec<_>, _>>()?;
        let (planned, user) = (model.clone(), self.setup.clone());
        let first_call = move |op: usize| Call {
            op,
            slots: vec![
                0;
                planned.plans[op]
                    .path
                    .iter()
                    .filter(|(_, s)| s.is_some())
                    .count()
            ],
            variant: planned.spec.operations()[op]
                .body
                .as_ref()
                .and_then(|b| variants(b, false, false, &[]).into_iter().next()),
        };
        let model = model.clone();
        Ok(Arc::new(move |client: &Client, ctx: &mut Context| {
            if let Some(user) = &user {
                user(client, ctx)?;
            }
            if let Some((op, pointer)) = &login {
                let response = model
                    .send(client, ctx, &first_call(*op))?
                    .expect_success()?;
                let token = response.value(pointer)?;
                let token = token
                    .as_str()
                    .map_or_else(|| token.to_string(), str::to_owned);
                ctx.set(TOKEN, token);
            }
            for op in &seeds {
                model
                    .send(client, ctx, &first_call(*op))?
                    .expect_success()?;
            }
            Ok(())
        }))
    }
}

/// Every assignment of `n` slots to `count` path parameters (`[0, 0]`, `[0, 1]`, ...).
fn combinations(count: usize, n: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new()];
    for _ in 0..count {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                (0..n).map(move |slot| {
                    let mut next = prefix.clone();
                    next.push(slot);
                    next
                })
            })
            .collect();
    }
    out
}

fn action(model: &Arc<Model>, bound: &[usize], call: Call, limit: usize) -> Action {
    let op = &model.spec.operations()[call.op];
    let mut parts: Vec<String> = bound
        .iter()
        .zip(&call.slots)
        .map(|(k, slot)| format!("{} {}", model.kinds[*k].name, slot + 1))
        .collect();
    if let Some(name) = call.variant.as_ref().and_then(|v| v.name.clone()) {
        parts.push(name);
    }
    let name = match parts.is_empty() {
        true => op.id.clone(),
        false => format!("{}({})", op.id, parts.join(", ")),
    };
    let description = format!("{} {}", op.method.as_str(), op.path);
    let (run_model, run_call) = (model.clone(), call.clone());
    let (pre_model, pre_call) = (model.clone(), call);
    Action::new(name, move |client, ctx| {
        run_model.send(client, ctx, &run_call)
    })
    .precondition(move |ctx| pre_model.enabled(ctx, &pre_call, limit))
    .description(description)
}
