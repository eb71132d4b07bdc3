//! Serde for the shared (`Arc`) strings and lists of the public types: the same JSON as a
//! `String` or a `Vec` (serde's own `Arc` support needs its `rc` feature, which would change
//! every dependent's build).

/// `Arc<str>` as a JSON string.
pub(crate) mod arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(value)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Arc<str>, D::Error> {
        Ok(Box::<str>::deserialize(deserializer)?.into())
    }
}

/// `Arc<[T]>` as a JSON array.
pub(crate) mod arc_slice {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<S: Serializer, T: Serialize>(value: &Arc<[T]>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Arc<[T]>, D::Error> {
        Ok(Vec::<T>::deserialize(deserializer)?.into())
    }
}

/// `Option<Arc<str>>` as an optional JSON string.
pub(crate) mod opt_arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    // serde's `with` passes a reference to the field.
    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: Serializer>(value: &Option<Arc<str>>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(s) => serializer.serialize_some(&**s),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<Box<str>>::deserialize(deserializer)?.map(Into::into))
    }
}

/// `Option<Arc<T>>` as `Option<T>`.
pub(crate) mod opt_arc {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    // serde's `with` passes a reference to the field.
    #[allow(clippy::ref_option)]
    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Arc<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.as_deref().serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Arc<T>>, D::Error> {
        Ok(Option::<T>::deserialize(deserializer)?.map(Arc::new))
    }
}

/// Slots that each hold a shared string or nothing.
pub(crate) type StrSlots = Box<[Option<std::sync::Arc<str>>]>;

/// [`StrSlots`] as a JSON array of strings and nulls.
pub(crate) mod opt_arc_str_slots {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(value: &[Option<Arc<str>>], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value.iter().map(Option::as_deref))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<super::StrSlots, D::Error> {
        Ok(Vec::<Option<Box<str>>>::deserialize(deserializer)?.into_iter().map(|s| s.map(Into::into)).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Slots(#[serde(with = "super::opt_arc_str_slots")] Box<[Option<Arc<str>>]>);

    #[test]
    fn slots_read_and_write_as_the_boxed_strings_did() {
        let slots = Slots(vec![Some(Arc::from("carol")), None].into());
        let json = serde_json::to_string(&slots).expect("serializes");
        let before: Box<[Option<Box<str>>]> = vec![Some(Box::from("carol")), None].into();
        assert_eq!(json, serde_json::to_string(&before).expect("serializes"));
        assert_eq!(serde_json::from_str::<Slots>(&json).expect("reads back"), slots);
    }
}
