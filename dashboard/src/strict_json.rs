//! Request bodies parsed as JSON that refuses a key given twice in one object.
//!
//! `serde_json` keeps the last of duplicate keys without a word, so
//! `{"state":"completed","state":"failed"}` sent to `clean` removed failed jobs: whatever a
//! proxy, a log or a reviewer read first, the body did something else. Every body the API
//! and the pages take is read here, and a duplicate key is a 400 naming it.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `body` as a JSON value; an error names a key given twice in one object.
pub fn parse(body: &[u8]) -> Result<Value, serde_json::Error> {
    let value = serde_json::from_slice::<Strict>(body).map(|s| s.0)?;
    // (an integer past 64 bits would be read as a rounded float)
    queue_core::internal::json_numbers::check(body).map_err(de::Error::custom)?;
    Ok(value)
}

/// A JSON value read without duplicate keys.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a JSON number")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if obj.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "key {:?} is given twice in one object: send it once",
                    queue_core::internal::text::clip(&key, 60)
                )));
            }
            let Strict(v) = map.next_value()?;
            obj.insert(key, v);
        }
        Ok(Value::Object(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_and_values_read_as_serde_json_reads_them() {
        for body in [
            r#"{"state":"completed","state":"failed"}"#,
            r#"[{"name":"a"},{"opts":{"group":"x","group":"y"}}]"#,
        ] {
            let e = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("is given twice"), "{body}: {e}");
        }
        let body = r#"{"a":[1,-2,3.5,true,null,"s",{"b":{}}],"c":18446744073709551615}"#;
        assert_eq!(
            parse(body.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(body).unwrap()
        );
        assert!(
            parse(&b"[".repeat(10_000)).is_err(),
            "the depth limit holds"
        );
    }
}
