#![cfg(feature = "mongodb")]
