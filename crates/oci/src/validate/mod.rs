//! Validation of OCI documents, equivalent to upstream image-spec's `schema.Validator(mediaType).Validate`: the
//! typed decode into the Go structs (with its digest and `Env` checks), then the JSON schemas.
//!
//! [`validate`] reads the bytes the way Go's `encoding/json` does (see the `json` submodule) and reports the
//! first problem with its JSON path, for example `manifest: layers[0].size: -1 is negative`. Docker schema 2
//! media types are accepted too: a Docker manifest is validated as an OCI manifest, a manifest list as an index
//! and a container config as an image config.

mod formats;
mod json;
mod schema;
mod typed;

use crate::{media, Error};
use json::Doc;

/// The document kinds there is a validator for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Descriptor,
    LayoutHeader,
    Manifest,
    Index,
    Config,
}

impl Kind {
    /// The validator for a media type, if there is one.
    pub fn for_media_type(media_type: &str) -> Option<Kind> {
        match media_type {
            media::OCI_DESCRIPTOR => Some(Kind::Descriptor),
            media::OCI_LAYOUT_HEADER => Some(Kind::LayoutHeader),
            media::OCI_MANIFEST | media::DOCKER_MANIFEST => Some(Kind::Manifest),
            media::OCI_INDEX | media::DOCKER_MANIFEST_LIST => Some(Kind::Index),
            media::OCI_CONFIG | media::DOCKER_CONFIG => Some(Kind::Config),
            _ => None,
        }
    }

    /// The short name that starts every problem report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Descriptor => "descriptor",
            Kind::LayoutHeader => "layout",
            Kind::Manifest => "manifest",
            Kind::Index => "index",
            Kind::Config => "config",
        }
    }
}

/// Which `null`s an image config may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nulls {
    /// As image-spec's schemas: `null` only for `Entrypoint`, `Cmd`, `Volumes` and `Labels`.
    Spec,
    /// As Docker and containerd read a config (Go leaves a field at its zero value for `null`): also for every
    /// other optional member, such as `Env`, `ExposedPorts`, `OnBuild`, `config`, `history` and the history's
    /// fields (`docker import` writes `"Env": null`). `architecture`, `os` and `rootfs` (type and diff IDs) stay
    /// strict. Only configs are affected.
    AsDocker,
}

/// Validate `bytes` as a document of `media_type`.
///
/// Errors: [`Error::Json`] when the bytes are not JSON (as Go reads it), [`Error::Invalid`] for every other
/// problem, including a media type without a validator.
pub fn validate(media_type: &str, bytes: &[u8]) -> Result<(), Error> {
    validate_with(media_type, bytes, Nulls::Spec)
}

/// [`validate`], with `nulls` saying which `null`s a config may hold.
pub fn validate_with(media_type: &str, bytes: &[u8], nulls: Nulls) -> Result<(), Error> {
    let kind = kind_for(media_type)?;
    let doc = json::parse(bytes).map_err(|message| Error::Json {
        what: format!("{} document", kind.name()),
        message,
    })?;
    run(kind, &doc, nulls).map_err(|p| invalid(media_type, kind, p))
}

/// Validate an already parsed value as a document of `media_type`. A `serde_json::Value` cannot hold duplicate
/// members, escapes or number spellings, so this sees what [`validate`] sees for ordinary documents.
pub fn validate_value(media_type: &str, value: &serde_json::Value) -> Result<(), Error> {
    let kind = kind_for(media_type)?;
    run(kind, &Doc::from_value(value), Nulls::Spec).map_err(|p| invalid(media_type, kind, p))
}

fn kind_for(media_type: &str) -> Result<Kind, Error> {
    Kind::for_media_type(media_type).ok_or_else(|| Error::Invalid {
        media_type: media_type.to_string(),
        reason: "no validator is available for this media type".to_string(),
    })
}

fn invalid(media_type: &str, kind: Kind, p: Problem) -> Error {
    let reason = if p.path.is_empty() {
        format!("{}: {}", kind.name(), p.message)
    } else {
        format!("{}: {}: {}", kind.name(), p.path, p.message)
    };
    Error::Invalid {
        media_type: media_type.to_string(),
        reason,
    }
}

fn run(kind: Kind, doc: &Doc, nulls: Nulls) -> Result<(), Problem> {
    let root = doc.root();
    let top = Path::Root;
    // 1. The typed decode and the checks on the decoded value.
    match kind {
        Kind::Descriptor => {
            typed::check(doc, root, typed::GoType::Struct(typed::DESCRIPTOR), &top)?;
            typed::check_descriptor_digest(doc, &top)?;
        }
        Kind::Manifest => typed::check(doc, root, typed::GoType::Struct(typed::MANIFEST), &top)?,
        Kind::Index => typed::check(doc, root, typed::GoType::Struct(typed::INDEX), &top)?,
        Kind::Config => {
            typed::check(doc, root, typed::GoType::Struct(typed::IMAGE), &top)?;
            typed::check_config_env(doc, &top)?;
        }
        Kind::LayoutHeader => {}
    }
    // 2. The JSON schema.
    let s = schema::Schema {
        doc,
        docker_nulls: nulls == Nulls::AsDocker,
    };
    match kind {
        Kind::Descriptor => s.descriptor(root, &top),
        Kind::LayoutHeader => s.layout(root, &top),
        Kind::Manifest => s.manifest(root, &top),
        Kind::Index => s.index(root, &top),
        Kind::Config => s.config(root, &top),
    }
}

/// A JSON path under construction, as a chain of borrowed segments (nothing is allocated unless reported).
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, k: &'a str) -> Path<'a> {
        Path::Key(self, k)
    }

    pub(crate) fn index(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    /// `layers[0].digest`, `config.Labels["org.example"]`, `["os.version"]`.
    fn render(&self) -> String {
        let mut segs: Vec<&Path<'_>> = Vec::new();
        let mut cur = self;
        loop {
            match cur {
                Path::Root => break,
                Path::Key(parent, _) | Path::Index(parent, _) => {
                    segs.push(cur);
                    cur = parent;
                }
            }
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Path::Key(_, k) if is_identifier(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Path::Key(_, k) => {
                    out.push('[');
                    out.push_str(&quote(k));
                    out.push(']');
                }
                Path::Index(_, i) => out.push_str(&format!("[{i}]")),
                Path::Root => {}
            }
        }
        out
    }
}

fn is_identifier(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first problem found: where, and what.
#[derive(Debug)]
pub(crate) struct Problem {
    path: String,
    message: String,
}

impl Problem {
    pub(crate) fn at(path: &Path<'_>, message: String) -> Problem {
        Problem {
            path: path.render(),
            message,
        }
    }
}

/// A string as a quoted, escaped literal for messages, shortened to about 80 characters.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 80;
    match s.char_indices().nth(MAX) {
        None => format!("{s:?}"),
        Some((cut, _)) => {
            let shown = format!("{:?}", s.get(..cut).unwrap_or_default());
            format!("{}…\"", shown.strip_suffix('"').unwrap_or(&shown))
        }
    }
}

#[cfg(test)]
mod tests;
