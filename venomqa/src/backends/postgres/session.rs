//! What a test reaches through a PostgreSQL session: its `postgres::Client`.

use ::postgres::Client;

use super::{PostgresCaptureStateManager, PostgresStateManager};

/// What a session of either PostgreSQL backend reaches.
macro_rules! session_api {
    ($manager:ty) => {
        impl crate::Session<$manager> {
            /// The test's `postgres::Client`: run the code under test through it.
            ///
            /// Do not end the transaction on it (`COMMIT`, `ROLLBACK`, or
            /// `postgres::Client::transaction()`, whose commit or drop ends the test's transaction
            /// too): the test then fails with [`Error::StateLost`](crate::Error::StateLost). Write the code under test
            /// against `&mut impl postgres::GenericClient` and use checkpoints for nested undo.
            pub fn client(&mut self) -> &mut Client {
                self.connection()
            }
        }
    };
}

session_api!(PostgresStateManager);
session_api!(PostgresCaptureStateManager);
