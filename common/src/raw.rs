//! [`Raw<T>`]: a result the daemon serializes itself.
//!
//! `ul.dump` of a big table is tens of megabytes of JSON. Serializing it
//! inside jsonrpsee's response path would run on an async worker thread,
//! next to the SIP transports; the daemon instead builds the text on a
//! blocking thread and hands jsonrpsee a [`RawValue`] that it copies as is.
//! The type parameter keeps the API typed: the client parses the text into
//! `T` with [`Raw::parse`], or prints it untouched (`kamrsctl --json`).

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// JSON text known to be a serialized `T`.
pub struct Raw<T> {
    json: Box<RawValue>,
    _of: PhantomData<fn() -> T>,
}

impl<T> Raw<T> {
    /// The JSON text, exactly as the daemon sent it.
    pub fn get(&self) -> &str {
        self.json.get()
    }
}

impl<T: Serialize> Raw<T> {
    /// Serializes `value`.
    pub fn new(value: &T) -> Result<Self, serde_json::Error> {
        Ok(Raw {
            json: serde_json::value::to_raw_value(value)?,
            _of: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Raw<T> {
    /// Parses the text into `T`.
    pub fn parse(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.json.get())
    }
}

impl<T> fmt::Debug for Raw<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.get();
        // Never dump megabytes into a log line.
        match text.char_indices().nth(200) {
            Some((cut, _)) => write!(f, "Raw({}…)", &text[..cut]),
            None => write!(f, "Raw({text})"),
        }
    }
}

impl<T> Clone for Raw<T> {
    fn clone(&self) -> Self {
        Raw {
            json: self.json.clone(),
            _of: PhantomData,
        }
    }
}

impl<T> Serialize for Raw<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Raw {
            json: Box::<RawValue>::deserialize(d)?,
            _of: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_embeds_verbatim() {
        let raw = Raw::new(&vec![1u32, 2, 3]).unwrap();
        assert_eq!(raw.get(), "[1,2,3]");
        assert_eq!(raw.parse().unwrap(), vec![1, 2, 3]);
        // Embedded in a response, the text is copied, not re-encoded.
        let resp = serde_json::json!({"result": serde_json::to_value(&raw).unwrap()});
        assert_eq!(resp["result"][2], 3);
        let text = format!(r#"{{"result":{}}}"#, raw.get());
        #[derive(Deserialize)]
        struct R {
            result: Raw<Vec<u32>>,
        }
        let r: R = serde_json::from_str(&text).unwrap();
        assert_eq!(r.result.parse().unwrap(), vec![1, 2, 3]);
        assert!(format!("{:?}", r.result).starts_with("Raw([1,2,3]"));
    }
}
