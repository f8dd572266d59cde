//! Errors BuildKit stops the build on although the parser accepts the file: a failed
//! variable expansion (`${a:b}`, an unterminated quote in an ENV or ADD value) and a
//! base image name that is not a valid reference (`FROM REPLACE-ME`). Each becomes an
//! error finding with BuildKit's message, so `lint` exits 1 where `docker build
//! --check` fails.

use super::context::{go_quote, Ctx};
use super::{baseimg, reference, Finding, Range, Severity};
use crate::model::{BaseRef, Instruction};

/// The rule id of BuildKit's hard errors (also used for refused instructions).
pub(crate) const RULE: &str = "InvalidInstruction";

pub(crate) fn finding(range: Range, message: String) -> Finding {
    Finding {
        rule: RULE.into(),
        name: RULE.into(),
        severity: Severity::Error,
        range,
        message,
        documentation: "https://docs.docker.com/reference/dockerfile/".into(),
        fix: None,
    }
}

pub(crate) fn run(cx: &mut Ctx) {
    let model = cx.model;
    let all = model.global_instructions.iter().chain(
        model
            .stages
            .iter()
            .flat_map(|s| std::iter::once(&s.from).chain(&s.instructions)),
    );
    let mut out = Vec::new();
    for ins in all {
        if let Some(e) = &ins.error {
            out.push(finding(range(cx, ins), e.clone()));
        }
    }
    for stage in &model.stages {
        if stage.from.error.is_some() {
            continue;
        }
        if let BaseRef::Image(name) = baseimg::base_of(stage) {
            if let Some(e) = normalized_name_error(&name) {
                let msg = format!("failed to parse stage name {}: {e}", go_quote(&name));
                out.push(finding(range(cx, &stage.from), msg));
            }
        }
    }
    cx.findings.extend(out);
}

fn range(cx: &Ctx, ins: &Instruction) -> Range {
    cx.node_range(&cx.df.children[ins.node])
}

/// The error of distribution/reference's `ParseNormalizedNamed`, which BuildKit runs on
/// every base image name.
pub(crate) fn normalized_name_error(s: &str) -> Option<String> {
    if s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Some(format!(
            "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = remainder.split(':').next().unwrap_or("");
    if remote.to_lowercase() != remote {
        return Some(format!(
            "invalid reference format: repository name ({remote}) must be lowercase"
        ));
    }
    (!reference::is_valid(&format!("{domain}/{remainder}")))
        .then(|| "invalid reference format".to_string())
}

/// distribution/reference's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, mut remote) = match name.split_once('/') {
        None => ("docker.io".to_string(), name.to_string()),
        Some((d, r)) if d == "localhost" => (d.to_string(), r.to_string()),
        Some(("index.docker.io", r)) => ("docker.io".to_string(), r.to_string()),
        Some((d, r)) if d.contains(['.', ':']) || d.to_lowercase() != d => {
            (d.to_string(), r.to_string())
        }
        Some(_) => ("docker.io".to_string(), name.to_string()),
    };
    if domain == "docker.io" && !remote.contains('/') {
        remote = format!("library/{remote}");
    }
    (domain, remote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_names() {
        assert_eq!(
            normalized_name_error("REPLACE-ME").as_deref(),
            Some(
                "invalid reference format: repository name (library/REPLACE-ME) must be lowercase"
            )
        );
        assert_eq!(
            normalized_name_error("Example.com/Img:1").as_deref(),
            Some("invalid reference format: repository name (Img) must be lowercase")
        );
        assert_eq!(normalized_name_error("ghcr.io/a/b:1.0"), None);
        assert_eq!(normalized_name_error("localhost:5000/x"), None);
        assert_eq!(
            normalized_name_error("a b").as_deref(),
            Some("invalid reference format")
        );
    }
}
