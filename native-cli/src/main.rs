//! `layerwright`: docker-style commands over the Layerwright core and the on-disk store.

// Functions stay under 100 lines of code (the project's rule; clippy counts without comments and blanks).
#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_build;
mod cmd_container;
mod cmd_dockerfile;
mod cmd_image;
mod cmd_proxy;
mod cmd_registry;
mod cmd_serve;

#[derive(Parser)]
#[command(
    name = "layerwright",
    version,
    about = "Build, inspect and ship container images without a daemon"
)]
struct Cli {
    /// Store directory (default: $XDG_DATA_HOME/layerwright)
    #[arg(long, global = true, value_name = "DIR", env = "LAYERWRIGHT_ROOT")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile
    Build(cmd_build::BuildArgs),
    /// Print a Dockerfile's syntax tree (BuildKit's dump format, or JSON)
    Parse(cmd_dockerfile::ParseArgs),
    /// Run build checks and best-practice rules on a Dockerfile
    Lint(cmd_dockerfile::LintArgs),
    /// Download an image from a registry
    Pull(cmd_registry::PullArgs),
    /// Upload an image to a registry
    Push(cmd_registry::PushArgs),
    /// Log in to a registry (stores credentials in docker's config.json)
    Login(cmd_registry::LoginArgs),
    /// Log out from a registry
    Logout(cmd_registry::LogoutArgs),
    /// Copy an image between registries and archives, keeping digests
    Copy(cmd_registry::CopyArgs),
    /// List the tags of a repository in a registry
    Ls(cmd_registry::RepoArgs),
    /// Print the raw manifest of a remote image
    Manifest(cmd_registry::RefArgs),
    /// Print the manifest digest of a remote image
    Digest(cmd_registry::RefArgs),
    /// List the repositories of a registry
    Catalog(cmd_registry::CatalogArgs),
    /// Serve the playground: the site, a registry over the store, a registry proxy and the RUN backend
    Serve(cmd_serve::ServeArgs),
    /// Run the public CORS gateway for OCI registries (read-only, cached, rate-limited)
    Proxy(cmd_proxy::ProxyArgs),
    /// List images
    Images(cmd_image::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd_image::TagArgs),
    /// Remove one or more images
    Rmi(cmd_image::RmiArgs),
    /// Remove unused images and blobs
    Prune(cmd_image::PruneArgs),
    /// Manage the build cache: `builder prune` removes RUN cache mounts and snapshots
    Builder {
        #[command(subcommand)]
        command: BuilderCommand,
    },
    /// Manage images (prune)
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Display detailed information on one or more images
    Inspect(cmd_image::InspectArgs),
    /// Show the history of an image
    History(cmd_image::HistoryArgs),
    /// Save one or more images to a tar archive (OCI layout + docker manifest.json)
    Save(cmd_image::SaveArgs),
    /// Load images from a tar archive (OCI or docker format) or STDIN
    Load(cmd_image::LoadArgs),
    /// Create and run a new container from an image (exit code: the container's; 125 for run's own errors)
    Run(cmd_container::RunArgs),
    /// Run a command in a running container
    Exec(cmd_container::ExecArgs),
    /// List containers
    Ps(cmd_container::PsArgs),
    /// Fetch the logs of a detached container
    Logs(cmd_container::LogsArgs),
    /// Stop one or more running containers (SIGTERM, then SIGKILL after -t seconds)
    Stop(cmd_container::StopArgs),
    /// Remove one or more containers
    Rm(cmd_container::RmArgs),
    /// Inspect changes to files or directories on a container's file system (A/C/D)
    Diff(cmd_container::DiffArgs),
    /// Create a new image from a container's changes
    Commit(cmd_container::CommitArgs),
    /// Internal: own a detached container until it exits
    #[command(hide = true)]
    ContainerMonitor(cmd_container::MonitorArgs),
}

#[derive(Subcommand)]
enum BuilderCommand {
    /// Remove RUN cache mounts (`--mount=type=cache`) and unpacked layer snapshots
    Prune(cmd_image::BuilderPruneArgs),
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Remove unused images and blobs
    Prune(cmd_image::PruneArgs),
    /// List images
    Ls(cmd_image::ImagesArgs),
    /// Remove one or more images
    Rm(cmd_image::RmiArgs),
}

