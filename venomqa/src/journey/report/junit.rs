//! The report as JUnit XML for CI: one `<testsuite>` per journey, a `<testcase>` for its
//! main steps and one per path, written with `quick-xml`.

use std::fmt::Write as _;
use std::time::Duration;

use quick_xml::escape::escape;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;

use super::journey_result::JourneyResult;
use super::model::{PathResult, Status, StepResult};
use super::text::diff_details;

impl JourneyResult {
    /// The report as JUnit XML: one `<testsuite>` for the journey, one `<testcase>` for
    /// its main steps and one per path.
    pub fn to_junit(&self) -> String {
        junit_xml(std::slice::from_ref(self))
    }
}

/// Escapes text for XML attributes and content (newlines as `&#10;`, so that attributes
/// keep them); drops the characters XML 1.0 forbids.
pub(crate) fn xml(text: &str) -> String {
    let allowed: String = text
        .chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
        })
        .collect();
    escape(allowed.as_str()).replace('\n', "&#10;")
}

/// JUnit XML for several journeys: one `<testsuite>` each, a `<testcase>` for the main
/// steps and one per path (`classname` = `journey.checkpoint`), `<failure>` with the
/// request, response and database changes, `<skipped>` with the reason.
pub fn junit_xml(results: &[JourneyResult]) -> String {
    let suites: Vec<Suite> = results.iter().map(Suite::new).collect();
    let count = |f: fn(&Suite) -> usize| suites.iter().map(f).sum::<usize>();
    let time: f64 = suites.iter().map(|s| s.time.as_secs_f64()).sum();
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(
        &mut w,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    );
    write(
        &mut w,
        Event::Start(element(
            "testsuites",
            &[
                ("name", "venomqa journeys".to_owned()),
                ("tests", count(|s| s.cases.len()).to_string()),
                ("failures", count(Suite::failures).to_string()),
                ("errors", "0".to_owned()),
                ("skipped", count(Suite::skipped).to_string()),
                ("time", format!("{time:.3}")),
            ],
        )),
    );
    for suite in &suites {
        suite.write(&mut w);
    }
    write(&mut w, Event::End(BytesEnd::new("testsuites")));
    let mut out = String::from_utf8(w.into_inner()).expect("the writer was given UTF-8 only");
    out.push('\n');
    out
}

/// A journey's test cases.
struct Suite {
    name: String,
    time: Duration,
    cases: Vec<Case>,
}

/// One test case: the main steps, a path, or a failed rollback.
struct Case {
    classname: String,
    name: String,
    time: Duration,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed { message: String, detail: String },
    Skipped { message: String },
}

impl Suite {
    fn new(r: &JourneyResult) -> Self {
        let mut cases = Vec::new();
        let main: Vec<&StepResult> = r.step_results().collect();
        if !main.is_empty() {
            let failed = main.iter().any(|s| s.status == Status::Failed);
            cases.push(Case {
                classname: r.journey_name.clone(),
                name: "main steps".to_owned(),
                time: main.iter().map(|s| s.duration).sum(),
                outcome: if failed {
                    Outcome::Failed {
                        message: first_error(&main).unwrap_or_default(),
                        detail: r.failures(),
                    }
                } else {
                    Outcome::Passed
                },
            });
        }
        for b in r.branch_results() {
            for p in &b.path_results {
                cases.push(Case {
                    classname: format!("{}.{}", r.journey_name, b.checkpoint_name),
                    name: p.path_name.clone(),
                    time: p.duration,
                    outcome: path_outcome(p),
                });
            }
        }
        for e in r.state_errors() {
            cases.push(Case {
                classname: r.journey_name.clone(),
                name: "rollback".to_owned(),
                time: Duration::ZERO,
                outcome: Outcome::Failed {
                    message: e.clone(),
                    detail: e.clone(),
                },
            });
        }
        Suite {
            name: r.journey_name.clone(),
            time: r.duration,
            cases,
        }
    }

