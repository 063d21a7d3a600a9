//! The differential property test of capture, shared by the test files of every capture
//! backend (`#[path = "support/capture_exact.rs"] mod capture_exact;`): random programs of
//! writes from another connection (churn of one row, duplicates in keyless tables,
//! cascades, key updates, transactions committed or rolled back by the app) interleaved
//! with checkpoints, rollbacks and releases, after `conformance::capture`'s seed data. The
//! oracle is the probe's dump, taken by its own connection at every checkpoint and
//! compared after every rollback and after the session.
//!
//! The case count and the seed are fixed, so CI runs the same programs every time; a
//! failure prints the seed and the shrunk program. `VENOMQA_PROPTEST_SEED` and
//! `VENOMQA_PROPTEST_CASES` explore others.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use venomqa::conformance::capture::{self, CaptureProbe, Child, Step, Write};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn child() -> impl Strategy<Value = Child> {
    prop_oneof![
        Just(Child::KeyedCascade),
        Just(Child::KeyedSetNull),
        Just(Child::KeylessCascade),
        Just(Child::KeylessSetNull),
    ]
}

fn simple_write() -> impl Strategy<Value = Write> {
    let id = 1..=5i64;
    let v = 0..4i64;
    prop_oneof![
        3 => id.clone().prop_map(|id| Write::InsertParent { id }),
        1 => id.clone().prop_map(|id| Write::RenameParent { id }),
        1 => (id.clone(), id.clone()).prop_map(|(id, to)| Write::RekeyParent { id, to }),
        2 => id.clone().prop_map(|id| Write::DeleteParent { id }),
        6 => (child(), id.clone(), v.clone()).prop_map(|(child, parent, v)| Write::Insert { child, parent, v }),
        3 => (child(), id.clone()).prop_map(|(child, parent)| Write::Update { child, parent }),
        1 => (child(), id.clone()).prop_map(|(child, parent)| Write::RekeyChildren { child, parent }),
        3 => (child(), id, v.clone()).prop_map(|(child, parent, v)| Write::DeleteOne { child, parent, v }),
        1 => (child(), v).prop_map(|(child, v)| Write::DeleteAll { child, v }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => simple_write().prop_map(Step::Write),
        1 => (prop::collection::vec(simple_write(), 1..4), any::<bool>())
            .prop_map(|(writes, commit)| Step::Write(Write::Transaction { writes, commit })),
        // Three names, so most rollbacks and releases find their checkpoint.
        3 => (0..3usize).prop_map(Step::Checkpoint),
        3 => (0..3usize).prop_map(Step::Rollback),
        1 => (0..3usize).prop_map(Step::Release),
    ]
}

/// Every named check of `conformance::capture` on `entry`, then `cases` random programs
/// after the suite's seed data.
pub fn check_capture(entry: &str, probe: &impl CaptureProbe, cases: u32) {
    capture::run(entry, probe);
    let seed = env_u64("VENOMQA_PROPTEST_SEED", 20_261_207);
    let cases = env_u64("VENOMQA_PROPTEST_CASES", u64::from(cases)) as u32;
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&prop::collection::vec(step(), 4..40), |steps| {
        let program = [capture::seed(), steps].concat();
        capture::run_program(entry, probe, &program).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{entry}: a capture rollback was not exact (seed {seed}, VENOMQA_PROPTEST_SEED={seed} reproduces it): {e}");
    }
}
