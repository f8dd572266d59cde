//! Conversions between JS values and Rust: errors, serde values, byte-like inputs.

use js_sys::{Array, ArrayBuffer, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// A JS `Error` with `message`.
pub fn err(message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

/// The message of a thrown JS value (an `Error`'s, else its debug form).
pub fn message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Serialize to a plain JS value (objects, not Maps; u64 as numbers).
pub fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsValue> {
    let s = serde_wasm_bindgen::Serializer::json_compatible();
    v.serialize(&s).map_err(err)
}

/// A JSON document as a parsed JS value.
pub fn json_to_js(bytes: &[u8]) -> Result<JsValue, JsValue> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(err)?;
    to_js(&v)
}

pub fn get(obj: &JsValue, key: &str) -> Result<JsValue, JsValue> {
    if obj.is_undefined() || obj.is_null() {
        return Ok(JsValue::UNDEFINED);
    }
    js_sys::Reflect::get(obj, &JsValue::from_str(key))
}

pub fn get_string(obj: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    let v = get(obj, key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| err(format!("option {key} must be a string")))
}

pub fn get_bool(obj: &JsValue, key: &str) -> Result<bool, JsValue> {
    Ok(get(obj, key)?.as_bool().unwrap_or(false))
}

/// A `Record<string, string>` option.
pub fn get_string_map(obj: &JsValue, key: &str) -> Result<Vec<(String, String)>, JsValue> {
    let v = get(obj, key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for pair in js_sys::Object::entries(v.unchecked_ref()).iter() {
        let pair: Array = pair.unchecked_into();
        let k = pair.get(0).as_string().unwrap_or_default();
        let val = pair
            .get(1)
            .as_string()
            .ok_or_else(|| err(format!("{key}.{k} must be a string")))?;
        out.push((k, val));
    }
    Ok(out)
}

/// The bytes of a `Uint8Array | ArrayBuffer | string | Blob | File` (strings are UTF-8 encoded).
pub async fn bytes_of(v: &JsValue, what: &str) -> Result<Vec<u8>, JsValue> {
    if let Some(s) = v.as_string() {
        return Ok(s.into_bytes());
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = v.dyn_ref::<ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    if let Some(blob) = v.dyn_ref::<web_sys::Blob>() {
        let buf = JsFuture::from(blob.array_buffer()).await?;
        return Ok(Uint8Array::new(&buf).to_vec());
    }
    if ArrayBuffer::is_view(v) {
        let view: js_sys::DataView = v.clone().unchecked_into();
        return Ok(Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            view.byte_offset() as u32,
            view.byte_length() as u32,
        )
        .to_vec());
    }
    Err(err(format!(
        "{what}: expected a Uint8Array, ArrayBuffer, string, Blob or File"
    )))
}
