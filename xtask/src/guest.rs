//! `xtask guest`: the small Linux the tab runs RUN steps in (issue #20). Debian bookworm i386 packages (the kernel,
//! busybox-static, SeaBIOS) are downloaded with a private apt state, so the machine's apt and dpkg configuration
//! stay untouched; an initramfs is made from our init (`xtask/guest/init.sh`), busybox and the 9p/virtio modules;
//! licences and a sources page go beside them; then `guest/boot.mjs` boots it once under node with v86 and saves
//! the booted state (zstd), so pages restore it instead of cold booting. The linux/386 busybox image the tab's
//! `FROM busybox` uses is written as an OCI layout by `guest_image`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Debian suite and the i386 packages the guest is made of.
const SUITE: &str = "bookworm";
const PACKAGES: &[&str] = &["linux-image-686", "busybox-static", "seabios"];

/// The kernel modules the 9p root needs, in load order (dependencies first; from their `depends=` fields).
pub const MODULES: &[&str] = &[
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "net/9p/9pnet",
    "net/9p/9pnet_virtio",
    "fs/netfs/netfs",
    "fs/fscache/fscache",
    "fs/9p/9p",
];

/// The kernel command line: the console on the serial port, the messages quiet (they would interleave with the
/// command's output).
pub const CMDLINE: &str =
    "console=ttyS0 loglevel=1 quiet tsc=reliable mitigations=off random.trust_cpu=on";

/// Where downloads and extracted packages are kept between builds (outside the checkout).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("LAYERWRIGHT_GUEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/layerwright-guest"))
}

fn run(c: &mut Command) -> Result<()> {
    eprintln!("xtask: running {c:?}");
    let st = c.status().with_context(|| format!("starting {c:?}"))?;
    if !st.success() {
        bail!("{c:?} failed ({st})");
    }
    Ok(())
}

