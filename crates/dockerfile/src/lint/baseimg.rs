//! The base image of a stage and what lint knows of its config (`Env`, `User`,
//! `WorkingDir`): the caller's real config when it has the image, else a built-in
//! table of popular images, flagged as a fallback.

use std::borrow::Cow;

use super::context::Ctx;
use super::{reference, BaseImage};
use crate::model::{BaseRef, Instruction, Stage};
use crate::parser::Node;
use crate::shell::{EnvList, Lexer};

/// The stage's base as BuildKit resolves it: a name refers to an *earlier* stage
/// only, so `FROM gcc AS gcc` (or a name defined later) is an image.
pub(crate) fn base_of(stage: &Stage) -> BaseRef {
    match &stage.base {
        BaseRef::Stage(p) if *p >= stage.index => BaseRef::Image(stage.base_name.clone()),
        b => b.clone(),
    }
}

/// The stage this one is built on, if it is a stage of this Dockerfile.
pub(crate) fn parent<'m>(cx: &Ctx<'m>, stage: &Stage) -> Option<&'m Stage> {
    match base_of(stage) {
        BaseRef::Stage(p) => cx.model.stages.get(p),
        _ => None,
    }
}

/// The image at the root of the stage's chain of stage bases (`None` for scratch or
/// a chain that does not end in an image).
pub(crate) fn root_image(cx: &Ctx, stage: &Stage) -> Option<String> {
    let mut cur = stage;
    for _ in 0..=cx.model.stages.len() {
        match base_of(cur) {
            BaseRef::Image(img) => return Some(img),
            BaseRef::Stage(_) => cur = parent(cx, cur)?,
            _ => return None,
        }
    }
    None
}

/// Whether the stage's chain ends in `scratch`.
pub(crate) fn root_is_scratch(cx: &Ctx, stage: &Stage) -> bool {
    let mut cur = stage;
    for _ in 0..=cx.model.stages.len() {
        match base_of(cur) {
            BaseRef::Scratch => return true,
            BaseRef::Stage(_) => match parent(cx, cur) {
                Some(p) => cur = p,
                None => return false,
            },
            _ => return false,
        }
    }
    false
}

/// A base image's config and whether it came from the built-in table.
pub(crate) struct Known<'a> {
    pub image: Cow<'a, BaseImage>,
    pub fallback: bool,
    /// Whether `image.env` is the image's whole Env (real config, or a distro base
    /// whose Env is only PATH).
    pub complete: bool,
}

/// What is known of the config of the image the stage is built on.
pub(crate) fn config<'a>(cx: &Ctx<'a>, stage: &Stage) -> Option<Known<'a>> {
    let img = root_image(cx, stage)?;
    let name = reference::split(&img).name;
    for key in [img.as_str(), name] {
        if let Some(b) = cx.options.base_images.get(key) {
            return Some(Known {
                image: Cow::Borrowed(b),
                fallback: false,
                complete: true,
            });
        }
    }
    let short = name.rsplit('/').next().unwrap_or(name);
    let complete = PATH_ONLY.contains(&short) && !name.contains('.');
    fallback(&img)
        .or_else(|| complete.then(BaseImage::default))
        .map(|image| Known {
            image: Cow::Owned(image),
            fallback: true,
            complete,
        })
}

/// A WORKDIR's path as BuildKit evaluates it, with the base image's env: `None` when
/// it uses an unset variable and the base image's real Env is not known.
pub(crate) fn workdir_path(
    cx: &Ctx,
    stage: &Stage,
    ins: &Instruction,
    node: &Node,
) -> Option<String> {
    let written = ins.words.first().cloned().unwrap_or_default();
    if ins.unmatched.is_empty() {
        return Some(written);
    }
    // Without the base image's real Env, an unset variable may come from it.
    let known = config(cx, stage).filter(|k| k.complete);
    let Some(known) = known else {
        return root_image(cx, stage).is_none().then_some(written);
    };
    let from_base = |n: &String| known.image.env.iter().any(|(k, _)| k == n);
    if !ins.unmatched.iter().any(from_base) {
        return Some(written);
    }
    let mut env = EnvList::new();
    for (k, v) in known.image.env.iter().cloned().chain(ins.scope.run_env()) {
        env.push(k, v);
    }
    let raw = node.args_lossy().into_iter().next().unwrap_or_default();
    Lexer::new(cx.df.escape() as char)
        .process_word(&raw, &env)
        .ok()
}

