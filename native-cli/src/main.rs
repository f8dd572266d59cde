//! `layerwright`: docker-style commands over the Layerwright core and the on-disk store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd_build;
mod cmd_image;

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
    /// List images
    Images(cmd_image::ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(cmd_image::TagArgs),
    /// Remove one or more images
    Rmi(cmd_image::RmiArgs),
    /// Remove unused images and blobs
    Prune(cmd_image::PruneArgs),
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
    let cli = Cli::parse();
    let root = cli
        .root
        .clone()
        .unwrap_or_else(layerwright::store::Store::default_root);
    let result = match cli.command {
        Command::Images(a)
        | Command::Image {
            command: ImageCommand::Ls(a),
        } => cmd_image::images(&root, a),
        Command::Build(a) => cmd_build::build(&root, a),
        Command::Tag(a) => cmd_image::tag(&root, a),
        Command::Rmi(a)
        | Command::Image {
            command: ImageCommand::Rm(a),
        } => cmd_image::rmi(&root, a),
        Command::Prune(a)
        | Command::Image {
            command: ImageCommand::Prune(a),
        } => cmd_image::prune(&root, a),
        Command::Inspect(a) => cmd_image::inspect(&root, a),
        Command::History(a) => cmd_image::history(&root, a),
        Command::Save(a) => cmd_image::save(&root, a),
        Command::Load(a) => cmd_image::load(&root, a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
