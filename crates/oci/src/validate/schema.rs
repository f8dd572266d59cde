//! The JSON-schema step of upstream validation, written out by hand per document kind from the image-spec
//! schemas (`schema/*.json`, draft-04, formats asserted). It sees each object the way a Go map does: the last of
//! duplicate members wins. Member names are case-sensitive here, unlike in the typed step.
//!
//! None of the schemas sets `additionalProperties`, so unknown members are allowed everywhere. `created` times
//! (`format: date-time`) are not re-checked here: the typed step's strict RFC 3339 check accepts a subset of what
//! the format accepts, and it always runs first.

use super::formats::{check_uri, is_digest_pattern, is_media_type};
use super::json::{Doc, Node, NodeId};
use super::typed::go_int;
use super::{quote, Path, Problem};

type R = Result<(), Problem>;

pub(crate) struct Schema<'d> {
    pub(crate) doc: &'d Doc,
    /// Take `null` for the optional members of an image config, as Docker and containerd do (see
    /// [`super::Nulls::AsDocker`]).
    pub(crate) docker_nulls: bool,
}

fn with_article(kind: &str) -> String {
    match kind {
        "null" => "null".to_string(),
        k if k.starts_with(['a', 'e', 'i', 'o', 'u']) => format!("an {k}"),
        k => format!("a {k}"),
    }
}

/// A key that the `patternProperties` regex `.{1,}` (unanchored; `.` is any character but newline) matches.
fn pattern_key(k: &str) -> bool {
    k.chars().any(|c| c != '\n')
}

