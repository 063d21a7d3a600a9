//! Reproductions: a [`Journey`] from a sequence of actions, and the Rust source of a
//! `#[venom_test]` that runs it.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::journey::{Journey, Step, StepError};

use super::{Strategy, World, SERVER_ERRORS};

/// `repro_` and `name` in snake case: `repro_stock_never_below_0`.
pub(crate) fn test_name(name: &str) -> String {
    let mut out = String::from("repro_");
    let mut gap = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            gap = false;
        } else {
            gap = true;
        }
    }
    if out.ends_with('_') {
        out.push_str("violation");
    }
    out
}

/// The journey running `world`'s setup and then the actions at `indices`, each a step
/// that behaves as the explorer's step did (see [`World::journey`]).
pub(crate) fn journey(world: &World, name: &str, indices: &[usize]) -> Journey {
    let mut journey = Journey::new(name).description(format!(
        "reproduces a sequence found by exploring world {:?}",
        world.name
    ));
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut unique = |base: &str| {
        let n = used.entry(base.to_owned()).or_default();
        *n += 1;
        if *n == 1 {
            base.to_owned()
        } else {
            format!("{base}#{n}")
        }
    };
    if let Some(setup) = &world.setup {
        journey = journey.step(Step::with_action(unique("setup"), setup.clone()));
    }
    for &i in indices {
        let action = world.action_at(i).clone();
        let server_errors = world.server_errors;
        let (pre, name) = (action.precondition.clone(), action.name.clone());
        let before = move |ctx: &crate::journey::Context| {
            match &pre {
            Some(pre) if !pre(ctx) => Err(StepError::msg(format!(
                "the precondition of action {name:?} does not hold here, so the sequence does not run as it did when it was found"
            ))),
            _ => Ok(()),
        }
        };
        let name = action.name.clone();
        let after = move |client: &crate::journey::Client, outcome: Result<(), StepError>| {
            // As in the exploration: an action's error is an outcome, except no answer.
            if let Err(e) = outcome {
                if super::outcome::transport(&e) {
                    return Err(e);
                }
            }
            if server_errors {
                if let Some(status) = client.recorded_statuses().into_iter().find(|s| *s >= 500) {
                    return Err(StepError::msg(format!(
                        "action {name:?} got a {status} answer, against {SERVER_ERRORS:?}"
                    )));
                }
            }
            Ok(())
        };
        let step = Step::with_action(unique(&action.name), action.run.around(before, after));
        journey = journey.step(match &action.description {
            Some(d) => step.description(d.clone()),
            None => step,
        });
    }
    journey
}

/// How [`Violation::to_rust`](super::Violation::to_rust) writes the `#[venom_test]` that
/// reproduces a violation: the attribute's arguments, the session type, the lines that
/// start the API server, and the expressions of the client and the world.
///
/// ```
/// use venomqa::explore::RustTemplate;
///
/// let template = RustTemplate::new("shop_world()")
///     .attribute(r#"config = "shop""#)
///     .session("&mut venomqa::sqlite::SqliteCaptureSession")
///     .prelude([r#"let server = start_server(db.url().unwrap().expose());"#])
///     .client("server.client()");
/// # let _ = template;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustTemplate {
    world: String,
    attribute: String,
    session: String,
    prelude: Vec<String>,
    client: String,
}

impl RustTemplate {
    /// A template whose world is the expression `world` (a function of your tests that
    /// builds the [`World`] the explorer ran); the session is `&mut venomqa::Session`,
    /// the attribute has no arguments, the client is
    /// `venomqa::journey::Client::new("http://127.0.0.1:8000")` after a comment where the
    /// server should start.
    pub fn new(world: impl Into<String>) -> Self {
        RustTemplate {
            world: world.into(),
            attribute: String::new(),
            session: "&mut venomqa::Session".to_owned(),
            prelude: vec!["// Start the API server on db.url() here.".to_owned()],
            client: "venomqa::journey::Client::new(\"http://127.0.0.1:8000\")".to_owned(),
        }
    }

    /// The arguments of `#[venomqa::venom_test(..)]`, such as `config = "shop"`.
    pub fn attribute(mut self, arguments: impl Into<String>) -> Self {
        self.attribute = arguments.into();
        self
    }

    /// The type of the test's session parameter `db`.
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = session.into();
        self
    }

    /// The lines that start the API server on `db.url()` (replacing the default comment).
    pub fn prelude<S: Into<String>>(mut self, lines: impl IntoIterator<Item = S>) -> Self {
        self.prelude = lines.into_iter().map(Into::into).collect();
        self
    }

    /// The expression of the client.
    pub fn client(mut self, client: impl Into<String>) -> Self {
        self.client = client.into();
        self
    }

    /// The test reproducing the violation of `invariant` that exploring `world` by
    /// `strategy` found, after the actions of `sequence`.
    pub(crate) fn render(
        &self,
        world: &str,
        strategy: Strategy,
        invariant: &str,
        sequence: &[String],
    ) -> String {
        let name = test_name(invariant);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "/// Found by exploring world {world:?} ({}): invariant {invariant:?} violated after",
            strategy.label(),
        );
        let _ = writeln!(s, "/// {}.", sequence.join(", "));
        let _ = writeln!(s, "/// Fails until the bug is fixed.");
        if self.attribute.is_empty() {
            s.push_str("#[venomqa::venom_test]\n");
        } else {
            let _ = writeln!(s, "#[venomqa::venom_test({})]", self.attribute);
        }
        let _ = writeln!(s, "fn {name}(db: {}) {{", self.session);
        for line in &self.prelude {
            let _ = writeln!(s, "    {line}");
        }
        let _ = writeln!(s, "    let world = {};", self.world);
        let _ = writeln!(s, "    let journey = world");
        let _ = writeln!(s, "        .journey(");
        let _ = writeln!(s, "            {name:?},");
        let _ = writeln!(s, "            &[");
        for a in sequence {
            let _ = writeln!(s, "                {a:?},");
        }
        let _ = writeln!(s, "            ],");
        let _ = writeln!(s, "        )");
        let _ = writeln!(s, "        .unwrap();");
        let _ = writeln!(
            s,
            "    let result = venomqa::journey::JourneyRunner::new({})",
            self.client
        );
        let _ = writeln!(s, "        .state_manager(&mut *db)");
        let _ = writeln!(s, "        .invariants(world.invariants())");
        let _ = writeln!(s, "        .run(&journey)");
        let _ = writeln!(s, "        .unwrap();");
        let _ = writeln!(s, "    result.assert_passed();");
        s.push_str("}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::test_name;

    #[test]
    fn test_names_are_snake_case_identifiers() {
        assert_eq!(
            test_name("stock never below 0"),
            "repro_stock_never_below_0"
        );
        assert_eq!(
            test_name("A paid order has ONE payment!"),
            "repro_a_paid_order_has_one_payment"
        );
        assert_eq!(test_name("  "), "repro_violation");
        assert_eq!(
            test_name(super::SERVER_ERRORS),
            "repro_the_api_never_answers_5xx"
        );
    }
}