fn main() -> ExitCode {
    layerwright::install_zstd_encoder();
    let cli = Cli::parse();
    let root = cli
        .root
        .clone()
        .unwrap_or_else(layerwright::store::Store::default_root);
    // A relative --root is made absolute once: RUN hands paths under it to the runtime from another directory.
    let root = std::path::absolute(&root).unwrap_or(root);
    // Where a full disk would stop this command: the file `save -o` writes, else the store.
    let writes_to = match &cli.command {
        Command::Save(a) => a.output.clone().unwrap_or_else(|| root.clone()),
        _ => root.clone(),
    };
    let result = match cli.command {
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => cmd_image::images(&root, a),
        Command::Build(a) => cmd_build::build(&root, a),
        Command::Parse(a) => cmd_dockerfile::parse(a),
        Command::Lint(a) => match cmd_dockerfile::lint(&root, a) {
            Ok(cmd_dockerfile::LintOutcome::Fail) => return ExitCode::from(1),
            Ok(cmd_dockerfile::LintOutcome::Pass) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Pull(a) => cmd_registry::pull(&root, a),
        Command::Push(a) => cmd_registry::push(&root, a),
        Command::Login(a) => cmd_registry::login(a),
        Command::Logout(a) => cmd_registry::logout(a),
        Command::Copy(a) => cmd_registry::copy(&root, a),
        Command::Ls(a) => cmd_registry::ls(a),
        Command::Manifest(a) => cmd_registry::manifest(a),
        Command::Digest(a) => cmd_registry::digest(a),
        Command::Catalog(a) => cmd_registry::catalog(a),
        Command::Serve(a) => cmd_serve::serve(&root, a),
        Command::Proxy(a) => cmd_proxy::proxy(a),
        Command::Tag(a) => cmd_image::tag(&root, a),
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => cmd_image::rmi(&root, a),
        Command::Prune(a)
        | Command::Image {
            command: ImageCommand::Prune(a),
        } => cmd_image::prune(&root, a),
        Command::Builder {
            command: BuilderCommand::Prune(a),
        } => cmd_image::builder_prune(&root, a),
        Command::Inspect(a) => cmd_image::inspect(&root, a),
        Command::History(a) => cmd_image::history(&root, a),
        Command::Save(a) => cmd_image::save(&root, a),
        Command::Load(a) => cmd_image::load(&root, a),
        Command::Run(a) => {
            return match cmd_container::run(&root, a) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    ExitCode::from(125)
                }
            }
        }
        Command::Exec(a) => {
            return match cmd_container::exec(&root, a) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    ExitCode::from(125)
                }
            }
        }
        Command::Ps(a) => cmd_container::ps(&root, a),
        Command::Logs(a) => cmd_container::logs(&root, a),
        Command::Stop(a) => cmd_container::stop(&root, a),
        Command::Rm(a) => cmd_container::rm(&root, a),
        Command::Diff(a) => cmd_container::diff(&root, a),
        Command::Commit(a) => cmd_container::commit(&root, a),
        Command::ContainerMonitor(a) => cmd_container::monitor(&root, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            if let Some(hint) = out_of_space(&e, &writes_to) {
                eprintln!("{hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The plain statement a full disk deserves, naming what could not be written: the cause alone ("No space left
/// on device (os error 28)") names neither. While pushing (`push`, the second half of `copy`) it is the registry
/// that is full; otherwise it is `writes_to`.
fn out_of_space(e: &anyhow::Error, writes_to: &std::path::Path) -> Option<String> {
    let full = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::ENOSPC))
            || c.to_string().contains("No space left on device")
    });
    if !full {
        return None;
    }
    if e.to_string().starts_with("pushing ") {
        return Some(
            "Error: the registry has no space left for this push; free some space on its side and push again"
                .to_string(),
        );
    }
    Some(format!(
        "Error: no space left on the device holding {}; free some space and run the command again",
        writes_to.display()
    ))
}
