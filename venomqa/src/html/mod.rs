//! Self-contained HTML reports: one file that opens from a CI artifact with no network.
//!
//! A page is the report's JSON (the same value `to_json()` returns, so the two cannot
//! disagree) in a `<script type="application/json">`, with the stylesheet and the script
//! that render it inline. A Content-Security-Policy forbids every fetch, so a report
//! cannot reach the network even by mistake. The script renders lazily: a collapsed
//! path, step or state builds its content when it is first opened, and long lists come
//! in pages, so a report of 100,000 steps opens as fast as one of ten.

use serde_json::Value;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// The kinds of report the script renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A journey run (`JourneyResult::to_json`).
    #[cfg(feature = "journey")]
    Journey,
    /// An exploration (`ExplorationResult::to_json`).
    #[cfg(feature = "explore")]
    Exploration,
    /// The cost report (`venomqa report --html`).
    Cost,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "journey")]
            Kind::Journey => "journey",
            #[cfg(feature = "explore")]
            Kind::Exploration => "exploration",
            Kind::Cost => "cost",
        }
    }
}

/// The page: `title`, and `data` rendered by the script as a report of `kind`.
pub(crate) fn page(kind: Kind, title: &str, data: &Value) -> String {
    // `<` only ever appears inside JSON strings, where `\u003c` means the same: the data
    // can then never close its script element.
    let json = data.to_string().replace('<', "\\u003c");
    let title = escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"venomqa {version}\">\n\
         <title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n\
         <body data-kind=\"{kind}\">\n<main id=\"app\"><noscript>This report needs JavaScript; \
         its data is also in the JSON report beside it.</noscript></main>\n\
         <script type=\"application/json\" id=\"venomqa-data\">{json}</script>\n\
         <script>\n{JS}</script>\n</body>\n</html>\n",
        version = env!("CARGO_PKG_VERSION"),
        kind = kind.name(),
    )
}

/// `text` with `&`, `<`, `>` and `"` escaped, for HTML text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_page_keeps_its_data_inside_the_script_and_escapes_the_title() {
        let data = serde_json::json!({"body": "</script><script>alert(1)</script><!--"});
        let html = page(Kind::Cost, "a <b> & \"c\"", &data);
        assert!(html.contains("<title>a &lt;b&gt; &amp; &quot;c&quot;</title>"));
        let start = html.find("id=\"venomqa-data\">").unwrap() + 18;
        let end = start + html[start..].find("</script>").unwrap();
        let back: Value = serde_json::from_str(&html[start..end]).unwrap();
        assert_eq!(back, data, "the data reads back whole from its element");
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no URL to fetch"
        );
        assert!(html.contains("default-src 'none'"));
    }
}
