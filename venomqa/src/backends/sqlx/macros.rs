//! [`sqlx_backend!`]: the [`Backend`](crate::Backend) of an sqlx dialect over the shared
//! hooks, and its session as sqlx's `Executor` and `Acquire` and as a `Deref` to the
//! connection, so a test written for `#[sqlx::test]` keeps its body.

/// The [`Backend`](crate::Backend) of an sqlx dialect, and its session's `Executor`.
macro_rules! sqlx_backend {
    ($backend:ty, $db:ty, $session:ty) => {
        impl $crate::Backend for $backend {
            const NAME: &'static str = NAME;
            type Options = $crate::sqlx::SqlxOptions;
            type Conn = <$db as ::sqlx::Database>::Connection;
            type Mark = $crate::sqlx::SqlxMark;

            fn new(
                config: &$crate::BackendConfig,
                options: $crate::sqlx::SqlxOptions,
            ) -> $crate::Result<Self> {
                Self::build(config, options)
            }

            fn connect(&self) -> $crate::Result<Self::Conn> {
                $crate::backends::sqlx::connect::connect(self, self.private_databases())
            }

            fn recycle(&self, conn: &mut Self::Conn) -> $crate::Result<()> {
                $crate::backends::sqlx::hooks::recycle::<Self>(conn)
            }

            fn checkpoint(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
            ) -> $crate::Result<$crate::sqlx::SqlxMark> {
                $crate::backends::sqlx::hooks::checkpoint(self, conn, at)
            }

            fn rollback(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &$crate::sqlx::SqlxMark,
            ) -> $crate::Result<()> {
                $crate::backends::sqlx::hooks::rollback::<Self>(conn, at, mark)
            }

            fn release(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &$crate::sqlx::SqlxMark,
            ) -> $crate::Result<()> {
                $crate::backends::sqlx::hooks::release::<Self>(conn, at, mark)
            }

            fn discard(
                &self,
                conn: &mut Self::Conn,
                at: $crate::checkpoint::Point<'_>,
                mark: &$crate::sqlx::SqlxMark,
            ) -> $crate::Result<()> {
                $crate::backends::sqlx::hooks::discard(self, conn, at, mark)
            }

            fn execute_script(&self, conn: &mut Self::Conn, script: &str) -> $crate::Result<()> {
                $crate::backends::sqlx::hooks::execute_script::<Self>(conn, script)
            }

            fn setup_per_connection(&self) -> bool {
                self.private_databases()
            }

            fn pool_size(&self) -> usize {
                self.default_pool_size()
            }

            fn url(&self, _: &Self::Conn) -> $crate::Result<$crate::SecretUrl> {
                Err($crate::backends::sqlx::hooks::no_url(NAME))
            }

            fn close(&self, conn: Self::Conn) -> $crate::Result<()> {
                $crate::backends::sqlx::hooks::close::<Self>(conn)
            }
        }

        impl $session {
            /// The test's connection, inside its transaction: run the code under test
            /// through it (`sqlx::query(..).execute(db.conn())`). `&mut *db` works too:
            /// the session is an sqlx `Executor`.
            pub fn conn(&mut self) -> &mut <$db as ::sqlx::Database>::Connection {
                self.connection()
            }
        }

        /// The session stands where a `PoolConnection` stood: `&mut conn` and `&mut *conn`
        /// coerce to the connection, so a ported test's calls of functions taking
        /// `&mut PgConnection` (and the like) stay as they were.
        impl ::std::ops::Deref for $session {
            type Target = <$db as ::sqlx::Database>::Connection;

            fn deref(&self) -> &Self::Target {
                self.connection_ref()
            }
        }

        impl ::std::ops::DerefMut for $session {
            fn deref_mut(&mut self) -> &mut Self::Target {
                self.connection()
            }
        }

        /// `db.begin()` (with `sqlx::Acquire` in scope), as on a `PoolConnection`: a
        /// savepoint inside the test's transaction, released by `commit()`, rolled back by
        /// `rollback()` or drop. Code generic over `A: Acquire` takes `&mut *db` too.
        impl<'c> ::sqlx::Acquire<'c> for &'c mut $session {
            type Database = $db;
            type Connection = &'c mut <$db as ::sqlx::Database>::Connection;

            fn acquire(
                self,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<Output = ::sqlx::Result<Self::Connection>>
                        + Send
                        + 'c,
                >,
            > {
                let conn = self.conn();
                Box::pin(async move { Ok(conn) })
            }

            fn begin(
                self,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<Output = ::sqlx::Result<::sqlx::Transaction<'c, $db>>>
                        + Send
                        + 'c,
                >,
            > {
                ::sqlx::Connection::begin(self.conn())
            }
        }

        /// The session runs queries on its connection, so the body of a test written for
        /// a `PoolConnection` (`.execute(&mut *conn)`) works unchanged.
        impl<'c> ::sqlx::Executor<'c> for &'c mut $session {
            type Database = $db;

            fn fetch_many<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::futures_core::Stream<
                            Item = ::sqlx::Result<
                                ::sqlx::Either<
                                    <$db as ::sqlx::Database>::QueryResult,
                                    <$db as ::sqlx::Database>::Row,
                                >,
                            >,
                        > + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
                E: 'q + ::sqlx::Execute<'q, $db>,
            {
                self.conn().fetch_many(query)
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<
                            Output = ::sqlx::Result<Option<<$db as ::sqlx::Database>::Row>>,
                        > + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
                E: 'q + ::sqlx::Execute<'q, $db>,
            {
                self.conn().fetch_optional(query)
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                sql: &'q str,
                parameters: &'e [<$db as ::sqlx::Database>::TypeInfo],
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<
                            Output = ::sqlx::Result<<$db as ::sqlx::Database>::Statement<'q>>,
                        > + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
            {
                self.conn().prepare_with(sql, parameters)
            }

            fn describe<'e, 'q: 'e>(
                self,
                sql: &'q str,
            ) -> ::std::pin::Pin<
                Box<
                    dyn ::std::future::Future<Output = ::sqlx::Result<::sqlx::Describe<$db>>>
                        + Send
                        + 'e,
                >,
            >
            where
                'c: 'e,
            {
                self.conn().describe(sql)
            }
        }
    };
}
pub(crate) use sqlx_backend;
