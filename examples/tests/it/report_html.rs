//! The HTML reports, opened in headless Chromium (feature `browser`): each report, written
//! from a real run against the shop server, renders with no console error and no request
//! beyond its own file; a known failure, step name and diff line become visible once the
//! failed part is clicked open; a screenshot of each is saved under
//! `target/venomqa-reports/` (the ones in `docs/` are copies).

use std::path::{Path, PathBuf};

use venomqa::explore::{Explorer, RustTemplate};
use venomqa::journey::JourneyRunner;
use venomqa::StateManager;
use venomqa_examples::browser::Browser;
use venomqa_examples::explore::{shop_world, BUG};
use venomqa_examples::ShopServer;

use super::journeys::{checkout_wrong, fresh_file, manager};

const SHOP: &str = env!("CARGO_BIN_EXE_shop");

/// Where this test's reports and screenshots go.
fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/venomqa-reports")
}

/// Opens `file`, waits for the script to have rendered, and checks that nothing failed
/// and nothing was fetched.
fn open(browser: &mut Browser, file: &Path) {
    browser.open(file).unwrap();
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    assert_eq!(
        browser.eval("document.body.dataset.rendered").unwrap(),
        "true",
        "the report's script ran to its end"
    );
    let fetched: Vec<String> = browser
        .requests()
        .into_iter()
        .filter(|url| !url.starts_with("file://") && !url.starts_with("data:"))
        .collect();
    assert!(
        fetched.is_empty(),
        "the report reached the network: {fetched:?}"
    );
}

fn assert_visible(browser: &mut Browser, expected: &[&str]) {
    let text = browser.visible_text().unwrap();
    assert!(
        !text.contains("null") && !text.contains("undefined"),
        "{text}"
    );
    for e in expected {
        assert!(text.contains(e), "{e:?} is not visible in:\n{text}");
    }
}

fn assert_hidden(browser: &mut Browser, unexpected: &[&str]) {
    let text = browser.visible_text().unwrap();
    for e in unexpected {
        assert!(
            !text.contains(e),
            "{e:?} is visible before it was opened:\n{text}"
        );
    }
}

#[test]
fn journey_html_report_renders_in_chromium_and_opens_the_failed_path() {
    let file = fresh_file("report-html");
    let mut m = manager(&file, "capture");
    let server = ShopServer::start(SHOP, m.url().unwrap().expose());
    let result = JourneyRunner::new(server.client())
        .state_manager(&mut m)
        .run(&checkout_wrong())
        .unwrap();
    assert!(!result.passed());
    let page = out_dir().join("journey_checkout_wrong.html");
    std::fs::create_dir_all(out_dir()).unwrap();
    std::fs::write(&page, result.to_html()).unwrap();

    let mut browser = Browser::launch().unwrap();
    open(&mut browser, &page);
    // Failures first: the failure, its step and its message are on the page at once; the
    // path's steps and database changes are not built until it is opened.
    assert_visible(
        &mut browser,
        &[
            "journey checkout_wrong",
            "FAILED",
            "1 failure",
            "cart_full › pay_by_voucher › step redeem",
            "expected status 201, got 200",
        ],
    );
    assert_hidden(
        &mut browser,
        &["database changes of this path", "stock: 5 → 3"],
    );
    // Click the failed path open in the tree, then its failed step.
    browser.click("details.path.failed > summary").unwrap();
    assert_visible(
        &mut browser,
        &[
            "path pay_by_voucher",
            "redeem",
            "database changes of this path",
            "products: +0 ~1 -0",
            "stock: 5 → 3",
            "payments: +1 ~0 -0",
        ],
    );
    browser
        .click("details.path.failed details.step.failed > summary")
        .unwrap();
    browser
        .click("details.step.failed .exchange > details > summary")
        .unwrap();
    assert_visible(&mut browser, &["Bearer ***", "\"status\": \"paid\""]);
    let text = browser.visible_text().unwrap();
    assert!(!text.contains("tok_"), "a token shows: {text}");
    // The filter: only failed paths.
    browser.click("button[data-filter=passed]").unwrap();
    assert_hidden(&mut browser, &["path pay_by_voucher"]);
    assert_visible(&mut browser, &["path pay_by_card"]);
    browser.click("button[data-filter=all]").unwrap();
    assert!(browser.errors().is_empty(), "{:?}", browser.errors());
    browser
        .screenshot(&out_dir().join("journey_checkout_wrong.png"))
        .unwrap();
}

