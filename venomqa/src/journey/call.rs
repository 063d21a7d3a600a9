//! What steps and actions run: a blocking closure, or (feature `journey-async`) an async
//! one; both called with their panics caught, as one future (invariants' checks are the
//! same, in `runner::invariant`). And running database work outside the async runtime.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use super::client::Client;
use super::context::Context;
use super::step_error::StepError;

/// What a step or an invariant returned, or its panic.
pub(crate) type Outcome = std::thread::Result<Result<(), StepError>>;

/// The future of an async step or invariant. Not `Send`: async closures cannot promise
/// it, and the runner awaits it on the task that runs the journey.
#[cfg(feature = "journey-async")]
pub(crate) type Local<'a, T = ()> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, StepError>> + 'a>>;

type BlockingStep = dyn Fn(&Client, &mut Context) -> Result<(), StepError> + Send + Sync;
#[cfg(feature = "journey-async")]
type AsyncStep = dyn for<'a> Fn(&'a Client, &'a mut Context) -> Local<'a> + Send + Sync;

/// A step's action.
#[derive(Clone)]
pub(crate) enum StepFn {
    /// A blocking closure.
    Blocking(Arc<BlockingStep>),
    /// An async closure.
    #[cfg(feature = "journey-async")]
    Async(Arc<AsyncStep>),
}

impl StepFn {
    /// A blocking action returning any `T`.
    pub(crate) fn blocking<T, F>(action: F) -> Self
    where
        F: Fn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        StepFn::Blocking(Arc::new(move |client, ctx| action(client, ctx).map(|_| ())))
    }

    /// An async action returning any `T`.
    #[cfg(feature = "journey-async")]
    pub(crate) fn nonblocking<T, F>(action: F) -> Self
    where
        F: AsyncFn(&Client, &mut Context) -> Result<T, StepError> + Send + Sync + 'static,
    {
        let action = Arc::new(action);
        StepFn::Async(Arc::new(move |client, ctx| {
            let action = Arc::clone(&action);
            Box::pin(async move { action(client, ctx).await.map(|_| ()) })
        }))
    }

    /// Runs the action on `client` and `ctx`.
    pub(crate) async fn call(&self, client: &Client, ctx: &mut Context) -> Outcome {
        match self {
            StepFn::Blocking(f) => catch_unwind(AssertUnwindSafe(|| f(client, ctx))),
            #[cfg(feature = "journey-async")]
            StepFn::Async(f) => caught(f(client, ctx)).await,
        }
    }

    /// Whether it is async (a blocking run refuses those).
    pub(crate) fn is_async(&self) -> bool {
        !matches!(self, StepFn::Blocking(_))
    }

    /// This action of the same kind, with `before` run first (its `Err` skips the
    /// action) and `after` judging what the action returned.
    #[cfg_attr(not(feature = "explore"), allow(dead_code))]
    pub(crate) fn around<B, A>(&self, before: B, after: A) -> StepFn
    where
        B: Fn(&Context) -> Result<(), StepError> + Send + Sync + 'static,
        A: Fn(&Client, Result<(), StepError>) -> Result<(), StepError> + Send + Sync + 'static,
    {
        match self.clone() {
            StepFn::Blocking(f) => StepFn::Blocking(Arc::new(move |client, ctx| {
                before(ctx)?;
                let outcome = f(client, ctx);
                after(client, outcome)
            })),
            #[cfg(feature = "journey-async")]
            StepFn::Async(f) => {
                let (before, after) = (Arc::new(before), Arc::new(after));
                StepFn::Async(Arc::new(move |client, ctx| {
                    let (f, before, after) =
                        (Arc::clone(&f), Arc::clone(&before), Arc::clone(&after));
                    Box::pin(async move {
                        before(ctx)?;
                        let outcome = f(client, ctx).await;
                        after(client, outcome)
                    })
                }))
            }
        }
    }
}

/// `future`'s output, or its panic.
#[cfg(feature = "journey-async")]
pub(crate) async fn caught<F: Future>(future: F) -> std::thread::Result<F::Output> {
    use futures_util::FutureExt;
    AssertUnwindSafe(future).catch_unwind().await
}

/// The output of `future`, which a blocking run knows to be ready at once (it holds no
/// async step, invariant or request).
///
/// # Panics
///
/// When `future` is not ready: a blocking run met something async it should have refused.
pub(crate) fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => out,
        std::task::Poll::Pending => {
            panic!("venomqa: a blocking journey run awaited something async; this is a bug in venomqa, please report it")
        }
    }
}

/// Runs `work` on the database (a checkpoint, a rollback, a diff) outside the async
/// runtime the journey may run on, because the blocking drivers (`postgres`, `mysql`'s
/// pool, sqlx sessions) block on runtimes of their own, which Tokio forbids inside one.
/// On a multi-threaded runtime the thread's other tasks move to another worker while it
/// blocks (`block_in_place`), so an app served on the runtime keeps serving; on a
/// current-thread runtime the work runs on a scoped thread of its own, and the runtime
/// waits for it; outside a runtime it just runs.
pub(crate) fn offload<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "journey-async")]
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        return if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
            tokio::task::block_in_place(work)
        } else {
            std::thread::scope(|s| {
                s.spawn(work)
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        };
    }
    work()
}
