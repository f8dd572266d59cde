//! The Dockerfile commands: `parse` (dump the parse tree) and `lint` (build checks and
//! best-practice rules, as text, JSON or SARIF).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use layerwright::names;
use layerwright::store::Store;
use lw_dockerfile::lint::{self, BaseImage, LintOptions, Severity};
use lw_dockerfile::model::{ModelOptions, Platform};
use lw_dockerfile::parser::{self, Node};
use serde_json::{json, Value};

#[derive(Args)]
pub struct ParseArgs {
    /// Name of the Dockerfile (`-` reads standard input)
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: String,
    /// Print BuildKit's AST dump (the default)
    #[arg(long, conflicts_with = "json")]
    dump: bool,
    /// Print the parse tree as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
    Sarif,
}

/// The least severe finding that makes `lint` exit with 1 (hadolint's `--failure-threshold`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailureThreshold {
    Error,
    Warning,
    Info,
    /// hadolint's level below info; no rule of ours has it, so it acts as `info`.
    Style,
    /// hadolint's lowest level; acts as `info`.
    Ignore,
    /// Never exit 1 for findings (BuildKit's hard errors still do).
    None,
}

impl FailureThreshold {
    /// Whether a finding of `severity` fails the run.
    fn fails(self, severity: Severity) -> bool {
        match self {
            FailureThreshold::Error => severity >= Severity::Error,
            FailureThreshold::Warning => severity >= Severity::Warning,
            FailureThreshold::Info | FailureThreshold::Style | FailureThreshold::Ignore => true,
            FailureThreshold::None => false,
        }
    }
}

#[derive(Args)]
pub struct LintArgs {
    /// Name of the Dockerfile (`-` reads standard input)
    #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
    file: String,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: LintFormat,
    /// Set a build-time variable (KEY=VALUE; KEY alone is ignored)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// The stage to check as the final one
    #[arg(long)]
    target: Option<String>,
    /// Target platform (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// Build context directory, for .dockerignore checks (default: the Dockerfile's directory)
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
    /// Rules to skip (repeatable or comma-separated)
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Enable experimental BuildKit checks
    #[arg(long)]
    experimental: bool,
    /// Only run BuildKit's build checks, not Layerwright's best-practice rules
    #[arg(long)]
    buildkit_only: bool,
    /// Apply machine-applicable fixes to the file, then report what remains
    #[arg(long)]
    fix: bool,
    /// Exit 1 when a finding is at least this severe. The default, info, fails on every
    /// finding, as hadolint's default does and as `docker build --check` fails on any
    /// warning of BuildKit's checks; `warning` lets info findings pass, `error` only
    /// errors, `none` never (a Dockerfile BuildKit refuses still exits 1)
    #[arg(
        short = 't',
        long,
        value_enum,
        default_value = "info",
        value_name = "LEVEL"
    )]
    failure_threshold: FailureThreshold,
    /// Rules whose findings are errors, ours included (repeatable or comma-separated)
    #[arg(long = "error", value_delimiter = ',', value_name = "RULE")]
    error_rules: Vec<String>,
    /// Do not read base images' config from the store (use the built-in table)
    #[arg(long)]
    no_store: bool,
}

/// What `lint` found, so that `main` can exit with 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintOutcome {
    /// No finding reaches `--failure-threshold`.
    Pass,
    /// At least one finding does.
    Fail,
}