/// apt options that keep every piece of state under `dir`.
fn apt_options(dir: &Path) -> Vec<String> {
    let d = dir.display();
    [
        format!("Dir::Etc={d}/etc"),
        format!("Dir::Etc::sourcelist={d}/etc/sources.list"),
        "Dir::Etc::sourceparts=-".into(),
        format!("Dir::Etc::preferencesparts={d}/etc/preferences.d"),
        format!("Dir::Etc::parts={d}/etc/apt.conf.d"),
        format!("Dir::State={d}/state"),
        format!("Dir::State::status={d}/dpkg-status"),
        format!("Dir::Cache={d}/cache"),
        "APT::Architecture=i386".into(),
        "APT::Architectures=i386".into(),
        "Debug::NoLocking=1".into(),
        // Downloads land in our own directory, which apt's sandbox user may not write.
        "APT::Sandbox::User=root".into(),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

/// Download the packages (and the kernel image `linux-image-686` depends on) into `cache/debs`; returns the .deb
/// files, one per package.
fn download(cache: &Path) -> Result<Vec<PathBuf>> {
    let apt = cache.join("apt");
    for d in ["etc/preferences.d", "etc/apt.conf.d", "state/lists/partial"] {
        fs::create_dir_all(apt.join(d))?;
    }
    fs::create_dir_all(apt.join("cache/archives/partial"))?;
    fs::write(
        apt.join("etc/sources.list"),
        format!(
            "deb [arch=i386 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian {SUITE} main\n"
        ),
    )?;
    if !apt.join("dpkg-status").exists() {
        fs::write(apt.join("dpkg-status"), "")?;
    }
    let opts = apt_options(&apt);
    let debs = cache.join("debs");
    fs::create_dir_all(&debs)?;
    let have = |prefix: &str| -> Result<Option<PathBuf>> {
        for e in fs::read_dir(&debs)? {
            let p = e?.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(&format!("{prefix}_")) && name.ends_with(".deb") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    // The versioned kernel package the meta package points at.
    let mut wanted: Vec<String> = PACKAGES.iter().map(|s| s.to_string()).collect();
    if PACKAGES.iter().any(|p| have(p).ok().flatten().is_none())
        || have("linux-image-6").ok().flatten().is_none()
    {
        run(Command::new("apt-get").args(&opts).args(["-q", "update"]))?;
        let out = Command::new("apt-cache")
            .args(&opts)
            .args(["depends", "linux-image-686"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let kernel = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Depends: "))
            .find(|d| d.starts_with("linux-image-"))
            .context("apt-cache depends linux-image-686 names no kernel image")?
            .to_string();
        wanted.push(kernel.clone());
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|p| have(p).ok().flatten().is_none())
            .collect();
        if !missing.is_empty() {
            run(Command::new("apt-get")
                .current_dir(&debs)
                .args(&opts)
                .args(["-q", "download"])
                .args(missing))?;
        }
    }
    let mut out = Vec::new();
    for e in fs::read_dir(&debs)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "deb") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// A .deb's control field.
fn deb_field(deb: &Path, field: &str) -> Result<String> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(deb)
        .arg(field)
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The guest's files, written into `out` (the site's `guest/` directory).
pub fn assemble(out: &Path) -> Result<()> {
    let cache = cache_dir();
    fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let debs = download(&cache)?;
    let root = cache.join("root");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root)?;
    let mut sources = String::new();
    for deb in &debs {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root))?;
        let (name, version) = (deb_field(deb, "Package")?, deb_field(deb, "Version")?);
        let source = deb_field(deb, "Source")?;
        let source = if source.is_empty() {
            name.clone()
        } else {
            source
        };
        sources.push_str(&format!(
            "<tr><td>{name}</td><td>{version}</td><td><a href=\"https://sources.debian.org/src/{src}/\">{src}</a> \
             (<code>apt-get source {src}</code>; snapshots at \
             <a href=\"https://snapshot.debian.org/package/{src}/\">snapshot.debian.org</a>)</td></tr>\n",
            src = source.split_whitespace().next().unwrap_or(&source)
        ));
    }
    fs::create_dir_all(out.join("licenses"))?;
    let vmlinuz = find_prefixed(&root.join("boot"), "vmlinuz-")?;
    let version = vmlinuz
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("vmlinuz-")
        .to_string();
    copy(&vmlinuz, &out.join("bzImage"))?;
    copy(
        &root.join("usr/share/seabios/bios.bin"),
        &out.join("seabios.bin"),
    )?;
    copy(
        &root.join("usr/share/seabios/vgabios-stdvga.bin"),
        &out.join("vgabios.bin"),
    )?;
    for doc in fs::read_dir(root.join("usr/share/doc"))? {
        let doc = doc?;
        let c = doc.path().join("copyright");
        if c.is_file() {
            let name = format!("{}.txt", doc.file_name().to_string_lossy());
            copy(&c, &out.join("licenses").join(name))?;
        }
    }
    let busybox = fs::read(root.join("bin/busybox"))?;
    let mut cpio = crate::guest_cpio::Cpio::default();
    for d in [
        "bin",
        "dev",
        "proc",
        "sys",
        "mnt",
        "tmp",
        "lib",
        "lib/modules",
    ] {
        cpio.dir(d, 0o755);
    }
    // The kernel opens /dev/console for init before anything is mounted.
    cpio.char_device("dev/console", 0o600, 5, 1);
    cpio.file("init", 0o755, include_bytes!("../guest/init.sh"));
    cpio.file("bin/busybox", 0o755, &busybox);
    let mods = root.join("lib/modules").join(&version).join("kernel");
    for m in MODULES {
        let data = fs::read(mods.join(format!("{m}.ko")))
            .with_context(|| format!("kernel module {m} of {version}"))?;
        let base = m.rsplit('/').next().unwrap();
        cpio.file(&format!("lib/modules/{base}.ko"), 0o644, &data);
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&cpio.finish())?;
    write_atomic(&out.join("initrd.img"), &gz.finish()?)?;
    fs::write(out.join("cmdline.txt"), CMDLINE)?;
    write_atomic(&out.join("sources.html"), sources_page(&sources).as_bytes())?;
    crate::guest_image::busybox_tar(&busybox, &out.join("busybox.tar"))?;
    // The extracted packages are only needed while assembling (disk is kept for the downloads).
    let _ = fs::remove_dir_all(&root);
    Ok(())
}

fn sources_page(rows: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n<title>Guest sources</title>\n\
         <h1>Where the tab's Linux comes from</h1>\n\
         <p>RUN steps in the tab run in a small Linux emulated by <a href=\"https://github.com/copy/v86\">v86</a> \
         (BSD-2-Clause, its licence is in <code>licenses/v86.txt</code>). The guest is made of these unmodified \
         Debian {SUITE} i386 binary packages plus our initramfs script; their licences are in \
         <code>licenses/</code>. The complete corresponding source of each is available from Debian, as below, and \
         on request from the site's operators.</p>\n\
         <table>\n<tr><th>package</th><th>version</th><th>source</th></tr>\n{rows}</table>\n</html>\n"
    )
}

