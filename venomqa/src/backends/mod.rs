//! The built-in backends, each behind its cargo feature.

pub mod memory;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub mod mongodb;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub mod mysql;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

/// The built-in backends, registered when the registry is first used.
pub(crate) fn builtins() -> Vec<crate::registry::Backend> {
    #[allow(unused_mut)]
    let mut all = vec![memory::backend()];
    #[cfg(feature = "sqlite")]
    all.push(sqlite::backend());
    #[cfg(feature = "mysql")]
    all.push(mysql::backend());
    #[cfg(feature = "postgres")]
    all.push(postgres::backend());
    #[cfg(feature = "redis")]
    all.push(redis::backend());
    #[cfg(feature = "mongodb")]
    all.push(mongodb::backend());
    all
}
