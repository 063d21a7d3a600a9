//! [`Context`]: the values a journey captures from responses (ids, tokens), restored for
//! each path as the database is.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// The values steps capture from responses, such as ids and tokens: a map from names to
/// JSON values, the Python original's `ctx`.
///
/// The runner clones it at each [`Checkpoint`](super::Checkpoint) and gives every path of
/// a branch its own copy of that clone, so a path sees exactly what the steps before the
/// checkpoint stored, as it sees the database at the checkpoint.
///
/// ```
/// use venomqa::journey::Context;
///
/// let mut ctx = Context::new();
/// ctx.set("user_id", 42);
/// ctx.set("token", "t-1");
/// assert_eq!(ctx.get_as::<i64>("user_id")?, 42);
/// assert_eq!(ctx.str("token")?, "t-1");
///
/// let e = ctx.get_as::<i64>("order_id").unwrap_err();
/// assert_eq!(e.to_string(), "no value \"order_id\" in the journey context (it holds: token, user_id); set it in an earlier step with ctx.set(\"order_id\", ..)");
/// # Ok::<(), venomqa::journey::ContextError>(())
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Context {
    values: BTreeMap<String, Value>,
}

/// A value the journey [`Context`] does not hold, or holds with another type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// No value under this key.
    #[error("no value {key:?} in the journey context (it holds: {held}); set it in an earlier step with ctx.set({key:?}, ..)")]
    Missing {
        /// The key asked for.
        key: String,
        /// The keys the context holds, for the message.
        held: String,
    },
    /// The value is not of the type asked for.
    #[error("the journey context value {key:?} is {value}, which is not {wanted}: {source}")]
    Type {
        /// The key asked for.
        key: String,
        /// The value, shown as JSON (cut when long).
        value: String,
        /// The Rust type asked for.
        wanted: &'static str,
        /// The deserializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A value could not be stored as JSON.
    #[error("the value for {key:?} cannot be stored in the journey context: {source}")]
    Serialize {
        /// The key.
        key: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Context::default()
    }

    /// Stores `value` (anything `Serialize`) under `key`, replacing what was there.
    ///
    /// # Panics
    ///
    /// When `value` cannot be represented as JSON (a map with non-string keys); use
    /// [`try_set`](Self::try_set) to get an error instead.
    pub fn set(&mut self, key: impl Into<String>, value: impl Serialize) {
        let key = key.into();
        if let Err(e) = self.try_set(key, value) {
            panic!("{e}");
        }
    }

    /// Stores `value` under `key`, or says why it cannot be stored as JSON.
    pub fn try_set(
        &mut self,
        key: impl Into<String>,
        value: impl Serialize,
    ) -> Result<(), ContextError> {
        let key = key.into();
        match serde_json::to_value(value) {
            Ok(v) => {
                self.values.insert(key, v);
                Ok(())
            }
            Err(source) => Err(ContextError::Serialize { key, source }),
        }
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// The value under `key`, or an error naming the key and what the context holds.
    pub fn require(&self, key: &str) -> Result<&Value, ContextError> {
        self.values.get(key).ok_or_else(|| ContextError::Missing {
            key: key.to_owned(),
            held: self.held(),
        })
    }

    /// The value under `key` as a `T`, or an error naming the key and saying why.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, ContextError> {
        let value = self.require(key)?;
        T::deserialize(value).map_err(|source| ContextError::Type {
            key: key.to_owned(),
            value: super::format::cut(&value.to_string(), 120),
            wanted: std::any::type_name::<T>(),
            source,
        })
    }

    /// The string under `key` (borrowed), or an error.
    pub fn str(&self, key: &str) -> Result<&str, ContextError> {
        let value = self.require(key)?;
        value.as_str().ok_or_else(|| ContextError::Type {
            key: key.to_owned(),
            value: super::format::cut(&value.to_string(), 120),
            wanted: "a string",
            source: <serde_json::Error as serde::de::Error>::custom("not a JSON string"),
        })
    }

    /// The integer under `key`, or an error.
    pub fn i64(&self, key: &str) -> Result<i64, ContextError> {
        self.get_as(key)
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.values.remove(key)
    }

    /// Whether a value is stored under `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The whole context as one JSON object.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.values
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    fn held(&self) -> String {
        if self.values.is_empty() {
            "nothing".to_owned()
        } else {
            self.keys().collect::<Vec<_>>().join(", ")
        }
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.values.iter()).finish()
    }
}

impl<K: Into<String>, V: Serialize> FromIterator<(K, V)> for Context {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut ctx = Context::new();
        for (k, v) in iter {
            ctx.set(k, v);
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_access_and_errors() {
        let mut ctx: Context = [("id", 7)].into_iter().collect();
        ctx.set("name", "ann");
        assert_eq!(ctx.i64("id").unwrap(), 7);
        assert_eq!(ctx.get_as::<String>("name").unwrap(), "ann");
        let e = ctx.i64("name").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the journey context value \"name\" is \"ann\", which is not i64"),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        let e = ctx.str("id").unwrap_err();
        assert!(e.to_string().contains("which is not a string"), "{e}");
        assert_eq!(ctx.remove("id"), Some(Value::from(7)));
        assert!(!ctx.contains("id"));
        let e = Context::new().require("x").unwrap_err();
        assert!(e.to_string().contains("(it holds: nothing)"), "{e}");
    }
}
