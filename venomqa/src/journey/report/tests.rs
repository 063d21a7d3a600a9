//! The reports' formats, pinned: a run built by hand, shown as text, JSON and JUnit, is
//! what `testdata/` holds (what the reports looked like before they were split by concept).

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
    assert_eq!(r.to_junit(), include_str!("testdata/sample.xml"));
    // Compared as values: with serde_json's `preserve_order` (which another dependency may
    // turn on) the keys keep the order the views list them in, else they are sorted.
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("testdata/sample.json")).unwrap();
    assert_eq!(r.to_json(), expected);
}

#[test]
fn xml_escapes_and_drops_what_xml_forbids() {
    assert_eq!(
        junit::xml("a<b>&'\"\n\t\r\u{1}\u{FFFE}é"),
        "a&lt;b&gt;&amp;&apos;&quot;&#10;\t&#13;é"
    );
}
