//! The reports' formats, pinned: a run built by hand, shown as text, JSON and JUnit, is
//! what `testdata/` holds (what the reports looked like before they were split by concept;
//! the JUnit as quick-junit writes it, compared as a document).

use std::time::Duration;

use super::*;
use crate::capture::{ChangeKind, ColumnChange, Diff, RowChange, TableDiff};
use crate::journey::{Exchange, Method, Path, RecordedResponse, Step};

/// A run built by hand, with fixed times: every shape the reports have (a recorded and a
/// missing response, a diff with an updated column and one that could not be read, a
/// skipped path, a state error, text XML must escape).
fn sample_result() -> JourneyResult {
    let exchange = |status: Option<u16>| Exchange {
        method: Method::Post,
        url: "http://shop.test/orders?token=***".to_owned(),
        request_headers: vec![("Authorization".to_owned(), "Bearer ***".to_owned())],
        request_body: r#"{"sku":"a<b>&c","password":"***"}"#.to_owned(),
        response: match status {
            Some(status) => Ok(RecordedResponse {
                status,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: r#"{"error":"it's \"taken\""}"#.to_owned(),
            }),
            None => Err("connection refused".to_owned()),
        },
        duration: Duration::from_micros(1500),
    };
    let step = |name: &str, status: Status, failure: Option<StepFailure>, exchanges| StepResult {
        name: name.to_owned(),
        description: None,
        status,
        duration: Duration::from_micros(2345),
        attempts: 1,
        exchanges,
        failure,
    };
    let mut orders = TableDiff::new("orders");
    let mut row = RowChange::new(ChangeKind::Updated, "id=7");
    row.columns.push(ColumnChange::new("state", "new", "paid"));
    orders.push(row, 10);
    orders.push(RowChange::new(ChangeKind::Inserted, "id=8"), 10);
    let path = |name: &str| Path::new(name).step(Step::new("s", |_, _| Ok(())));
    let bad = PathResult::new(
        &path("pay_twice"),
        "cart",
        vec![
            step(
                "pay",
                Status::Failed,
                Some(StepFailure::new(
                    FailureKind::Expectation,
                    "POST http://shop.test/orders: expected status 201, got 409; line 2\nof <it> & \"more\"".to_owned(),
                )),
                vec![exchange(Some(201)), exchange(Some(409))],
            ),
            step("never", Status::Skipped, Some(StepFailure::new(FailureKind::Error, "skipped: step \"pay\" failed".to_owned())), vec![]),
        ],
        Duration::from_millis(12),
        Some(Ok(Diff::from_tables(vec![orders]))),
    );
    let down = PathResult::new(
        &path("server_down"),
        "cart",
        vec![step(
            "ping",
            Status::Failed,
            Some(StepFailure::new(
                FailureKind::Unreachable,
                "POST http://shop.test/orders: could not reach the server".to_owned(),
            )),
            vec![exchange(None)],
        )],
        Duration::from_micros(800),
        Some(Err("the diff failed".to_owned())),
    );
    let good = PathResult::new(
        &path("look"),
        "cart",
        vec![step(
            "look",
            Status::Passed,
            None,
            vec![exchange(Some(200))],
        )],
        Duration::from_millis(3),
        None,
    );
    let skipped = PathResult::skipped(
        &path("later"),
        "cart",
        "fail_fast: path \"pay_twice\" failed",
    );
    JourneyResult::new(
        "checkout".to_owned(),
        Some("buy things".to_owned()),
        vec![
            ItemResult::Step(step("add", Status::Passed, None, vec![exchange(Some(201))])),
            ItemResult::Checkpoint {
                name: "cart".to_owned(),
                made: true,
            },
            ItemResult::Branch(BranchResult::new(
                "cart",
                vec![good, bad, down, skipped],
                Duration::from_millis(40),
            )),
            ItemResult::Checkpoint {
                name: "late".to_owned(),
                made: false,
            },
        ],
        None,
        Duration::from_millis(1234),
        3,
        Duration::from_micros(4321),
        Duration::from_micros(99),
        vec!["rollback to checkpoint \"cart\" failed: disk full".to_owned()],
    )
}

