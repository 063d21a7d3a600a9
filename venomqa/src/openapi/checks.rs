//! The invariants a spec implies: every status documented, every body matching its
//! schema, and the reads of what was created answering as the spec says.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::call::{instances, Call, Model, LAST};
use super::schema::Validator;
use super::spec::Operation;
use crate::journey::{Check, Invariant, Severity, StepError};

/// The invariant that every answer's status is one the operation documents, and that an
/// invalid body ([`Inputs::Invalid`](super::Inputs::Invalid)) is refused with a 4xx.
pub const DOCUMENTED_STATUS: &str = "every answer's status is documented";
/// The invariant that every answer's body matches the schema documented for its status.
pub const RESPONSE_SCHEMA: &str = "every answer matches its schema";
/// The invariant that, after every step, each read operation (GET) on each resource
/// created so far answers with a documented status and body, never 5xx, and not 404 for
/// a resource that was created and not deleted (nor 2xx for one that was).
pub const READS: &str = "every read answers as the spec says";

/// The response validators, by (operation, documented status key).
pub(crate) type Validators = HashMap<(usize, String), Validator>;

/// What is wrong with `status` and `body` as an answer of operation `op`: an
/// undocumented status, or a body off its schema (`None` when the body is not JSON).
pub(crate) fn judge(
    model: &Model,
    validators: &Validators,
    op: usize,
    status: u16,
    body: Option<&Value>,
    schemas: bool,
) -> Option<String> {
    let operation = &model.spec.operations()[op];
    if let Some(why) = undocumented(operation, status) {
        return Some(why);
    }
    let documented = operation.response(status)?;
    if !schemas || documented.is_none() {
        return None;
    }
    let key = [
        status.to_string(),
        format!("{}XX", status / 100),
        "default".to_owned(),
    ]
    .into_iter()
    .find(|k| operation.responses.contains_key(k))?;
    let validator = validators.get(&(op, key))?;
    let Some(body) = body else {
        return Some(format!(
            "the {status} answer is not JSON, though the spec gives it a schema"
        ));
    };
    let problems = validator.problems(body);
    (!problems.is_empty()).then(|| {
        format!(
            "the {status} body does not match its schema: {}",
            problems.join("; ")
        )
    })
}

/// Why `status` is not an answer `operation` documents, if it is not.
fn undocumented(operation: &Operation, status: u16) -> Option<String> {
    if operation.documents(status) {
        return None;
    }
    let known: Vec<&str> = operation.responses.keys().map(String::as_str).collect();
    Some(format!(
        "status {status} is not documented (the spec has {})",
        known.join(", ")
    ))
}

/// The invariants `model` implies, those switched on.
pub(crate) fn invariants(
    model: &Arc<Model>,
    validators: &Arc<Validators>,
    status: bool,
    schemas: bool,
    reads: Option<Vec<Call>>,
) -> Vec<Invariant> {
    let mut out = Vec::new();
    if status {
        let model = model.clone();
        out.push(
            Invariant::new(DOCUMENTED_STATUS, move |check| {
                let Some(last) = check.context().get(LAST) else {
                    return Ok(());
                };
                let (op, code) = last_call(last);
                let operation = &model.spec.operations()[op];
                if last["invalid"] == true && (200..300).contains(&code) {
                    return Err(StepError::msg(format!(
                        "{}: an invalid body was accepted with {code}",
                        last["request"].as_str().unwrap_or_default()
                    )));
                }
                match undocumented(operation, code) {
                    Some(why) => Err(StepError::msg(format!(
                        "{}: {why}",
                        last["request"].as_str().unwrap_or_default()
                    ))),
                    None => Ok(()),
                }
            })
            .severity(Severity::Medium),
        );
    }
    if schemas {
        let (model, validators) = (model.clone(), validators.clone());
        out.push(
            Invariant::new(RESPONSE_SCHEMA, move |check| {
                let Some(last) = check.context().get(LAST) else {
                    return Ok(());
                };
                let (op, code) = last_call(last);
                if !model.spec.operations()[op].documents(code) {
                    return Ok(()); // the status invariant's to report
                }
                let body = (last["json"] == true)
                    .then(|| &last["body"])
                    .filter(|b| !b.is_null());
                let empty = last["json"] == true && body.is_none();
                if empty
                    && model.spec.operations()[op]
                        .response(code)
                        .is_some_and(Option::is_none)
                {
                    return Ok(());
                }
                match judge(&model, &validators, op, code, body, true) {
                    Some(problem) => Err(StepError::msg(format!(
                        "{}: {problem}",
                        last["request"].as_str().unwrap_or_default()
                    ))),
                    None => Ok(()),
                }
            })
            .severity(Severity::High),
        );
    }
    if let Some(calls) = reads {
        let (model, validators) = (model.clone(), validators.clone());
        out.push(
            Invariant::new(READS, move |check| {
                read_all(check, &model, &validators, &calls, schemas)
            })
            .severity(Severity::High),
        );
    }
    out
}

fn last_call(last: &Value) -> (usize, u16) {
    (
        last["op"].as_u64().unwrap_or_default() as usize,
        last["status"].as_u64().unwrap_or_default() as u16,
    )
}

/// Every read call that its instances allow, judged.
fn read_all(
    check: &mut Check<'_>,
    model: &Model,
    validators: &Validators,
    calls: &[Call],
    schemas: bool,
) -> Result<(), StepError> {
    let mut problems = Vec::new();
    let mut ctx = check.context().clone();
    for call in calls {
        // A read of a deleted resource must not answer 2xx: it runs too.
        let plan = &model.plans[call.op];
        // A deleted resource whose id a later create got again (SQLite reuses rowids) is
        // that one's to read.
        let gone = plan.subject.and_then(|k| {
            let slot = *call.slots.last()?;
            let all = instances(&ctx, &model.kinds[k]);
            let instance = all.get(slot)?;
            let deleted = instance.get("gone") == Some(&Value::Bool(true));
            let reused = all
                .iter()
                .any(|i| i.get("gone").is_none() && i.get("id") == instance.get("id"));
            Some(deleted && !reused)
        });
        if gone != Some(true) && !model.enabled(&ctx, call, usize::MAX) {
            continue;
        }
        let response = if gone == Some(true) {
            model.send_gone(check.client(), &mut ctx, call)?
        } else {
            model.send(check.client(), &mut ctx, call)?
        };
        let status = response.status();
        let what = response.request_line().to_owned();
        let body: Option<Value> = response.json().ok();
        if status >= 500 {
            problems.push(format!("{what}: answered {status}"));
        } else if gone == Some(false) && matches!(status, 404 | 410) {
            problems.push(format!(
                "{what}: answered {status} for a resource created and not deleted"
            ));
        } else if gone == Some(true) && response.is_success() {
            problems.push(format!("{what}: answered {status} for a deleted resource"));
        } else if let Some(problem) =
            judge(model, validators, call.op, status, body.as_ref(), schemas)
        {
            problems.push(format!("{what}: {problem}"));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(StepError::msg(problems.join("\n"))),
    }
}
