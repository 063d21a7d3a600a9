//! `capture_backend!`: a capture backend as a type of its own, over the transaction
//! backend it shares its URL, options, errors and connection code with.

/// The capture backend of a transaction backend `$inner` (a newtype that is the same
/// backend with `isolation: capture`), its [`Capture`](crate::Capture) impl, and its
/// state-manager and session aliases. `$is_capture` reads whether a built `$inner`
/// captures; `$wanted` whether a configuration asks for it.
#[cfg(any(
    feature = "sqlite",
    feature = "mysql",
    feature = "postgres",
    feature = "redis",
    feature = "mongodb"
))]
macro_rules! capture_backend {
    (
        $(#[$doc:meta])*
        $name:ident($inner:ty), $manager:ident, $session:ident,
        is_capture: |$b:ident| $is_capture:expr,
        wanted: |$options:ident: $opts:ty| $wanted:expr $(,)?
    ) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name($inner);

        impl $name {
            /// `backend` as a capture backend: it must be configured with
            /// `isolation: capture`.
            pub fn of(backend: $inner) -> $crate::Result<Self> {
                let $b = &backend;
                if !$is_capture {
                    return Err($crate::Error::unsupported(
                        <$inner as $crate::Backend>::NAME,
                        concat!(stringify!($name), " without capture isolation"),
                        "set `isolation: capture` on the entry (or the builder)",
                    ));
                }
                Ok($name(backend))
            }

            /// The backend it captures with (its URL, options and connections).
            pub fn inner(&self) -> &$inner {
                &self.0
            }
        }

        /// The transaction backend's own API (its capture tools among it:
        /// `uninstall_capture()`, ...).
        impl std::ops::Deref for $name {
            type Target = $inner;

            fn deref(&self) -> &$inner {
                &self.0
            }
        }

        /// The state manager of a capture backend, standalone.
        pub type $manager = $crate::Manager<$name>;

        /// A session on a capture backend: the same connection API as the transaction
        /// backend's session, plus [`url`](crate::Session::url) and
        /// [`diff`](crate::Session::diff).
        pub type $session = $crate::Session<$manager>;

        impl $crate::Capture for $name {
            fn wanted(config: &$crate::BackendConfig) -> $crate::Result<bool> {
                let $options: $opts = config.options()?;
                Ok($wanted)
            }
        }

        /// Every hook is the inner backend's: it captures.
        impl $crate::Backend for $name {
            const NAME: &'static str = <$inner as $crate::Backend>::NAME;
            type Options = <$inner as $crate::Backend>::Options;
            type Conn = <$inner as $crate::Backend>::Conn;
            type Mark = <$inner as $crate::Backend>::Mark;

            fn new(config: &$crate::BackendConfig, options: Self::Options) -> $crate::Result<Self> {
                let inner = <$inner as $crate::Backend>::new(config, options)?;
                let $b = &inner;
                if !$is_capture {
                    return Err($crate::Error::config(
                        &config.source,
                        format!("backends.{}.isolation", config.entry),
                        concat!(stringify!($name), " needs `isolation: capture`"),
                    ));
                }
                Ok($name(inner))
            }
            fn connect(&self) -> $crate::Result<Self::Conn> {
                <$inner as $crate::Backend>::connect(&self.0)
            }
            fn connect_timeout(&self) -> Option<std::time::Duration> {
                <$inner as $crate::Backend>::connect_timeout(&self.0)
            }
            fn is_transient(&self, error: &$crate::Error) -> bool {
                <$inner as $crate::Backend>::is_transient(&self.0, error)
            }
            fn recycle(&self, conn: &mut Self::Conn) -> $crate::Result<()> {
                <$inner as $crate::Backend>::recycle(&self.0, conn)
            }
            fn recycle_on_lease(&self) -> bool {
                <$inner as $crate::Backend>::recycle_on_lease(&self.0)
            }
            fn is_broken(&self, conn: &Self::Conn) -> bool {
                <$inner as $crate::Backend>::is_broken(&self.0, conn)
            }
            fn checkpoint(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
            ) -> $crate::Result<Self::Mark> {
                <$inner as $crate::Backend>::checkpoint(&self.0, conn, at)
            }
            fn rollback(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &Self::Mark,
            ) -> $crate::Result<()> {
                <$inner as $crate::Backend>::rollback(&self.0, conn, at, mark)
            }
            fn release(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &Self::Mark,
            ) -> $crate::Result<()> {
                <$inner as $crate::Backend>::release(&self.0, conn, at, mark)
            }
            fn discard(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &Self::Mark,
            ) -> $crate::Result<()> {
                <$inner as $crate::Backend>::discard(&self.0, conn, at, mark)
            }
            fn forget(&self, conn: &mut Self::Conn, mark: Self::Mark) -> $crate::Result<()> {
                <$inner as $crate::Backend>::forget(&self.0, conn, mark)
            }
            fn check_reset(&self, conn: &mut Self::Conn) -> $crate::Result<()> {
                <$inner as $crate::Backend>::check_reset(&self.0, conn)
            }
            fn reset(&self, conn: &mut Self::Conn) -> $crate::Result<()> {
                <$inner as $crate::Backend>::reset(&self.0, conn)
            }
            fn execute_script(&self, conn: &mut Self::Conn, script: &str) -> $crate::Result<()> {
                <$inner as $crate::Backend>::execute_script(&self.0, conn, script)
            }
            fn setup_per_connection(&self) -> bool {
                <$inner as $crate::Backend>::setup_per_connection(&self.0)
            }
            fn pool_size(&self) -> usize {
                <$inner as $crate::Backend>::pool_size(&self.0)
            }
            fn captures(&self, conn: &Self::Conn) -> bool {
                <$inner as $crate::Backend>::captures(&self.0, conn)
            }
            fn url(&self, conn: &Self::Conn) -> $crate::Result<$crate::SecretUrl> {
                <$inner as $crate::Backend>::url(&self.0, conn)
            }
            fn diff(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &Self::Mark,
            ) -> $crate::Result<$crate::capture::diff::Diff> {
                <$inner as $crate::Backend>::diff(&self.0, conn, at, mark)
            }
            fn close(&self, conn: Self::Conn) -> $crate::Result<()> {
                <$inner as $crate::Backend>::close(&self.0, conn)
            }
        }
    };
}
