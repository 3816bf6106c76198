//! `Located<T>`: a deserialized value with the line and column it was read from.
//!
//! serde-saphyr's own `Spanned<T>` carries the location but implements neither `JsonSchema` nor
//! `Ord`/`Default`, which the manifest types need (schema generation, map keys). This wrapper
//! deserializes through `Spanned<T>` and forwards the schema to `T`, so the generated JSON Schema
//! describes the YAML a user writes, not the wrapper.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer};

/// A 1-based line and column in the manifest file. `0:0` means "unknown" (a default value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl Location {
    pub const UNKNOWN: Location = Location { line: 0, column: 0 };

    pub fn new(line: u32, column: u32) -> Location {
        Location { line, column }
    }

    pub fn is_known(self) -> bool {
        self.line != 0
    }

    /// This location, or `fallback` when this one is unknown.
    pub fn or(self, fallback: Location) -> Location {
        if self.is_known() { self } else { fallback }
    }

    pub(crate) fn from_saphyr(loc: serde_saphyr::Location) -> Location {
        // Saturate rather than wrap: a manifest with four billion lines is not a real input, and
        // a wrong-but-large line number beats a panic.
        Location {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value and where the manifest says it. Equality, ordering and hashing look at the value
/// only, so two `Located` map keys with the same text are the same key.
#[derive(Clone, Debug, Default)]
pub struct Located<T> {
    pub value: T,
    pub location: Location,
}

impl<T> Located<T> {
    pub fn new(value: T, location: Location) -> Self {
        Located { value, location }
    }
}

impl<T: PartialEq> PartialEq for Located<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Located<T> {}

impl<T: PartialOrd> PartialOrd for Located<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Located<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: Hash> Hash for Located<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        // `referenced` is where the value is used: for an alias, the `*alias` site, which is
        // where a user looks when that use is wrong.
        Ok(Located {
            value: spanned.value,
            location: Location::from_saphyr(spanned.referenced),
        })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_and_order_ignore_the_location() {
        let a = Located::new("x".to_string(), Location::new(1, 1));
        let b = Located::new("x".to_string(), Location::new(9, 3));
        assert_eq!(a, b);
        assert_eq!(a.cmp(&b), Ordering::Equal);
    }

    #[test]
    fn deserializes_with_the_value_location() {
        #[derive(Deserialize)]
        struct Doc {
            a: Located<u32>,
            b: Located<Vec<Located<String>>>,
        }
        let doc: Doc = serde_saphyr::from_str("a: 5\nb:\n  - x\n  - y\n").unwrap();
        assert_eq!((doc.a.value, doc.a.location), (5, Location::new(1, 4)));
        assert_eq!(doc.b.location, Location::new(3, 3));
        assert_eq!(doc.b.value[1].location, Location::new(4, 5));
    }

    #[test]
    fn schema_is_the_inner_type_schema() {
        assert_eq!(
            schemars::schema_for!(Located<String>),
            schemars::schema_for!(String)
        );
    }

    #[test]
    fn unknown_locations_fall_back() {
        assert_eq!(
            Location::UNKNOWN.or(Location::new(2, 1)),
            Location::new(2, 1)
        );
        assert_eq!(
            Location::new(3, 4).or(Location::new(2, 1)).to_string(),
            "3:4"
        );
    }
}
