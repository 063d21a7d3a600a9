//! A parsed OpenAPI document: its operations, their parameters, bodies, responses and
//! links, with every `$ref` inlined.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::schema::{deref, inline, Validator};
use super::OpenApiError;
use crate::journey::{Client, Method};

/// An OpenAPI 3.0 or 3.1 document (JSON or YAML), parsed into [`Operation`]s.
///
/// ```
/// use venomqa::openapi::Spec;
///
/// let spec = Spec::parse(r#"
/// openapi: 3.0.3
/// info: {title: notes, version: "1"}
/// paths:
///   /notes:
///     post:
///       operationId: createNote
///       responses:
///         "201":
///           description: created
///           content:
///             application/json:
///               schema: {type: object, required: [id], properties: {id: {type: integer}}}
/// "#)?;
/// assert_eq!(spec.operations()[0].id, "createNote");
/// # Ok::<(), venomqa::openapi::OpenApiError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Spec {
    pub(crate) document: Value,
    pub(crate) openapi_31: bool,
    operations: Vec<Operation>,
}

/// One operation of the spec (a method on a path).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Operation {
    /// Its `operationId`, or `METHOD /path` when it has none.
    pub id: String,
    /// The HTTP method.
    pub method: Method,
    /// The path template, `/orders/{id}/pay`.
    pub path: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Path, query and header parameters (the path item's and the operation's).
    pub parameters: Vec<Parameter>,
    /// The JSON request body's schema (inlined), if it takes one.
    pub body: Option<Value>,
    /// Whether the body is required.
    pub body_required: bool,
    /// The documented answers: status (`"201"`, `"4XX"`, `"default"`) to the JSON
    /// schema (inlined) of the body, `None` for a body the spec does not describe.
    pub responses: BTreeMap<String, Option<Value>>,
    /// Its security requirements (alternatives, each a list of scheme names); the
    /// spec's global ones where the operation has none.
    pub security: Vec<Vec<String>>,
    /// Its responses' links: (target operation id, target parameter, source pointer in
    /// the response body).
    pub links: Vec<Link>,
}

/// A parameter of an operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Parameter {
    /// Its name.
    pub name: String,
    /// `path`, `query`, `header` or `cookie`.
    pub location: String,
    /// Whether it is required.
    pub required: bool,
    /// Its schema (inlined).
    pub schema: Value,
}

/// An OpenAPI link: a parameter of a later operation taken from this one's response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Link {
    /// The operation it leads to.
    pub operation: String,
    /// The parameter of that operation.
    pub parameter: String,
    /// The JSON pointer into this operation's response body (`/id`).
    pub pointer: String,
}

const METHODS: [(&str, Method); 7] = [
    ("get", Method::Get),
    ("put", Method::Put),
    ("post", Method::Post),
    ("delete", Method::Delete),
    ("patch", Method::Patch),
    ("head", Method::Head),
    ("options", Method::Options),
];

impl Spec {
    /// Parses `text`, JSON or YAML.
    pub fn parse(text: &str) -> Result<Spec, OpenApiError> {
        let document: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| OpenApiError::Parse(Box::new(e)))?
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| OpenApiError::Parse(Box::new(e)))?
        };
        Spec::from_value(document)
    }

    /// Reads and parses the file at `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Spec, OpenApiError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| OpenApiError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Spec::parse(&text)
    }

    /// Fetches the spec the server serves at `path` (`/openapi.json`) with `client`.
    pub fn fetch(client: &Client, path: &str) -> Result<Spec, OpenApiError> {
        let response = client
            .get(path)
            .send()
            .map_err(|e| OpenApiError::Fetch {
                path: path.to_owned(),
                source: Box::new(e),
            })?
            .expect_success()
            .map_err(|e| OpenApiError::Fetch {
                path: path.to_owned(),
                source: Box::new(e),
            })?;
        Spec::parse(&response.text())
    }

    /// A spec from an already parsed document.
    pub fn from_value(document: Value) -> Result<Spec, OpenApiError> {
        let version = document
            .get("openapi")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let openapi_31 = version.starts_with("3.1");
        if !openapi_31 && !version.starts_with("3.0") {
            let found = document
                .get("swagger")
                .map_or(format!("openapi: {version:?}"), |v| format!("swagger: {v}"));
            return Err(OpenApiError::Version(found));
        }
        let global_security = security(document.get("security"));
        let mut operations = Vec::new();
        let paths = document.get("paths").and_then(Value::as_object);
        for (path, item) in paths.into_iter().flatten() {
            let item = deref(&document, item).map_err(|e| invalid(path, e))?;
            let shared = item.get("parameters");
            for (key, method) in METHODS {
                let Some(op) = item.get(key) else { continue };
                let id = op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("{} {path}", method.as_str()), str::to_owned);
                let parsed = operation(&document, path, method, id.clone(), op, shared)
                    .map_err(|e| invalid(&id, e))?;
                let mut parsed = parsed;
                if op.get("security").is_none() {
                    parsed.security = global_security.clone();
                }
                operations.push(parsed);
            }
        }
        // serde_json keeps a map's order only with its `preserve_order` feature, which
        // another crate of the build may turn on: sort, so the order (and with it the
        // actions' and the exploration's) is the same in every build.
        let rank = |m: Method| METHODS.iter().position(|(_, x)| *x == m);
        operations.sort_by(|a, b| (&a.path, rank(a.method)).cmp(&(&b.path, rank(b.method))));
        Ok(Spec {
            document,
            openapi_31,
            operations,
        })
    }

    /// Its operations: by path (sorted), then by method (get, put, post, delete, patch,
    /// head, options).
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation whose id is `id`.
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|o| o.id == id)
    }

    /// The security scheme named `name` (`components.securitySchemes`).
    pub(crate) fn security_scheme(&self, name: &str) -> Option<&Value> {
        let scheme = self.document.pointer(&format!(
            "/components/securitySchemes/{}",
            name.replace('~', "~0").replace('/', "~1")
        ))?;
        deref(&self.document, scheme).ok()
    }

    /// The validator of `schema`.
    pub(crate) fn validator(&self, schema: &Value) -> Result<Validator, String> {
        Validator::new(schema, self.openapi_31)
    }
}

