//! Just enough of the Kubernetes protobuf encoding to read the bodies kubectl's typed clients
//! send for built-in kinds (`kubectl create namespace x` posts a protobuf Namespace, and the
//! real server has no JSON fallback for request bodies). Only Namespaces are decoded, and of
//! their metadata only name, generateName, labels, annotations and finalizers; every response
//! is JSON, which kubectl also accepts.

use serde_json::{Map, Value, json};

use super::errors::{ApiError, ApiResult};

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The envelope's magic prefix, before the `runtime.Unknown` message.
const MAGIC: &[u8] = b"k8s\x00";

/// A field's value; numbers are skipped, only nested messages and strings are read.
enum Field<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of one message, in order: (field number, value).
fn fields(mut data: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let tag = varint(&mut data)?;
        let field = match tag & 7 {
            0 => {
                varint(&mut data)?;
                Field::Varint
            }
            1 => {
                data = data.get(8..)?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut data)?).ok()?;
                let (bytes, rest) = (data.get(..len)?, data.get(len..)?);
                data = rest;
                Field::Bytes(bytes)
            }
            5 => {
                data = data.get(4..)?;
                Field::Fixed
            }
            _ => return None,
        };
        out.push((tag >> 3, field));
    }
    Some(out)
}

fn varint(data: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = data.split_first()?;
        *data = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn string(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

fn bytes_of<'a>(fields: &[(u64, Field<'a>)], number: u64) -> impl Iterator<Item = &'a [u8]> {
    fields
        .iter()
        .filter(move |(n, _)| *n == number)
        .filter_map(|(_, f)| match f {
            Field::Bytes(b) => Some(*b),
            Field::Varint | Field::Fixed => None,
        })
}

fn string_map<'a>(entries: impl Iterator<Item = &'a [u8]>) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for entry in entries {
        let entry = fields(entry)?;
        let key = bytes_of(&entry, 1)
            .next()
            .map(string)
            .unwrap_or(Some(String::new()))?;
        let value = bytes_of(&entry, 2)
            .next()
            .map(string)
            .unwrap_or(Some(String::new()))?;
        map.insert(key, json!(value));
    }
    Some(map)
}

fn object_meta(data: &[u8]) -> Option<Value> {
    let meta = fields(data)?;
    let mut out = Map::new();
    for (name, number) in [("name", 1), ("generateName", 2), ("namespace", 3)] {
        if let Some(value) = bytes_of(&meta, number).next() {
            out.insert(name.into(), json!(string(value)?));
        }
    }
    for (name, number) in [("labels", 11), ("annotations", 12)] {
        let map = string_map(bytes_of(&meta, number))?;
        if !map.is_empty() {
            out.insert(name.into(), Value::Object(map));
        }
    }
    let finalizers: Option<Vec<String>> = bytes_of(&meta, 14).map(string).collect();
    let finalizers = finalizers?;
    if !finalizers.is_empty() {
        out.insert("finalizers".into(), json!(finalizers));
    }
    Some(Value::Object(out))
}

/// Decodes a protobuf request body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let malformed =
        || ApiError::bad_request("the body of the request could not be decoded as protobuf");
    let unknown = fields(body.strip_prefix(MAGIC).ok_or_else(malformed)?).ok_or_else(malformed)?;
    let type_meta =
        fields(bytes_of(&unknown, 1).next().unwrap_or_default()).ok_or_else(malformed)?;
    let api_version = bytes_of(&type_meta, 1)
        .next()
        .and_then(string)
        .unwrap_or_default();
    let kind = bytes_of(&type_meta, 2)
        .next()
        .and_then(string)
        .unwrap_or_default();
    if (api_version.as_str(), kind.as_str()) != ("v1", "Namespace") {
        return Err(ApiError::unsupported_media_type(
            "application/json, application/yaml",
        ));
    }
    let raw = fields(bytes_of(&unknown, 2).next().unwrap_or_default()).ok_or_else(malformed)?;
    let metadata =
        object_meta(bytes_of(&raw, 1).next().unwrap_or_default()).ok_or_else(malformed)?;
    Ok(json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}))
}