fn read_input(file: &str) -> Result<Vec<u8>> {
    if file == "-" {
        let mut buf = Vec::new();
        io::stdin()
            .read_to_end(&mut buf)
            .context("reading the Dockerfile from stdin")?;
        return Ok(buf);
    }
    std::fs::read(file).with_context(|| format!("reading {file}"))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn node_json(n: &Node) -> Value {
    json!({
        "keyword": n.keyword(),
        "value": lossy(&n.value),
        "flags": n.flags_lossy(),
        "args": n.args_lossy(),
        "json": n.json,
        "start_line": n.start_line,
        "end_line": n.end_line,
        "start_column": n.span.start.column,
        "end_column": n.span.end.column,
        "original": n.original_lossy(),
        "comments": n.prev_comment.iter().map(|c| lossy(c)).collect::<Vec<_>>(),
        "heredocs": n.heredocs.iter().map(|h| json!({
            "name": h.name,
            "content": lossy(&h.content),
            "expand": h.expand,
            "chomp": h.chomp,
            "file_descriptor": h.file_descriptor,
        })).collect::<Vec<_>>(),
        "next": n.next.as_deref().map(node_json),
    })
}

/// `layerwright parse`: prints the AST dump (default or `--dump`) or JSON (`--json`).
pub fn parse(a: ParseArgs) -> Result<()> {
    let src = read_input(&a.file)?;
    let df = parser::parse(&src).map_err(|e| anyhow::anyhow!("{}:{e}", a.file))?;
    let mut out = io::stdout().lock();
    if a.json {
        let v = json!({
            "escape": (df.directives.escape as char).to_string(),
            "directives": df.directives.parsed.iter().map(|d| json!({
                "name": d.name, "value": d.value, "line": d.line,
            })).collect::<Vec<_>>(),
            "children": df.children.iter().map(node_json).collect::<Vec<_>>(),
            "warnings": df.warnings.iter().map(|w| json!({
                "short": w.short, "detail": w.detail, "url": w.url, "line": w.line,
            })).collect::<Vec<_>>(),
        });
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        let _ = a.dump; // the dump is also the default
        out.write_all(parser::dump(&df).as_bytes())?;
    }
    Ok(())
}

fn options(a: &LintArgs) -> Result<LintOptions> {
    let mut model = ModelOptions::default();
    for kv in &a.build_args {
        if let Some((k, v)) = kv.split_once('=') {
            model.build_args.insert(k.to_string(), v.to_string());
        }
    }
    model.target = a.target.clone();
    if let Some(p) = &a.platform {
        model.target_platform = Some(Platform::parse(p)?);
    }
    let mut opts = LintOptions {
        model,
        skip: a.skip.clone(),
        experimental: a.experimental,
        buildkit_only: a.buildkit_only,
        error_rules: a.error_rules.clone(),
        ..LintOptions::default()
    };
    let context = match &a.context {
        Some(c) => Some(c.clone()),
        None if a.file == "-" => None,
        None => Some(
            Path::new(&a.file)
                .parent()
                .map(|p| {
                    if p.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        p
                    }
                })
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        ),
    };
    if let Some(dir) = context.filter(|d| d.is_dir()) {
        // BuildKit prefers <Dockerfile>.dockerignore next to the Dockerfile.
        let specific = (a.file != "-").then(|| PathBuf::from(format!("{}.dockerignore", a.file)));
        let found = specific
            .into_iter()
            .chain(std::iter::once(dir.join(".dockerignore")))
            .find(|p| p.is_file());
        match found {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("reading {}", p.display()))?;
                opts.dockerignore = Some(text);
                opts.context_has_dockerignore = Some(true);
            }
            None => opts.context_has_dockerignore = Some(false),
        }
    }
    Ok(opts)
}

