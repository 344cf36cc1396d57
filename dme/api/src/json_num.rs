//! Proto3-JSON numbers for the generated serde code: a number field takes a JSON number or a
//! string holding one (as pbjson's `NumberDeserialize` does), read with one visitor.
//!
//! Why not pbjson's own: it is an untagged enum, so serde buffers every number and first tries
//! to read it as a string; that fails with a formatted (allocated) error message, which is then
//! thrown away. Every REST request paid this for each of its number fields (about 0.2 µs a
//! FindCloudlet). `build.rs` points the generated code here instead.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Unexpected, Visitor};

/// A proto3-JSON number field of type `T` (see the module doc).
#[derive(Debug)]
pub struct Num<T>(pub T);

/// The number types proto fields use, with the conversions a JSON number allows.
pub trait JsonNumber: Sized + FromStr {
    /// Name for error messages.
    const NAME: &'static str;
    fn from_i64(v: i64) -> Option<Self>;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
}

macro_rules! int {
    ($($t:ty),*) => {$(
        impl JsonNumber for $t {
            const NAME: &'static str = stringify!($t);
            fn from_i64(v: i64) -> Option<Self> { Self::try_from(v).ok() }
            fn from_u64(v: u64) -> Option<Self> { Self::try_from(v).ok() }
            fn from_f64(_: f64) -> Option<Self> { None }
        }
    )*};
}
int!(i32, u32, i64, u64);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl JsonNumber for $t {
            const NAME: &'static str = stringify!($t);
            #[allow(clippy::cast_precision_loss)]
            fn from_i64(v: i64) -> Option<Self> { Some(v as $t) }
            #[allow(clippy::cast_precision_loss)]
            fn from_u64(v: u64) -> Option<Self> { Some(v as $t) }
            #[allow(clippy::cast_possible_truncation)]
            fn from_f64(v: f64) -> Option<Self> { Some(v as $t) }
        }
    )*};
}
float!(f32, f64);

struct NumVisitor<T>(PhantomData<T>);

impl<T: JsonNumber> Visitor<'_> for NumVisitor<T> {
    type Value = Num<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} as a number or a string", T::NAME)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::from_i64(v)
            .map(Num)
            .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::from_u64(v)
            .map(Num)
            .ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::from_f64(v)
            .map(Num)
            .ok_or_else(|| E::invalid_type(Unexpected::Float(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.parse()
            .map(Num)
            .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

impl<'de, T: JsonNumber> serde::Deserialize<'de> for Num<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f64_of(s: &str) -> Result<f64, serde_json::Error> {
        serde_json::from_str::<Num<f64>>(s).map(|n| n.0)
    }

    fn i32_of(s: &str) -> Result<i32, serde_json::Error> {
        serde_json::from_str::<Num<i32>>(s).map(|n| n.0)
    }

    #[test]
    fn numbers_and_numeric_strings_are_read() {
        assert_eq!(f64_of("52.52").unwrap(), 52.52);
        assert_eq!(f64_of("-13").unwrap(), -13.0);
        assert_eq!(f64_of("\"1e3\"").unwrap(), 1000.0);
        assert_eq!(i32_of("-7").unwrap(), -7);
        assert_eq!(i32_of("\"42\"").unwrap(), 42);
        assert_eq!(
            serde_json::from_str::<Num<u64>>("18446744073709551615")
                .unwrap()
                .0,
            u64::MAX
        );
        assert_eq!(serde_json::from_str::<Num<f32>>("0.5").unwrap().0, 0.5);
    }

    #[test]
    fn what_is_not_a_number_of_the_type_is_refused_with_its_value() {
        let e = i32_of("1.5").unwrap_err().to_string();
        assert!(
            e.contains("floating point `1.5`") && e.contains("i32"),
            "{e}"
        );
        let e = i32_of("3000000000").unwrap_err().to_string();
        assert!(e.contains("3000000000"), "{e}");
        let e = serde_json::from_str::<Num<u32>>("-1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("-1"), "{e}");
        let e = f64_of("\"north\"").unwrap_err().to_string();
        assert!(e.contains("north"), "{e}");
        assert!(f64_of("true").is_err());
        assert!(f64_of("null").is_err());
        assert!(f64_of("[1]").is_err());
    }
}