/// Distribution base images whose config's Env is only PATH.
const PATH_ONLY: &[&str] = &[
    "alpine",
    "debian",
    "ubuntu",
    "busybox",
    "fedora",
    "centos",
    "rockylinux",
    "almalinux",
    "amazonlinux",
    "archlinux",
    "oraclelinux",
];

/// Whether the built-in table knows anything of `image`.
pub fn has_fallback(image: &str) -> bool {
    let name = reference::split(image).name;
    fallback(image).is_some() || PATH_ONLY.contains(&name.rsplit('/').next().unwrap_or(name))
}

/// The built-in stand-in for an image's config: env names (values unknown) of popular
/// official images, the non-root user of distroless `nonroot` tags, and Jupyter's
/// docker-stacks images (which end with `USER ${NB_UID}`, 1000).
fn fallback(image: &str) -> Option<BaseImage> {
    let r = reference::split(image);
    let short = r.name.rsplit('/').next().unwrap_or(r.name);
    let jupyter = (r.name.starts_with("jupyter/") || r.name.contains("/jupyter/"))
        && (short.ends_with("-notebook") || short == "docker-stacks-foundation");
    let env = KNOWN_IMAGE_ENV
        .iter()
        .find(|(k, _)| *k == short || (jupyter && *k == "jupyter"));
    let distroless = r.name.contains("distroless/");
    let nonroot = distroless
        && r.tag
            .is_some_and(|t| t == "nonroot" || t.ends_with("-nonroot"));
    if env.is_none() && !nonroot {
        return None;
    }
    let user = if nonroot {
        Some("nonroot".to_string())
    } else {
        jupyter.then(|| "1000".to_string())
    };
    Some(BaseImage {
        env: env
            .map(|(_, v)| v.iter().map(|k| (k.to_string(), String::new())).collect())
            .unwrap_or_default(),
        user,
        working_dir: None,
        digest: None,
    })
}

/// Environment names of popular official images, used by `UndefinedVar` when the
/// caller did not give the base image's configuration.
const KNOWN_IMAGE_ENV: &[(&str, &[&str])] = &[
    ("node", &["NODE_VERSION", "YARN_VERSION"]),
    // Jupyter docker-stacks (quay.io/jupyter/*-notebook, docker-stacks-foundation).
    (
        "jupyter",
        &[
            "CONDA_DIR",
            "SHELL",
            "NB_USER",
            "NB_UID",
            "NB_GID",
            "HOME",
            "LANG",
            "PATH",
        ],
    ),
    (
        "python",
        &["LANG", "GPG_KEY", "PYTHON_VERSION", "PYTHON_SHA256"],
    ),
    ("golang", &["GOLANG_VERSION", "GOTOOLCHAIN", "GOPATH"]),
    ("rust", &["RUSTUP_HOME", "CARGO_HOME", "RUST_VERSION"]),
    (
        "ruby",
        &[
            "LANG",
            "RUBY_VERSION",
            "RUBY_DOWNLOAD_SHA256",
            "GEM_HOME",
            "BUNDLE_SILENCE_ROOT_WARNING",
            "BUNDLE_APP_CONFIG",
        ],
    ),
    ("openjdk", &["JAVA_HOME", "JAVA_VERSION", "LANG"]),
    (
        "eclipse-temurin",
        &["JAVA_HOME", "JAVA_VERSION", "LANG", "LANGUAGE", "LC_ALL"],
    ),
    (
        "nginx",
        &[
            "NGINX_VERSION",
            "NJS_VERSION",
            "NJS_RELEASE",
            "PKG_RELEASE",
            "DYNPKG_RELEASE",
        ],
    ),
    (
        "php",
        &[
            "PHPIZE_DEPS",
            "PHP_INI_DIR",
            "PHP_VERSION",
            "PHP_URL",
            "PHP_SHA256",
            "PHP_CFLAGS",
            "PHP_CPPFLAGS",
            "PHP_LDFLAGS",
            "GPG_KEYS",
            "PHP_ASC_URL",
        ],
    ),
    (
        "httpd",
        &[
            "HTTPD_PREFIX",
            "HTTPD_VERSION",
            "HTTPD_SHA256",
            "HTTPD_PATCHES",
        ],
    ),
    (
        "postgres",
        &["PGDATA", "PG_MAJOR", "PG_VERSION", "LANG", "GOSU_VERSION"],
    ),
];
