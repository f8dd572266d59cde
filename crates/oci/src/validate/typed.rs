//! The typed-decode step of upstream validation: would Go's `json.Unmarshal` into the image-spec structs
//! (`v1.Descriptor`, `v1.Manifest`, `v1.Index`, `v1.Image`) succeed, and the checks run on the decoded value
//! (the descriptor's digest, the config's `Env` entries).
//!
//! Go's decoder ignores unknown members, matches member names to fields case-insensitively, decodes every
//! duplicate member in turn, treats `null` as "leave the field alone", wants integer literals for integer fields,
//! base64 for `[]byte`, and strict RFC 3339 (read from the raw literal) for `*time.Time`.

use super::formats::{go_digest_check, go_rfc3339, is_env_entry, is_go_base64};
use super::json::{Doc, Node, NodeId};
use super::{quote, Path, Problem};

/// The shape of a Go type, as far as decoding cares.
#[derive(Clone, Copy)]
pub(crate) enum GoType {
    String,
    /// `int` / `int64`.
    Int,
    Bool,
    /// `[]byte`: a base64 string, or an array of byte values.
    Bytes,
    /// `*time.Time`.
    Time,
    /// `struct{}`: any object.
    EmptyStruct,
    Slice(&'static GoType),
    /// `map[string]T`.
    Map(&'static GoType),
    Struct(&'static [Field]),
}

pub(crate) struct Field {
    name: &'static str,
    ty: GoType,
}

const fn f(name: &'static str, ty: GoType) -> Field {
    Field { name, ty }
}

const PLATFORM: &[Field] = &[
    f("architecture", GoType::String),
    f("os", GoType::String),
    f("os.version", GoType::String),
    f("os.features", GoType::Slice(&GoType::String)),
    f("variant", GoType::String),
];

pub(crate) const DESCRIPTOR: &[Field] = &[
    f("mediaType", GoType::String),
    f("digest", GoType::String),
    f("size", GoType::Int),
    f("urls", GoType::Slice(&GoType::String)),
    f("annotations", GoType::Map(&GoType::String)),
    f("data", GoType::Bytes),
    f("platform", GoType::Struct(PLATFORM)),
    f("artifactType", GoType::String),
];

pub(crate) const MANIFEST: &[Field] = &[
    f("schemaVersion", GoType::Int),
    f("mediaType", GoType::String),
    f("artifactType", GoType::String),
    f("config", GoType::Struct(DESCRIPTOR)),
    f("layers", GoType::Slice(&GoType::Struct(DESCRIPTOR))),
    f("subject", GoType::Struct(DESCRIPTOR)),
    f("annotations", GoType::Map(&GoType::String)),
];

pub(crate) const INDEX: &[Field] = &[
    f("schemaVersion", GoType::Int),
    f("mediaType", GoType::String),
    f("artifactType", GoType::String),
    f("manifests", GoType::Slice(&GoType::Struct(DESCRIPTOR))),
    f("subject", GoType::Struct(DESCRIPTOR)),
    f("annotations", GoType::Map(&GoType::String)),
];

const IMAGE_CONFIG: &[Field] = &[
    f("User", GoType::String),
    f("ExposedPorts", GoType::Map(&GoType::EmptyStruct)),
    f("Env", GoType::Slice(&GoType::String)),
    f("Entrypoint", GoType::Slice(&GoType::String)),
    f("Cmd", GoType::Slice(&GoType::String)),
    f("Volumes", GoType::Map(&GoType::EmptyStruct)),
    f("WorkingDir", GoType::String),
    f("Labels", GoType::Map(&GoType::String)),
    f("StopSignal", GoType::String),
    f("ArgsEscaped", GoType::Bool),
];

const ROOTFS: &[Field] = &[
    f("type", GoType::String),
    f("diff_ids", GoType::Slice(&GoType::String)),
];

const HISTORY: &[Field] = &[
    f("created", GoType::Time),
    f("created_by", GoType::String),
    f("author", GoType::String),
    f("comment", GoType::String),
    f("empty_layer", GoType::Bool),
];

/// `v1.Image`, with the embedded `Platform` fields promoted.
pub(crate) const IMAGE: &[Field] = &[
    f("created", GoType::Time),
    f("author", GoType::String),
    f("architecture", GoType::String),
    f("os", GoType::String),
    f("os.version", GoType::String),
    f("os.features", GoType::Slice(&GoType::String)),
    f("variant", GoType::String),
    f("config", GoType::Struct(IMAGE_CONFIG)),
    f("rootfs", GoType::Struct(ROOTFS)),
    f("history", GoType::Slice(&GoType::Struct(HISTORY))),
];

impl GoType {
    fn describe(self) -> &'static str {
        match self {
            GoType::String => "a string",
            GoType::Int => "an integer",
            GoType::Bool => "a boolean",
            GoType::Bytes => "a base64 string",
            GoType::Time => "an RFC 3339 time string",
            GoType::EmptyStruct | GoType::Map(_) | GoType::Struct(_) => "an object",
            GoType::Slice(_) => "an array",
        }
    }
}

/// Go's case folding of a member name, for the characters that can fold onto ASCII letters.
fn fold(c: char) -> char {
    match c {
        '\u{212a}' => 'K', // KELVIN SIGN
        '\u{17f}' => 'S',  // LATIN SMALL LETTER LONG S
        '\u{131}' | '\u{130}' => 'I',
        c => c.to_ascii_uppercase(),
    }
}

/// Whether Go would store member `key` in the field named `name` (exact match, else case-insensitive).
fn names_field(key: &str, name: &str) -> bool {
    key == name
        || key
            .chars()
            .map(fold)
            .eq(name.chars().map(|c| c.to_ascii_uppercase()))
}

fn field_for(fields: &'static [Field], key: &str) -> Option<&'static Field> {
    fields
        .iter()
        .find(|f| f.name == key)
        .or_else(|| fields.iter().find(|f| names_field(key, f.name)))
}

/// `strconv.ParseInt(literal, 10, 64)`: an integer literal in range (no fraction, no exponent).
pub(crate) fn go_int(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|_| !raw.starts_with('+'))
}

/// Would decoding node `id` into `ty` succeed?
pub(crate) fn check(doc: &Doc, id: NodeId, ty: GoType, path: &Path<'_>) -> Result<(), Problem> {
    let node = doc.node(id);
    let mismatch = || {
        Problem::at(
            path,
            format!(
                "cannot decode a JSON {} here: expected {}",
                node.kind(),
                ty.describe()
            ),
        )
    };
    match (ty, node) {
        // Go leaves the field alone (or sets it to nil) for null.
        (_, Node::Null) => Ok(()),
        (GoType::String, Node::Str { .. }) | (GoType::Bool, Node::Bool(_)) => Ok(()),
        (GoType::Int, Node::Number(raw)) => match go_int(raw) {
            Some(_) => Ok(()),
            None => Err(Problem::at(
                path,
                format!("{raw} is not an integer that fits in 64 bits"),
            )),
        },
        (GoType::Bytes, Node::Str { value, .. }) => {
            if is_go_base64(value) {
                Ok(())
            } else {
                Err(Problem::at(
                    path,
                    format!("{} is not valid padded base64", quote(value)),
                ))
            }
        }
        (GoType::Bytes, Node::Array(items)) => {
            for (i, &item) in items.iter().enumerate() {
                match doc.node(item) {
                    Node::Null => {}
                    Node::Number(raw) if raw.parse::<u8>().is_ok() && !raw.starts_with('+') => {}
                    other => {
                        return Err(Problem::at(
                            &path.index(i),
                            format!("cannot decode a JSON {} into a byte", other.kind()),
                        ))
                    }
                }
            }
            Ok(())
        }
        (GoType::Time, Node::Str { value, escaped }) => {
            if *escaped {
                return Err(Problem::at(
                    path,
                    format!(
                        "{}: Go reads times from the raw literal, which may not hold escapes",
                        quote(value)
                    ),
                ));
            }
            go_rfc3339(value).map_err(|e| Problem::at(path, e))
        }
        (GoType::EmptyStruct, Node::Object(_)) => Ok(()),
        (GoType::Slice(elem), Node::Array(items)) => {
            for (i, &item) in items.iter().enumerate() {
                check(doc, item, *elem, &path.index(i))?;
            }
            Ok(())
        }
        (GoType::Map(elem), Node::Object(members)) => {
            for (k, v) in members {
                check(doc, *v, *elem, &path.key(k))?;
            }
            Ok(())
        }
        (GoType::Struct(fields), Node::Object(members)) => {
            for (k, v) in members {
                if let Some(field) = field_for(fields, k) {
                    check(doc, *v, field.ty, &path.key(k))?;
                }
            }
            Ok(())
        }
        _ => Err(mismatch()),
    }
}

/// The descriptor validator's digest check, on the digest Go decoded: the last non-null member naming the field,
/// or the empty string (which fails) when there is none.
pub(crate) fn check_descriptor_digest(doc: &Doc, root: &Path<'_>) -> Result<(), Problem> {
    let Node::Object(members) = doc.node(doc.root()) else {
        return Err(Problem::at(root, "the digest is missing".to_string()));
    };
    let mut named: Option<&str> = None;
    let mut decoded: Option<(&str, &str)> = None;
    for (k, v) in members {
        if names_field(k, "digest") {
            named = Some(k);
            if let Node::Str { value, .. } = doc.node(*v) {
                decoded = Some((k.as_str(), value.as_str()));
            }
        }
    }
    match (decoded, named) {
        (Some((key, digest)), _) => go_digest_check(digest).map_err(|e| {
            Problem::at(
                &root.key(key),
                format!("{} is not a valid digest: {e}", quote(digest)),
            )
        }),
        (None, Some(key)) => Err(Problem::at(
            &root.key(key),
            "expected a string, got null".to_string(),
        )),
        (None, None) => Err(Problem::at(
            root,
            "missing required member \"digest\"".to_string(),
        )),
    }
}

/// The config validator's `Env` check, on the `Env` slice Go ends up with. Go decodes every member naming the
/// field, in turn, into the same slice: a later `config` object only overwrites the fields it names, `null`
/// empties the slice, `[]` replaces it, and any other array is decoded into the existing backing array, so a
/// `null` element keeps whatever string that slot held before (or `""`, which fails the check).
pub(crate) fn check_config_env(doc: &Doc, root: &Path<'_>) -> Result<(), Problem> {
    let Node::Object(top) = doc.node(doc.root()) else {
        return Ok(());
    };
    let mut env = GoStringSlice::default();
    let mut last: Option<(&str, &str, &[NodeId])> = None;
    for (ck, cv) in top {
        if !names_field(ck, "config") {
            continue;
        }
        let Node::Object(members) = doc.node(*cv) else {
            continue;
        };
        for (ek, ev) in members {
            if !names_field(ek, "Env") {
                continue;
            }
            match doc.node(*ev) {
                Node::Array(items) => {
                    env.decode(doc, items);
                    last = Some((ck.as_str(), ek.as_str(), items.as_slice()));
                }
                Node::Null => {
                    env = GoStringSlice::default();
                    last = None;
                }
                _ => {}
            }
        }
    }
    let Some((ck, ek, items)) = last else {
        return Ok(());
    };
    for (i, value) in env.values().iter().enumerate() {
        if !is_env_entry(value) {
            let config = root.key(ck);
            let envp = config.key(ek);
            let at = envp.index(i);
            let shown = match items.get(i).map(|&id| doc.node(id)) {
                Some(Node::Null) => format!("null (which Go decodes as {})", quote(value)),
                _ => quote(value),
            };
            return Err(Problem::at(
                &at,
                format!("{shown} does not match ^[^=]+=.*$ (want NAME=value)"),
            ));
        }
    }
    Ok(())
}

/// A Go `[]string` as `encoding/json` fills it: a backing array with a capacity, and a length.
#[derive(Default)]
struct GoStringSlice<'d> {
    /// The whole backing array (its length is the capacity); slots never written hold "".
    backing: Vec<&'d str>,
    len: usize,
}

impl<'d> GoStringSlice<'d> {
    fn decode(&mut self, doc: &'d Doc, items: &[NodeId]) {
        if items.is_empty() {
            *self = GoStringSlice::default();
            return;
        }
        for (i, &item) in items.iter().enumerate() {
            if i >= self.backing.len() {
                let cap = go_grown_cap(self.backing.len(), i + 1);
                self.backing.resize(cap, "");
            }
            self.len = self.len.max(i + 1);
            if let (Node::Str { value, .. }, Some(slot)) = (doc.node(item), self.backing.get_mut(i))
            {
                *slot = value;
            }
        }
        self.len = self.len.min(items.len());
    }