#[test]
fn exploration_html_report_renders_in_chromium_with_its_graph_and_violation() {
    let file = fresh_file("report-html-explore");
    let mut m = manager(&file, "capture");
    let server = ShopServer::start_buggy(SHOP, m.url().unwrap().expose(), BUG);
    let result = Explorer::new(&shop_world(), server.client())
        .state_manager(&mut m)
        .max_depth(6)
        .rust_template(RustTemplate::new("shop_world()").attribute(r#"config = "shop""#))
        .run()
        .unwrap();
    assert!(!result.passed());
    let page = out_dir().join("explore_shop.html");
    std::fs::create_dir_all(out_dir()).unwrap();
    std::fs::write(&page, result.to_html()).unwrap();

    let mut browser = Browser::launch().unwrap();
    open(&mut browser, &page);
    assert_visible(
        &mut browser,
        &[
            "exploration shop",
            "1 violation",
            "invariant stock never below 0",
            "product 1 has stock -1",
            "pay_order_2_by_voucher",
            "a test that reproduces it: repro_stock_never_below_0",
            "fn repro_stock_never_below_0",
            "State graph",
            "Coverage",
        ],
    );
    // Every state is on the canvas.
    assert_eq!(
        browser
            .eval("document.getElementById('graph').dataset.states")
            .unwrap(),
        result.states.to_string()
    );
    assert_hidden(&mut browser, &["products updated"]);
    browser.click("details.path.failed > summary").unwrap();
    assert_visible(
        &mut browser,
        &[
            "database against the root state",
            "stock: 5 → -1",
            "pay_order_1_by_card",
        ],
    );
    browser.click(".code button").unwrap();
    assert!(browser.errors().is_empty(), "{:?}", browser.errors());
    browser
        .screenshot(&out_dir().join("explore_shop.png"))
        .unwrap();
}

#[test]
fn cost_report_html_renders_in_chromium_with_the_slowest_tests() {
    // The lines `VENOMQA_REPORT` collects, three tests of which one rolled back slowly.
    let lines = [
        ("orders::pays", "ok", 9_000, 500, Some(5_500), 300, 2_900),
        ("orders::refunds", "panic", 31_000, 200, None, 24_000, 6_000),
        ("users::signs_up", "err", 4_000, 150, None, 400, 2_000),
    ]
    .map(|(test, outcome, total, wait, connect, rollback, session)| {
        format!(
            r#"{{"test":"{test}","backend":"postgres","entry":"postgres","isolation":"transaction","outcome":"{outcome}","rolled_back":true,"test_us":{total},"lease_us":{lease},"lease_wait_us":{wait},"connect_us":{connect},"checkpoints":1,"checkpoint_us":100,"rollbacks":1,"rollback_us":{rollback},"session_us":{session},"pid":7,"at_ms":0}}"#,
            lease = wait + connect.unwrap_or(0),
            connect = connect.map_or("null".to_owned(), |c: u64| c.to_string()),
            session = session + rollback,
        )
    });
    let dir = out_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("cost.jsonl");
    std::fs::write(&source, lines.join("\n")).unwrap();
    let page = dir.join("cost_report.html");
    let status = venomqa_cli::run(&[
        "report".to_owned(),
        source.display().to_string(),
        "--html".to_owned(),
        page.display().to_string(),
    ]);
    assert_eq!(status, 0);

    let mut browser = Browser::launch().unwrap();
    open(&mut browser, &page);
    assert_visible(
        &mut browser,
        &[
            "cost report",
            "Where the time went",
            "rollbacks",
            "Slowest tests",
            "rollbacks 24.0 ms",
        ],
    );
    let text = browser.visible_text().unwrap();
    let (slow, fast) = (
        text.find("orders::refunds").unwrap(),
        text.find("users::signs_up").unwrap(),
    );
    assert!(slow < fast, "slowest first: {text}");
    browser.screenshot(&dir.join("cost_report.png")).unwrap();
}