#[test]
fn text_json_and_junit_keep_their_format() {
    let r = sample_result();
    assert_eq!(r.to_string(), include_str!("testdata/sample.txt"));
    // Compared as JUnit documents: the order quick-junit writes attributes in, and its
    // escaping and indentation, are its own.
    let junit = r.to_junit();
    assert!(
        junit.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n") && junit.ends_with(">\n"),
        "{junit}"
    );
    let parsed = quick_junit::Report::deserialize_from_str(&junit).unwrap();
    let expected =
        quick_junit::Report::deserialize_from_str(include_str!("testdata/sample.xml")).unwrap();
    assert_eq!(parsed, expected, "{junit}");
    // Compared as values: with serde_json's `preserve_order` (which another dependency may
    // turn on) the keys keep the order the views list them in, else they are sorted.
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("testdata/sample.json")).unwrap();
    assert_eq!(r.to_json(), expected);
}

#[test]
fn the_junit_sample_holds_every_case() {
    use quick_junit::{NonSuccessKind, TestCaseStatus};

    let report = quick_junit::Report::deserialize_from_str(&sample_result().to_junit()).unwrap();
    assert_eq!(report.name.as_deref(), Some("venomqa journeys"));
    assert_eq!(
        (report.tests, report.failures, report.errors, report.skipped),
        (6, 3, 0, 1)
    );
    assert_eq!(report.time, Some(Duration::from_millis(1234)));
    let [suite] = &report.test_suites[..] else {
        panic!("one suite: {report:?}")
    };
    assert_eq!(suite.name.as_str(), "checkout");
    assert_eq!(
        (suite.tests, suite.failures, suite.errors, suite.skipped),
        (6, 3, 0, 1)
    );
    let cases: Vec<(&str, &str)> = suite
        .test_cases
        .iter()
        .map(|c| (c.classname.as_deref().unwrap_or(""), c.name.as_str()))
        .collect();
    assert_eq!(
        cases,
        [
            ("checkout", "main steps"),
            ("checkout.cart", "look"),
            ("checkout.cart", "pay_twice"),
            ("checkout.cart", "server_down"),
            ("checkout.cart", "later"),
            ("checkout", "rollback"),
        ]
    );
    let failure = |i: usize| match &suite.test_cases[i].status {
        TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            ty,
            description,
            ..
        } => (
            message.as_deref().unwrap_or(""),
            ty.as_deref().unwrap_or(""),
            description.as_deref().unwrap_or(""),
        ),
        other => panic!("case {i} did not fail: {other:?}"),
    };
    let (message, ty, body) = failure(2);
    assert_eq!(
        message,
        "step pay: POST http://shop.test/orders: expected status 201, got 409; line 2\nof <it> & \"more\""
    );
    assert_eq!(ty, "journey");
    for part in [
        "  request:  POST http://shop.test/orders?token=***\n",
        "{\"sku\":\"a<b>&c\",\"password\":\"***\"}",
        "{\"error\":\"it's \\\"taken\\\"\"}",
        "  response: 409 Conflict (1.5 ms)\n",
        // (The reader trims the text's last newline.)
        "database changes in this path: orders +1 ~1 (id=7 state, id=8)\n  orders updated id=7 (state: new -> paid)\n  orders inserted id=8",
    ] {
        assert!(body.contains(part), "{part:?} in {body}");
    }
    assert!(failure(3)
        .2
        .ends_with("database changes: not available (the diff failed)"));
    assert_eq!(
        failure(5),
        (
            "rollback to checkpoint \"cart\" failed: disk full",
            "journey",
            "rollback to checkpoint \"cart\" failed: disk full"
        )
    );
    match &suite.test_cases[4].status {
        TestCaseStatus::Skipped { message, .. } => {
            assert_eq!(
                message.as_deref(),
                Some("fail_fast: path \"pay_twice\" failed")
            );
        }
        other => panic!("not skipped: {other:?}"),
    }
}

#[test]
fn xml_drops_what_xml_forbids() {
    assert_eq!(
        junit::xml("a<b>&'\"\n\t\r\u{1}\u{1b}\u{FFFE}\u{FFFF}é"),
        "a<b>&'\"\n\t\ré"
    );
}