    fn values(&self) -> &[&'d str] {
        self.backing.get(..self.len).unwrap_or_default()
    }
}

/// The capacity `reflect.Value.Grow(1)` gives a full `[]string` of capacity `old` (Go 1.22 and later: the
/// runtime's growth rule, rounded up to a malloc size class, minus the malloc header of pointerful objects).
fn go_grown_cap(old: usize, new_len: usize) -> usize {
    const ELEM: usize = 16;
    let mut cap = old;
    if new_len > 2 * old {
        cap = new_len;
    } else if old < 256 {
        cap = 2 * old;
    } else {
        while cap < new_len {
            cap += (cap + 768) / 4;
        }
    }
    let size = cap.saturating_mul(ELEM);
    let header = if size > 512 { 8 } else { 0 };
    let req = size + header;
    let rounded = if req <= 32768 {
        SIZE_CLASSES
            .iter()
            .copied()
            .find(|&c| c >= req)
            .unwrap_or(req)
            - header
    } else {
        size.div_ceil(8192).saturating_mul(8192)
    };
    (rounded / ELEM).max(new_len)
}

/// The runtime's malloc size classes (bytes).
const SIZE_CLASSES: [usize; 67] = [
    8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352,
    384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
    2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_folds_member_names() {
        assert!(names_field("MediaType", "mediaType"));
        assert!(names_field("MEDIATYPE", "mediaType"));
        assert!(names_field("\u{212a}ey", "key"));
        assert!(names_field("o\u{17f}", "os"));
        assert!(!names_field("media_type", "mediaType"));
        assert!(!names_field("os.versio", "os.version"));
    }

    #[test]
    fn slice_growth_like_go() {
        let caps: Vec<usize> = std::iter::successors(Some(0), |&c| Some(go_grown_cap(c, c + 1)))
            .take(9)
            .collect();
        assert_eq!(caps, [0, 1, 2, 4, 8, 16, 32, 71, 143]);
    }

    #[test]
    fn go_integers() {
        assert_eq!(go_int("-0"), Some(0));
        assert_eq!(go_int("9223372036854775807"), Some(i64::MAX));
        assert_eq!(go_int("9223372036854775808"), None);
        assert_eq!(go_int("1.0"), None);
        assert_eq!(go_int("1e2"), None);
    }
}