/// Reads the config (Env, User, WorkingDir) of every base image of the Dockerfile that
/// is in the store, as BuildKit's checks see it; says on stderr which ones are not, and
/// whether lint falls back to its built-in table for them. Never creates the store;
/// `None` (`--no-store`) reads nothing.
fn base_images(root: Option<&Path>, src: &[u8], opts: &mut LintOptions) {
    let Ok(df) = parser::parse(src) else { return };
    let Ok(model) = lw_dockerfile::model::Model::build(&df, &opts.model) else {
        return;
    };
    let store = root
        .filter(|r| r.join("index.json").is_file())
        .and_then(|r| Store::open(r).ok());
    let platform = opts
        .model
        .target_platform
        .as_ref()
        .and_then(|p| lw_oci::Platform::parse(&p.to_string()).ok());
    let stage_names: Vec<&str> = model
        .stages
        .iter()
        .filter_map(|s| s.name.as_deref())
        .collect();
    for stage in &model.stages {
        let name = stage.base_name.as_str();
        let lower = name.to_ascii_lowercase();
        if name.is_empty()
            || lower == "scratch"
            || stage_names.contains(&lower.as_str())
            || opts.base_images.contains_key(name)
        {
            continue;
        }
        let found = store.as_ref().and_then(|st| {
            let f = names::resolve(st, name).ok()?;
            let img = st.resolve(&f.descriptor, platform.as_ref()).ok()?;
            Some((f.descriptor.digest.to_string(), img))
        });
        match found {
            Some((digest, img)) => {
                let c = &img.config.config;
                let env = c.env.clone().unwrap_or_default();
                // The digest lets LW001/LW002 pin FROM to the image in the store.
                let b = BaseImage::from_config(&env, c.user.as_deref(), c.working_dir.as_deref())
                    .with_digest(digest);
                opts.base_images.insert(name.to_string(), b);
            }
            None if lint::has_fallback(name) => eprintln!(
                "note: base image {name} is not in the store: lint used its built-in table of that image's config"
            ),
            None => eprintln!(
                "note: base image {name} is not in the store: lint does not know its Env, User and WorkingDir"
            ),
        }
    }
}

/// `layerwright lint`: prints findings; returns [`LintOutcome::Fail`] when a finding
/// reaches `--failure-threshold` (main then exits with status 1).
pub fn lint(root: &Path, a: LintArgs) -> Result<LintOutcome> {
    let mut src = read_input(&a.file)?;
    let mut opts = options(&a)?;
    base_images((!a.no_store).then_some(root), &src, &mut opts);
    let name = if a.file == "-" {
        "Dockerfile"
    } else {
        a.file.as_str()
    };
    let mut findings = lint::lint(&src, &opts).map_err(|e| anyhow::anyhow!("{name}:{e}"))?;
    if a.fix {
        if a.file == "-" {
            bail!("--fix needs a file, not standard input");
        }
        // Overlapping edits are dropped by apply_fixes; a few rounds converge.
        for _ in 0..5 {
            if !findings.iter().any(|f| f.fix.is_some()) {
                break;
            }
            src = lint::apply_fixes(&src, &findings);
            findings = lint::lint(&src, &opts).map_err(|e| anyhow::anyhow!("{name}:{e}"))?;
        }
        write_keeping_mode(Path::new(&a.file), &src)?;
    }
    let mut out = io::stdout().lock();
    match a.format {
        LintFormat::Text => out.write_all(lint::format_text(&findings, name).as_bytes())?,
        LintFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &findings)?;
            writeln!(out)?;
        }
        LintFormat::Sarif => {
            serde_json::to_writer_pretty(&mut out, &lint::to_sarif(&findings, name))?;
            writeln!(out)?;
        }
    }
    Ok(
        if findings
            .iter()
            .any(|f| f.is_hard_error() || a.failure_threshold.fails(f.severity))
        {
            LintOutcome::Fail
        } else {
            LintOutcome::Pass
        },
    )
}

/// `--fix` rewrites the Dockerfile atomically (a crash leaves the old or the new file,
/// never half of one) and keeps its permissions.
fn write_keeping_mode(path: &Path, bytes: &[u8]) -> Result<()> {
    let path =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let perms = std::fs::metadata(&path).map(|m| m.permissions()).ok();
    layerwright::store::write_atomic(&path, bytes)?;
    if let Some(p) = perms {
        std::fs::set_permissions(&path, p)
            .with_context(|| format!("restoring the mode of {}", path.display()))?;
    }
    Ok(())
}