fn invalid(at: &str, message: String) -> OpenApiError {
    OpenApiError::Invalid {
        at: at.to_owned(),
        message,
    }
}

fn security(value: Option<&Value>) -> Vec<Vec<String>> {
    value
        .and_then(Value::as_array)
        .map(|alternatives| {
            alternatives
                .iter()
                .filter_map(Value::as_object)
                .map(|schemes| {
                    let mut names: Vec<String> = schemes.keys().cloned().collect();
                    names.sort();
                    names
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The JSON schema of `content` (`application/json`, or any `+json` type), if any.
fn json_schema(doc: &Value, content: Option<&Value>) -> Result<Option<Value>, String> {
    let Some(content) = content.and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut json_types: Vec<&String> = content.keys().filter(|t| t.ends_with("+json")).collect();
    json_types.sort();
    let media = content
        .get("application/json")
        .or_else(|| json_types.first().and_then(|t| content.get(*t)));
    match media.and_then(|m| m.get("schema")) {
        Some(schema) => inline(doc, schema).map(Some),
        None => Ok(None),
    }
}

fn operation(
    doc: &Value,
    path: &str,
    method: Method,
    id: String,
    op: &Value,
    shared: Option<&Value>,
) -> Result<Operation, String> {
    let mut parameters: Vec<Parameter> = Vec::new();
    let listed = shared
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            op.get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for p in listed {
        let p = deref(doc, p)?;
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        let location = p.get("in").and_then(Value::as_str).unwrap_or("query");
        let parameter = Parameter {
            name: name.to_owned(),
            location: location.to_owned(),
            required: location == "path" || p.get("required") == Some(&Value::Bool(true)),
            schema: inline(doc, p.get("schema").unwrap_or(&Value::Null))?,
        };
        // An operation's parameter overrides the path item's of the same name and place.
        parameters.retain(|q| !(q.name == parameter.name && q.location == parameter.location));
        parameters.push(parameter);
    }
    let (body, body_required) = match op.get("requestBody") {
        Some(b) => {
            let b = deref(doc, b)?;
            (
                json_schema(doc, b.get("content"))?,
                b.get("required") == Some(&Value::Bool(true)),
            )
        }
        None => (None, false),
    };
    let mut responses = BTreeMap::new();
    let mut links = Vec::new();
    for (status, response) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let response = deref(doc, response)?;
        responses.insert(
            status.to_ascii_uppercase().replace("DEFAULT", "default"),
            json_schema(doc, response.get("content"))?,
        );
        for link in response
            .get("links")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|l| l.values())
        {
            let link = deref(doc, link)?;
            let Some(target) = link.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            for (parameter, expression) in link
                .get("parameters")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let pointer = expression
                    .as_str()
                    .and_then(|e| e.strip_prefix("$response.body#"));
                if let Some(pointer) = pointer {
                    links.push(Link {
                        operation: target.to_owned(),
                        parameter: parameter.trim_start_matches("path.").to_owned(),
                        pointer: pointer.to_owned(),
                    });
                }
            }
        }
    }
    links.sort_by(|a, b| (&a.operation, &a.parameter).cmp(&(&b.operation, &b.parameter)));
    Ok(Operation {
        id,
        method,
        path: path.to_owned(),
        tags: op
            .get("tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        parameters,
        body,
        body_required,
        responses,
        security: security(op.get("security")),
        links,
    })
}

impl Operation {
    /// Whether it only reads (GET, HEAD, OPTIONS).
    pub fn is_read(&self) -> bool {
        matches!(self.method, Method::Get | Method::Head | Method::Options)
    }

    /// The schema documented for `status`, and whether the status is documented at all
    /// (exactly, by its class `2XX`, or by `default`).
    pub fn response(&self, status: u16) -> Option<&Option<Value>> {
        let exact = status.to_string();
        let class = format!("{}XX", status / 100);
        self.responses
            .get(&exact)
            .or_else(|| self.responses.get(&class))
            .or_else(|| self.responses.get("default"))
    }

    /// Whether `status` is documented.
    pub fn documents(&self, status: u16) -> bool {
        self.response(status).is_some()
    }

    /// The path's template parameters, in order (`/a/{x}/b/{y}`: `x`, `y`).
    pub fn path_parameters(&self) -> Vec<&str> {
        self.path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}
