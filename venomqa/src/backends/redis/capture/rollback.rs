//! A capture rollback: the spare is proven to still hold the checkpoint, then swapped in
//! with `SWAPDB` (and refilled or emptied) in one atomic script; releasing and dropping a
//! checkpoint's spare.

use std::time::Duration;

use super::record_key;
use super::state::Digest;
use crate::backends::redis::options::CaptureProof;
use crate::backends::redis::{Redis, RedisConn, NAME};
use crate::error::{Error, Result};

/// The server's time and a spare's digest.
const VERIFY: &str = concat!(
    include_str!("../scripts/capture_lib.lua"),
    include_str!("../scripts/capture_verify.lua")
);
/// SWAPDB, then refill or empty the spare.
const SWAP: &str = concat!(
    include_str!("../scripts/capture_lib.lua"),
    include_str!("../scripts/capture_swap.lua")
);

impl Redis {
    /// Proves that the spare still holds the checkpoint: its key count (and with the digest
    /// proof, its digest) now equals the one taken when it was filled, less the keys that
    /// expired since. A key expiring right at the check can differ by a millisecond: checked
    /// once more then.
    fn verify(&self, conn: &mut RedisConn, db: i64, what: &str) -> Result<()> {
        let mut last = (0, 0);
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
            let spare = conn.spare(db)?;
            let guards = conn.capture_guards(Some(spare));
            let expected = spare.digest.clone();
            let value = conn.eval(
                what,
                VERIFY,
                &guards,
                &[db.to_string(), self.proof().to_owned()],
            )?;
            let (now, count, a, b, c, d): (i64, i64, i64, i64, i64, i64) =
                ::redis::from_redis_value(value).map_err(|e| conn.driver_error(what, e.into()))?;
            let (want, parts) = expected.at(now);
            let proven = match self.options.capture_proof {
                CaptureProof::Digest => (want, parts) == (count, [a, b, c, d]),
                // DBSIZE still counts keys that expired but are not reclaimed yet.
                _ => want <= count && count <= expected.count,
            };
            if proven {
                return Ok(());
            }
            last = (count, want);
        }
        let how = if last.0 == last.1 {
            "its contents differ".to_owned()
        } else {
            format!("{} keys, {} expected", last.0, last.1)
        };
        Err(Error::state_lost(
            NAME,
            format!("{what}: spare database {db}, which holds the checkpoint, was changed by another client ({how}); nothing was restored. Never point clients at the databases venomqa leases"),
        ))
    }

    /// Rolls the app's database back to the checkpoint held by spare `db`: verifies the
    /// spare, then swaps it in. `keep`: the checkpoint stays (the spare is refilled);
    /// otherwise it ends (the spare is emptied; a first checkpoint's record goes too).
    pub(in crate::backends::redis) fn capture_restore(
        &self,
        conn: &mut RedisConn,
        db: i64,
        keep: bool,
        what: &str,
    ) -> Result<()> {
        self.verify(conn, db, what)?;
        let spare = conn.spare(db)?;
        let guards = conn.capture_guards(Some(spare));
        let expected = spare.digest.count;
        let root = spare.root;
        let (record, key) = if root && !keep {
            (record_key(self.home_db), spare.key.clone())
        } else {
            (String::new(), String::new())
        };
        let mode = if keep { "refill" } else { "drop" };
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            mode.to_owned(),
            record,
            key,
            self.proof().to_owned(),
        ];
        let value = conn.eval(what, SWAP, &guards, &args)?;
        // The proof: as many keys as the verified spare held (the contents were verified).
        let restored = if keep {
            let digest = Digest::parse(value).map_err(|e| conn.driver_error(what, e))?;
            let count = digest.count;
            if let Some(spare) = conn.spare_mut(db) {
                spare.digest = digest;
            }
            count
        } else {
            ::redis::from_redis_value::<i64>(value)
                .map_err(|e| conn.driver_error(what, e.into()))?
        };
        if !keep && root {
            conn.give_back_lock()?;
        }
        // Keys that expired between the verification and the swap are the only difference
        // a proof may allow.
        let expiring = conn
            .spare(db)
            .map(|s| s.digest.volatile.len() as i64)
            .unwrap_or(0);
        if restored > expected || restored < expected - expiring {
            return Err(Error::state_lost(
                NAME,
                format!("{what}: database {} holds {restored} keys after the rollback, not the checkpoint's {expected}", self.home_db),
            ));
        }
        Ok(())
    }

    /// The first checkpoint is released, its changes kept: the record and the spare go,
    /// and the turn lock is given back.
    pub(in crate::backends::redis) fn capture_keep(
        &self,
        conn: &mut RedisConn,
        db: i64,
    ) -> Result<()> {
        let spare = conn.spare(db)?;
        if !spare.root {
            return Ok(());
        }
        let guards = conn.capture_guards(Some(spare));
        let args = [
            self.home_db.to_string(),
            db.to_string(),
            "keep".to_owned(),
            record_key(self.home_db),
            spare.key.clone(),
            self.proof().to_owned(),
        ];
        conn.eval("release of the first checkpoint", SWAP, &guards, &args)?;
        conn.give_back_lock()
    }

    /// Gives back the spare of a checkpoint the stack dropped.
    pub(in crate::backends::redis) fn capture_forget(
        &self,
        conn: &mut RedisConn,
        db: i64,
    ) -> Result<()> {
        let Some(state) = conn.capture.as_mut() else {
            return Ok(());
        };
        let Some(i) = state.spares.iter().position(|s| s.db == db) else {
            return Ok(());
        };
        let spare = state.spares.remove(i);
        conn.give_back_spare(spare)
    }
}