fn find_prefixed(dir: &Path, prefix: &str) -> Result<PathBuf> {
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.file_name().unwrap().to_string_lossy().starts_with(prefix) {
            return Ok(p);
        }
    }
    bail!("no {prefix}* in {}", dir.display())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let data = fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    write_atomic(to, &data)
}

/// Write through a temporary file, fsync, rename.
pub fn write_atomic(to: &Path, data: &[u8]) -> Result<()> {
    let tmp = to.with_extension("tmp");
    let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    fs::rename(&tmp, to).with_context(|| format!("renaming to {}", to.display()))?;
    Ok(())
}

/// Assemble the guest into `out`, then boot it once under node (v86 from `www/node_modules`) and save the booted
/// state as `out/state.bin.zst`. The state is cached under the cache directory by the boot inputs' digest.
pub fn build(out: &Path) -> Result<()> {
    // dpkg-deb and apt-get come with Debian itself; zstd compresses the saved state.
    crate::deps::ensure_debian_packages(&[("zstd", "zstd")])?;
    fs::create_dir_all(out)?;
    assemble(out)?;
    let v86 = crate::repo_root().join("www/node_modules/v86");
    if !v86.join("build/libv86.mjs").is_file() {
        bail!("v86 is missing from www/node_modules: run npm install in www/");
    }
    copy(&v86.join("LICENSE"), &out.join("licenses/v86.txt"))?;
    // `.js`, not v86's `.mjs`: static servers that do not know `.mjs` would send it with a type browsers refuse
    // for a module.
    copy(&v86.join("build/libv86.mjs"), &out.join("libv86.js"))?;
    copy(&v86.join("build/v86.wasm"), &out.join("v86.wasm"))?;
    // The boot script sets the devices the saved state has (the page restores it with the same ones).
    let mut key = sha2_hex(include_bytes!("../guest/boot.mjs"));
    for f in [
        "bzImage",
        "initrd.img",
        "seabios.bin",
        "vgabios.bin",
        "cmdline.txt",
        "v86.wasm",
    ] {
        key = sha2_hex(&[key.as_bytes(), &fs::read(out.join(f))?].concat());
    }
    let cached = cache_dir().join(format!("state-{}.bin.zst", &key[..16]));
    if !cached.is_file() {
        let raw = out.join("state.bin");
        run(Command::new("node")
            .arg(crate::repo_root().join("xtask/guest/boot.mjs"))
            .arg(out)
            .arg(&raw))?;
        // -T0: the same bytes here (one job at this size), in 24 s instead of 34 s on 2 cores.
        run(Command::new("zstd")
            .args(["-q", "-f", "-19", "-T0", "--rm"])
            .arg(&raw)
            .arg("-o")
            .arg(&cached))?;
    }
    copy(&cached, &out.join("state.bin.zst"))?;
    Ok(())
}

/// `cargo xtask guest`: the guest into `www/guest/`, and into an existing `www/dist/guest/` (a quick refresh; a
/// deployable site comes from `cargo xtask build`, whose service worker's cache name covers the guest).
pub fn build_into_site() -> Result<()> {
    let www = crate::repo_root().join("www");
    build(&www.join("guest"))?;
    if www.join("dist").is_dir() {
        let to = www.join("dist/guest");
        fs::create_dir_all(to.join("licenses"))?;
        for dir in ["", "licenses"] {
            for e in fs::read_dir(www.join("guest").join(dir))? {
                let e = e?;
                if e.file_type()?.is_file() {
                    fs::copy(e.path(), to.join(dir).join(e.file_name()))?;
                }
            }
        }
    }
    Ok(())
}

fn sha2_hex(bytes: &[u8]) -> String {
    lw_oci::Digest::sha256_of(bytes).encoded().to_string()
}