impl<'d> Schema<'d> {
    fn node(&self, id: NodeId) -> &'d Node {
        self.doc.node(id)
    }

    fn wrong_type(&self, id: NodeId, path: &Path<'_>, want: &str) -> Problem {
        Problem::at(
            path,
            format!(
                "expected {want}, got {}",
                with_article(self.node(id).kind())
            ),
        )
    }

    /// `type: object` plus `required`; returns the members a Go map would keep, in document order.
    fn object(
        &self,
        id: NodeId,
        path: &Path<'_>,
        required: &[&str],
    ) -> Result<Vec<(&'d str, NodeId)>, Problem> {
        if !matches!(self.node(id), Node::Object(_)) {
            return Err(self.wrong_type(id, path, "an object"));
        }
        for key in required {
            if self.doc.last_member(id, key).is_none() {
                return Err(Problem::at(
                    path,
                    format!("missing required member {}", quote(key)),
                ));
            }
        }
        Ok(self.doc.unique_members(id))
    }

    fn string(&self, id: NodeId, path: &Path<'_>) -> Result<&'d str, Problem> {
        match self.node(id) {
            Node::Str { value, .. } => Ok(value),
            _ => Err(self.wrong_type(id, path, "a string")),
        }
    }

    fn boolean(&self, id: NodeId, path: &Path<'_>) -> R {
        match self.node(id) {
            Node::Bool(_) => Ok(()),
            _ => Err(self.wrong_type(id, path, "a boolean")),
        }
    }

    /// `type: integer`. Non-integer literals never get here: the typed step rejects them for every integer field.
    fn integer(&self, id: NodeId, path: &Path<'_>) -> Result<i64, Problem> {
        match self.node(id) {
            Node::Number(raw) => {
                go_int(raw).ok_or_else(|| Problem::at(path, format!("{raw} is not an integer")))
            }
            _ => Err(self.wrong_type(id, path, "an integer")),
        }
    }

    fn array(&self, id: NodeId, path: &Path<'_>) -> Result<&'d [NodeId], Problem> {
        match self.node(id) {
            Node::Array(items) => Ok(items),
            _ => Err(self.wrong_type(id, path, "an array")),
        }
    }

    fn string_array(&self, id: NodeId, path: &Path<'_>) -> R {
        for (i, &item) in self.array(id, path)?.iter().enumerate() {
            self.string(item, &path.index(i))?;
        }
        Ok(())
    }

    /// `null` where Docker and containerd take it (Go leaves the field at its zero value), else `check`.
    fn docker_null(&self, id: NodeId, check: impl FnOnce() -> R) -> R {
        if self.docker_nulls {
            self.or_null(id, check)
        } else {
            check()
        }
    }

    /// `oneOf: [<schema>, {type: null}]`.
    fn or_null(&self, id: NodeId, check: impl FnOnce() -> R) -> R {
        match self.node(id) {
            Node::Null => Ok(()),
            _ => check(),
        }
    }

    fn media_type(&self, id: NodeId, path: &Path<'_>) -> R {
        let s = self.string(id, path)?;
        if is_media_type(s) {
            Ok(())
        } else {
            Err(Problem::at(
                path,
                format!(
                    "{} is not a valid media type (type/subtype, each starting with a letter or digit, at most 127 of A-Za-z0-9!#$&^_.+-)",
                    quote(s)
                ),
            ))
        }
    }

    fn digest(&self, id: NodeId, path: &Path<'_>) -> R {
        let s = self.string(id, path)?;
        if is_digest_pattern(s) {
            Ok(())
        } else {
            Err(Problem::at(
                path,
                format!(
                    "{} is not a valid digest (algorithm:encoded, lowercase algorithm)",
                    quote(s)
                ),
            ))
        }
    }

    fn urls(&self, id: NodeId, path: &Path<'_>) -> R {
        for (i, &item) in self.array(id, path)?.iter().enumerate() {
            let p = path.index(i);
            let s = self.string(item, &p)?;
            check_uri(s).map_err(|e| {
                Problem::at(&p, format!("{} is not an absolute URI: {e}", quote(s)))
            })?;
        }
        Ok(())
    }

    fn map_of(&self, id: NodeId, path: &Path<'_>, want_object: bool) -> R {
        for (k, v) in self.object(id, path, &[])? {
            if !pattern_key(k) {
                continue;
            }
            let p = path.key(k);
            if want_object {
                if !matches!(self.node(v), Node::Object(_)) {
                    return Err(self.wrong_type(v, &p, "an object"));
                }
            } else {
                self.string(v, &p)?;
            }
        }
        Ok(())
    }

    /// `defs.json#/definitions/mapStringString` (annotations, labels).
    fn map_string_string(&self, id: NodeId, path: &Path<'_>) -> R {
        self.map_of(id, path, false)
    }

    /// `defs.json#/definitions/mapStringObject` (exposed ports, volumes).
    fn map_string_object(&self, id: NodeId, path: &Path<'_>) -> R {
        self.map_of(id, path, true)
    }

    fn schema_version(&self, id: NodeId, path: &Path<'_>) -> R {
        let v = self.integer(id, path)?;
        if v == 2 {
            Ok(())
        } else {
            Err(Problem::at(path, format!("must be 2, got {v}")))
        }
    }

    /// `content-descriptor.json`.
    pub(crate) fn descriptor(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["mediaType", "size", "digest"])? {
            let p = path.key(k);
            match k {
                "mediaType" | "artifactType" => self.media_type(v, &p)?,
                "size" => {
                    let size = self.integer(v, &p)?;
                    if size < 0 {
                        return Err(Problem::at(&p, format!("{size} is negative")));
                    }
                }
                "digest" => self.digest(v, &p)?,
                "urls" => self.urls(v, &p)?,
                "data" => {
                    self.string(v, &p)?;
                }
                "annotations" => self.map_string_string(v, &p)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `image-manifest-schema.json`.
    pub(crate) fn manifest(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["schemaVersion", "config", "layers"])? {
            let p = path.key(k);
            match k {
                "schemaVersion" => self.schema_version(v, &p)?,
                "mediaType" | "artifactType" => self.media_type(v, &p)?,
                "config" | "subject" => self.descriptor(v, &p)?,
                "layers" => {
                    let layers = self.array(v, &p)?;
                    if layers.is_empty() {
                        return Err(Problem::at(&p, "must hold at least one layer".to_string()));
                    }
                    for (i, &layer) in layers.iter().enumerate() {
                        self.descriptor(layer, &p.index(i))?;
                    }
                }
                "annotations" => self.map_string_string(v, &p)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `image-index-schema.json`.
    pub(crate) fn index(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["schemaVersion", "manifests"])? {
            let p = path.key(k);
            match k {
                "schemaVersion" => self.schema_version(v, &p)?,
                "mediaType" | "artifactType" => self.media_type(v, &p)?,
                "subject" => self.descriptor(v, &p)?,
                "manifests" => {
                    for (i, &m) in self.array(v, &p)?.iter().enumerate() {
                        self.manifest_descriptor(m, &p.index(i))?;
                    }
                }
                "annotations" => self.map_string_string(v, &p)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The index's `manifests[]` items: a descriptor whose size may be any int64, plus `platform`.
    fn manifest_descriptor(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["mediaType", "size", "digest"])? {
            let p = path.key(k);
            match k {
                "mediaType" => self.media_type(v, &p)?,
                "size" => {
                    self.integer(v, &p)?;
                }
                "digest" => self.digest(v, &p)?,
                "urls" => self.urls(v, &p)?,
                "platform" => self.platform(v, &p)?,
                "annotations" => self.map_string_string(v, &p)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn platform(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["architecture", "os"])? {
            let p = path.key(k);
            match k {
                "architecture" | "os" | "os.version" | "variant" => {
                    self.string(v, &p)?;
                }
                "os.features" => self.string_array(v, &p)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// `image-layout-schema.json`.
    pub(crate) fn layout(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["imageLayoutVersion"])? {
            if k == "imageLayoutVersion" {
                let p = path.key(k);
                let s = self.string(v, &p)?;
                if s != "1.0.0" {
                    return Err(Problem::at(
                        &p,
                        format!("must be \"1.0.0\", got {}", quote(s)),
                    ));
                }
            }
        }
        Ok(())
    }

    /// `config-schema.json`.
    pub(crate) fn config(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["architecture", "os", "rootfs"])? {
            let p = path.key(k);
            match k {
                // The platform and the layer list stay strict: they decide what the image is.
                "architecture" | "os" => {
                    self.string(v, &p)?;
                }
                "created" | "author" | "variant" | "os.version" => {
                    self.docker_null(v, || self.string(v, &p).map(|_| ()))?;
                }
                "os.features" => self.docker_null(v, || self.string_array(v, &p))?,
                "config" => self.docker_null(v, || self.container_config(v, &p))?,
                "rootfs" => self.rootfs(v, &p)?,
                "history" => self.docker_null(v, || {
                    for (i, &h) in self.array(v, &p)?.iter().enumerate() {
                        self.history(h, &p.index(i))?;
                    }
                    Ok(())
                })?,
                _ => {}
            }
        }
        Ok(())
    }

    fn container_config(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &[])? {
            let p = path.key(k);
            match k {
                "User" | "WorkingDir" | "StopSignal" => {
                    self.docker_null(v, || self.string(v, &p).map(|_| ()))?;
                }
                "ExposedPorts" => self.docker_null(v, || self.map_string_object(v, &p))?,
                "Env" => self.docker_null(v, || self.string_array(v, &p))?,
                "Entrypoint" | "Cmd" => self.or_null(v, || self.string_array(v, &p))?,
                "Volumes" => self.or_null(v, || self.map_string_object(v, &p))?,
                "Labels" => self.or_null(v, || self.map_string_string(v, &p))?,
                "ArgsEscaped" => self.docker_null(v, || self.boolean(v, &p))?,
                _ => {}
            }
        }
        Ok(())
    }

    fn rootfs(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &["diff_ids", "type"])? {
            let p = path.key(k);
            match k {
                "diff_ids" => self.string_array(v, &p)?,
                "type" => {
                    let s = self.string(v, &p)?;
                    if s != "layers" {
                        return Err(Problem::at(
                            &p,
                            format!("must be \"layers\", got {}", quote(s)),
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn history(&self, id: NodeId, path: &Path<'_>) -> R {
        for (k, v) in self.object(id, path, &[])? {
            let p = path.key(k);
            match k {
                "created" | "author" | "created_by" | "comment" => {
                    self.docker_null(v, || self.string(v, &p).map(|_| ()))?;
                }
                "empty_layer" => self.docker_null(v, || self.boolean(v, &p))?,
                _ => {}
            }
        }
        Ok(())
    }
}