    fn failures(&self) -> usize {
        let failed = |c: &&Case| matches!(c.outcome, Outcome::Failed { .. });
        self.cases.iter().filter(failed).count()
    }

    fn skipped(&self) -> usize {
        let skipped = |c: &&Case| matches!(c.outcome, Outcome::Skipped { .. });
        self.cases.iter().filter(skipped).count()
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) {
        write(
            w,
            Event::Start(element(
                "testsuite",
                &[
                    ("name", self.name.clone()),
                    ("tests", self.cases.len().to_string()),
                    ("failures", self.failures().to_string()),
                    ("errors", "0".to_owned()),
                    ("skipped", self.skipped().to_string()),
                    ("time", format!("{:.3}", self.time.as_secs_f64())),
                ],
            )),
        );
        for case in &self.cases {
            case.write(w);
        }
        write(w, Event::End(BytesEnd::new("testsuite")));
    }
}

impl Case {
    fn write(&self, w: &mut Writer<Vec<u8>>) {
        let tag = element(
            "testcase",
            &[
                ("classname", self.classname.clone()),
                ("name", self.name.clone()),
                ("time", format!("{:.3}", self.time.as_secs_f64())),
            ],
        );
        match &self.outcome {
            Outcome::Passed => write(w, Event::Empty(tag)),
            Outcome::Failed { message, detail } => {
                write(w, Event::Start(tag));
                let failure = [("message", message.clone()), ("type", "journey".to_owned())];
                write(w, Event::Start(element("failure", &failure)));
                write(w, Event::Text(BytesText::from_escaped(xml(detail))));
                write(w, Event::End(BytesEnd::new("failure")));
                write(w, Event::End(BytesEnd::new("testcase")));
            }
            Outcome::Skipped { message } => {
                write(w, Event::Start(tag));
                let skipped = [("message", message.clone())];
                write(w, Event::Empty(element("skipped", &skipped)));
                write(w, Event::End(BytesEnd::new("testcase")));
            }
        }
    }
}

/// `step <name>: <error>` of the first failed step.
fn first_error(steps: &[&StepResult]) -> Option<String> {
    steps
        .iter()
        .find_map(|s| s.error().map(|e| format!("step {}: {e}", s.name)))
}

/// A path's case: its first failure, with every failed step's exchanges and the path's
/// database changes; or the reason it was skipped.
fn path_outcome(p: &PathResult) -> Outcome {
    match p.status {
        Status::Passed => Outcome::Passed,
        Status::Skipped => Outcome::Skipped {
            message: p.skip_reason.clone().unwrap_or_default(),
        },
        Status::Failed => {
            let failed: Vec<&StepResult> = p
                .step_results
                .iter()
                .filter(|s| s.status == Status::Failed)
                .collect();
            let mut detail = String::new();
            for s in &failed {
                if let Some(f) = &s.failure {
                    let _ = writeln!(detail, "step {}: {}", s.name, f.message);
                    for ex in &s.exchanges {
                        let _ = write!(detail, "{ex:2}");
                    }
                }
            }
            match &p.diff {
                Some(Ok(d)) => {
                    let _ = writeln!(detail, "database changes in this path: {d}");
                    detail.push_str(&diff_details(d, "  "));
                }
                Some(Err(e)) => {
                    let _ = writeln!(detail, "database changes: not available ({e})");
                }
                None => {}
            }
            Outcome::Failed {
                message: first_error(&failed).unwrap_or_default(),
                detail,
            }
        }
    }
}

/// A start tag with these attributes, their values escaped by [`xml`].
fn element(name: &str, attributes: &[(&str, String)]) -> BytesStart<'static> {
    let mut tag = BytesStart::new(name.to_owned());
    for (key, value) in attributes {
        tag.push_attribute(Attribute {
            key: QName(key),
            value: xml(value).into(),
        });
    }
    tag
}

/// Writes an event into memory, which cannot fail.
fn write(w: &mut Writer<Vec<u8>>, event: Event<'_>) {
    w.write_event(event).expect("writing into memory");
}
