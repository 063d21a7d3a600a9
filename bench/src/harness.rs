//! A small timing harness: warm-up, then repeated samples until an iteration count or a
//! time budget is reached; reports the median and the 90th percentile.

use std::time::{Duration, Instant};

/// Median and p90 of a set of samples.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub median: Duration,
    pub p90: Duration,
    pub n: usize,
}

impl Stats {
    pub fn median_us(&self) -> f64 {
        self.median.as_secs_f64() * 1e6
    }
    pub fn p90_us(&self) -> f64 {
        self.p90.as_secs_f64() * 1e6
    }
}

/// How many samples to take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub warmup: usize,
    pub min_iters: usize,
    pub max_iters: usize,
    pub max_time: Duration,
}

impl Budget {
    /// For cheap operations (microseconds): many samples.
    pub fn fast(quick: bool) -> Self {
        Budget {
            warmup: if quick { 50 } else { 200 },
            min_iters: 200,
            max_iters: if quick { 1_000 } else { 3_000 },
            max_time: Duration::from_millis(if quick { 400 } else { 1_500 }),
        }
    }
    /// For operations of milliseconds.
    pub fn slow(quick: bool) -> Self {
        Budget {
            warmup: if quick { 2 } else { 5 },
            min_iters: if quick { 7 } else { 15 },
            max_iters: if quick { 30 } else { 100 },
            max_time: Duration::from_millis(if quick { 800 } else { 3_000 }),
        }
    }
    /// For operations of a second or more.
    pub fn very_slow(quick: bool) -> Self {
        Budget {
            warmup: if quick { 0 } else { 1 },
            min_iters: if quick { 2 } else { 3 },
            max_iters: if quick { 3 } else { 5 },
            max_time: Duration::from_secs(if quick { 2 } else { 8 }),
        }
    }
    /// Picks a budget from one probe run's duration.
    pub fn for_probe(probe: Duration, quick: bool) -> Self {
        if probe < Duration::from_micros(500) {
            Self::fast(quick)
        } else if probe < Duration::from_millis(200) {
            Self::slow(quick)
        } else {
            Self::very_slow(quick)
        }
    }
}

/// Runs `sample` (which returns the duration of the part it timed, so set-up between
/// samples is excluded) until the budget is spent. Errors stop the measurement.
pub fn measure<E>(
    budget: Budget,
    mut sample: impl FnMut() -> Result<Duration, E>,
) -> Result<Stats, E> {
    for _ in 0..budget.warmup {
        sample()?;
    }
    let started = Instant::now();
    let mut samples = Vec::with_capacity(budget.max_iters);
    while samples.len() < budget.max_iters
        && (samples.len() < budget.min_iters || started.elapsed() < budget.max_time)
    {
        samples.push(sample()?);
    }
    Ok(stats(samples))
}

/// Times the whole of `op` per sample, with a budget chosen from a first probe run.
pub fn measure_op<E>(quick: bool, mut op: impl FnMut() -> Result<(), E>) -> Result<Stats, E> {
    // The first run pays one-time costs (a pool's first connection): not a fair probe.
    op()?;
    let t = Instant::now();
    op()?;
    let budget = Budget::for_probe(t.elapsed(), quick);
    measure(budget, || {
        let t = Instant::now();
        op()?;
        Ok(t.elapsed())
    })
}

/// Like [`measure_op`] for an operation of two parts, each timed: returns the stats of
/// the second part alone and of the whole.
pub fn measure_parts<E>(
    quick: bool,
    mut op: impl FnMut() -> Result<(Duration, Duration), E>,
) -> Result<(Stats, Stats), E> {
    op()?;
    let (a, b) = op()?;
    let budget = Budget::for_probe(a + b, quick);
    let mut samples = Vec::new();
    measure(budget, || {
        let (a, b) = op()?;
        samples.push((a, b));
        Ok(a + b)
    })?;
    let second = stats(samples.iter().map(|s| s.1).collect());
    let whole = stats(samples.iter().map(|s| s.0 + s.1).collect());
    Ok((second, whole))
}

/// Two operations sampled alternately, so drift of a busy machine hits both alike (used
/// to time a test against a round trip on the test's own connection).
pub fn interleaved<E>(
    quick: bool,
    mut a: impl FnMut() -> Result<Duration, E>,
    mut b: impl FnMut() -> Result<Duration, E>,
) -> Result<(Stats, Stats), E> {
    let budget = Budget::fast(quick);
    for _ in 0..budget.warmup {
        a()?;
        b()?;
    }
    let started = Instant::now();
    let (mut va, mut vb) = (Vec::new(), Vec::new());
    while va.len() < budget.max_iters
        && (va.len() < budget.min_iters || started.elapsed() < budget.max_time)
    {
        va.push(a()?);
        vb.push(b()?);
    }
    Ok((stats(va), stats(vb)))
}

/// Times `f`.
pub fn timed<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<Duration, E> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed())
}

/// Where a test's overhead goes, on a connected manager: the pool's health check at
/// lease time, the root checkpoint, and the rollback at the end, each timed on its own.
pub fn breakdown(
    report: &mut crate::report::Report,
    name: &str,
    m: &mut dyn venomqa::StateManager,
    floor_us: Option<f64>,
    quick: bool,
) {
    use venomqa::ROOT_CHECKPOINT;
    let budget = Budget::fast(quick);
    let (mut hc, mut cp, mut rb) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..budget.warmup + budget.max_iters {
        if i >= budget.warmup + budget.min_iters && started.elapsed() > budget.max_time {
            break;
        }
        let t = Instant::now();
        let healthy = m.health_check();
        let t1 = Instant::now();
        let opened = m.checkpoint(ROOT_CHECKPOINT);
        let t2 = Instant::now();
        let ended = m.discard(ROOT_CHECKPOINT);
        let t3 = Instant::now();
        if !healthy || opened.is_err() || ended.is_err() {
            report.skip(
                name,
                "per test",
                "breakdown",
                "the manager failed during the breakdown",
            );
            return;
        }
        if i >= budget.warmup {
            hc.push(t1 - t);
            cp.push(t2 - t1);
            rb.push(t3 - t2);
        }
    }
    for (case, samples) in [
        ("of which: health check at lease", hc),
        ("of which: root checkpoint", cp),
        ("of which: rollback at the end", rb),
    ] {
        let s = stats(samples);
        let note = floor_us.map_or(String::new(), |f| {
            format!("{:.1} round trips", s.median_us() / f)
        });
        report.add(name, "per test", case, s, note);
    }
}

/// Median and p90 of `samples` (nearest-rank).
pub fn stats(mut samples: Vec<Duration>) -> Stats {
    assert!(!samples.is_empty(), "no samples");
    samples.sort();
    let n = samples.len();
    let at = |q: f64| samples[(((n as f64) * q).ceil() as usize).clamp(1, n) - 1];
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2
    };
    Stats {
        median,
        p90: at(0.9),
        n,
    }
}

/// A duration in the unit that reads best.
pub fn fmt_us(us: f64) -> String {
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} us")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_p90() {
        let s = stats((1..=10).map(Duration::from_micros).collect());
        assert_eq!(s.median, Duration::from_nanos(5_500));
        assert_eq!(s.p90, Duration::from_micros(9));
        let s = stats(vec![Duration::from_micros(3)]);
        assert_eq!(
            (s.median, s.p90),
            (Duration::from_micros(3), Duration::from_micros(3))
        );
    }
}
