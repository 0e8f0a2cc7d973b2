//! A value that accepts any YAML, to check a whole file's syntax before typed decoding.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Accepts any YAML document. Unlike `IgnoredAny`, it reads map keys as values, so
/// serde_path_to_error can name the path where a syntax error was found.
pub(crate) struct AnyYaml;

impl<'de> Deserialize<'de> for AnyYaml {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnyVisitor)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = AnyYaml;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_unit<E: de::Error>(self) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_none<E: de::Error>(self) -> Result<AnyYaml, E> {
        Ok(AnyYaml)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<AnyYaml, D::Error> {
        AnyYaml::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyYaml, A::Error> {
        while seq.next_element::<AnyYaml>()?.is_some() {}
        Ok(AnyYaml)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyYaml, A::Error> {
        while map.next_key::<AnyYaml>()?.is_some() {
            map.next_value::<AnyYaml>()?;
        }
        Ok(AnyYaml)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<AnyYaml, A::Error> {
        // A tagged value (`!tag x`): its content still has to parse.
        let (IgnoredAny, variant) = data.variant::<IgnoredAny>()?;
        de::VariantAccess::newtype_variant::<AnyYaml>(variant)?;
        Ok(AnyYaml)
    }
}
