//! Registry credentials from docker's `config.json` (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`)
//! and `docker-credential-*` helpers (`credsStore`, `credHelpers`): read, store and erase, for pulls, pushes and
//! the `login`/`logout` commands. Writes are atomic (temporary file, fsync, rename) and keep every field we do not
//! know about.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use lw_registry::Credentials;
use serde_json::{Map, Value};

/// The key docker uses for Docker Hub in `auths` and credential helpers.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// One stored login.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthEntry {
    pub username: String,
    /// The password, or the identity (refresh) token when `identity_token` is set.
    pub secret: String,
    /// The secret is an OAuth2 refresh token (docker's `identitytoken`; helpers report user `<token>`).
    pub identity_token: bool,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEntry")
            .field("username", &self.username)
            .field("identity_token", &self.identity_token)
            .finish_non_exhaustive()
    }
}

impl AuthEntry {
    pub fn to_credentials(&self) -> Credentials {
        if self.identity_token {
            Credentials::RefreshToken {
                username: self.username.clone(),
                token: self.secret.clone(),
            }
        } else {
            Credentials::basic(&self.username, &self.secret)
        }
    }
}

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
}

/// The key a registry is stored under: Docker Hub's legacy URL, else `host[:port]`.
pub fn config_key(registry: &str) -> String {
    let host = hostname_of(registry);
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB_KEY.to_string()
        }
        _ => host,
    }
}

/// `https://host:port/v1/` → `host:port` (docker's `ConvertToHostname`).
fn hostname_of(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or("").to_ascii_lowercase()
}

/// docker's `config.json`, kept as JSON so unknown fields survive a rewrite.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
    helper_dir: Option<PathBuf>,
}

impl DockerConfig {
    /// Load from the default location (a missing file is an empty configuration).
    pub fn load_default() -> Result<DockerConfig> {
        let dir = docker_config_dir().ok_or_else(|| {
            anyhow!("neither DOCKER_CONFIG nor HOME is set: cannot find docker's config.json")
        })?;
        Self::load(&dir.join("config.json"))
    }

    /// Load `path` (a missing file is an empty configuration).
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let doc = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
            {
                Value::Object(m) => m,
                _ => bail!("{} is not a JSON object", path.display()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
            helper_dir: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Look for `docker-credential-*` programs in `dir` instead of `$PATH`.
    pub fn with_helper_dir(mut self, dir: &Path) -> Self {
        self.helper_dir = Some(dir.to_path_buf());
        self
    }

    /// The credential helper responsible for `registry`: `credHelpers[key]`, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<String> {
        let key = config_key(registry);
        let host = hostname_of(registry);
        if let Some(Value::Object(h)) = self.doc.get("credHelpers") {
            for k in [key.as_str(), host.as_str()] {
                if let Some(Value::String(name)) = h.get(k) {
                    if !name.is_empty() {
                        return Some(name.clone());
                    }
                }
            }
        }
        match self.doc.get("credsStore") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        }
    }

    /// The stored login for `registry`, if any.
    pub fn get(&self, registry: &str) -> Result<Option<AuthEntry>> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            if let Some(e) = self.helper_get(&helper, &key)? {
                return Ok(Some(e));
            }
        }
        Ok(self.auths_get(&key))
    }

    /// Credentials for `registry` (anonymous when none are stored).
    pub fn credentials_for(&self, registry: &str) -> Result<Credentials> {
        Ok(self
            .get(registry)?
            .map(|e| e.to_credentials())
            .unwrap_or(Credentials::Anonymous))
    }

    fn auths_get(&self, key: &str) -> Option<AuthEntry> {
        let Some(Value::Object(auths)) = self.doc.get("auths") else {
            return None;
        };
        // Exact key first, then any key naming the same host (`https://host/v2/`, `http://host`, …).
        let entry = auths.get(key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| config_key(k) == key)
                .map(|(_, v)| v)
        })?;
        let obj = entry.as_object()?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (mut username, mut password) = (s("username"), s("password"));
        let auth = s("auth");
        if !auth.is_empty() {
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth.trim()) {
                let raw = String::from_utf8_lossy(&raw).into_owned();
                if let Some((u, p)) = raw.split_once(':') {
                    username = u.to_string();
                    password = p.trim_end_matches('\0').to_string();
                }
            }
        }
        let identity = s("identitytoken");
        if !identity.is_empty() {
            return Some(AuthEntry {
                username,
                secret: identity,
                identity_token: true,
            });
        }
        if username.is_empty() && password.is_empty() {
            return None;
        }
        Some(AuthEntry {
            username,
            secret: password,
            identity_token: false,
        })
    }

    fn helper_program(&self, helper: &str) -> PathBuf {
        let name = format!("docker-credential-{helper}");
        match &self.helper_dir {
            Some(d) => d.join(name),
            None => PathBuf::from(name),
        }
    }

    fn run_helper(&self, helper: &str, verb: &str, input: &[u8]) -> Result<(bool, String)> {
        let prog = self.helper_program(helper);
        let mut child = Command::new(&prog)
            .arg(verb)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| {
                format!(
                    "running credential helper {} (from docker's config.json)",
                    prog.display()
                )
            })?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input)
            .with_context(|| format!("writing to {}", prog.display()))?;
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for {}", prog.display()))?;
        let mut text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        }
        Ok((out.status.success(), text))
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<AuthEntry>> {
        let (ok, text) = self.run_helper(helper, "get", key.as_bytes())?;
        if !ok {
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            bail!("docker-credential-{helper} get {key}: {text}");
        }
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("docker-credential-{helper} get {key} printed no JSON"))?;
        let f = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (username, secret) = (f("Username"), f("Secret"));
        if secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(AuthEntry {
            identity_token: username == "<token>",
            username,
            secret,
        }))
    }

    /// Store a login: through the responsible helper, else in `auths` (then the file is saved).
    pub fn store(&mut self, registry: &str, entry: &AuthEntry) -> Result<()> {
        let key = config_key(registry);
        if let Some(helper) = self.helper_for(registry) {
            let username = if entry.identity_token {
                "<token>".to_string()
            } else {
                entry.username.clone()
            };
            let input =
                serde_json::json!({"ServerURL": key, "Username": username, "Secret": entry.secret});
            let (ok, text) = self.run_helper(&helper, "store", input.to_string().as_bytes())?;
            if !ok {
                bail!("docker-credential-{helper} store {key}: {text}");
            }
            // Docker leaves an empty entry in `auths` so the registry is listed; do the same.
            self.auths_mut().insert(key, Value::Object(Map::new()));
            return self.save();
        }
        let mut obj = Map::new();
        if entry.identity_token {
            let auth = format!("{}:", entry.username);
            obj.insert(
                "auth".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(auth)),
            );
            obj.insert("identitytoken".into(), Value::String(entry.secret.clone()));
        } else {
            let auth = format!("{}:{}", entry.username, entry.secret);
            obj.insert(
                "auth".into(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(auth)),
            );
        }
        self.auths_mut().insert(key, Value::Object(obj));
        self.save()
    }

    /// Remove a login (helper and `auths`); whether anything was removed.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let key = config_key(registry);
        let mut removed = false;
        if let Some(helper) = self.helper_for(registry) {
            let (ok, text) = self.run_helper(&helper, "erase", key.as_bytes())?;
            if ok {
                removed = true;
            } else if !text.to_ascii_lowercase().contains("not found") {
                bail!("docker-credential-{helper} erase {key}: {text}");
            }
        }
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| config_key(k) == key)
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            removed = true;
        }
        self.save()?;
        Ok(removed)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        v.as_object_mut().expect("just made an object")
    }

    /// Write the file atomically: a temporary file beside it, fsync, rename, fsync of the directory.
    pub fn save(&self) -> Result<()> {
        // Write through a symlinked config.json to its target, as docker does.
        let target = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        create_private_dir(&dir)?;
        let mut bytes = serde_json::to_vec_pretty(&Value::Object(self.doc.clone()))
            .expect("a JSON map serializes");
        bytes.push(b'\n');
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config.json".into());
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                // Keep the existing file's mode (an umask may have widened or narrowed ours).
                let mode = std::fs::metadata(&target)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or(0o600);
                f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            f.write_all(&bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &target)?;
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow!("writing {}: {e}", target.display())
        })
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Credentials for `registry` from the default docker configuration.
pub fn credentials_for(registry: &str) -> Result<Credentials> {
    DockerConfig::load_default()?.credentials_for(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_auths() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        write(
            &p,
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "https://reg.example:5000/v2/":{"auth":"YWxpY2U6Yjpj"},
                "tok.example":{"auth":"dXNlcjo=","identitytoken":"RT"}
            },"psFormat":"table"}"#,
        );
        let c = DockerConfig::load(&p).unwrap();
        assert_eq!(
            c.credentials_for("docker.io").unwrap(),
            Credentials::basic("user", "pass")
        );
        // Passwords may contain colons; keys may be URLs.
        assert_eq!(
            c.credentials_for("reg.example:5000").unwrap(),
            Credentials::basic("alice", "b:c")
        );
        assert_eq!(
            c.credentials_for("tok.example").unwrap(),
            Credentials::RefreshToken {
                username: "user".into(),
                token: "RT".into()
            }
        );
        assert_eq!(
            c.credentials_for("other.example").unwrap(),
            Credentials::Anonymous
        );
        // Missing file: empty config.
        let c = DockerConfig::load(&dir.path().join("nope.json")).unwrap();
        assert_eq!(c.credentials_for("x").unwrap(), Credentials::Anonymous);
    }

    #[test]
    fn stores_and_erases_atomically_keeping_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("config.json");
        let mut c = DockerConfig::load(&p).unwrap();
        c.store(
            "127.0.0.1:5000",
            &AuthEntry {
                username: "u".into(),
                secret: "p".into(),
                identity_token: false,
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("\"127.0.0.1:5000\"") && text.contains("dTpw"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // Unknown fields survive.
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["detachKeys"] = Value::String("ctrl-x".into());
        std::fs::write(&p, v.to_string()).unwrap();
        let mut c = DockerConfig::load(&p).unwrap();
        assert_eq!(
            c.credentials_for("127.0.0.1:5000").unwrap(),
            Credentials::basic("u", "p")
        );
        assert!(c.erase("127.0.0.1:5000").unwrap());
        assert!(!c.erase("127.0.0.1:5000").unwrap());
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.contains("detachKeys") && !text.contains("127.0.0.1"),
            "{text}"
        );
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        // A tiny helper keeping one file per server URL.
        let script = format!(
            r#"#!/bin/sh
set -e
S="{store}"
read -r line || true
case "$1" in
  get) f="$S/$(printf %s "$line" | tr -c 'A-Za-z0-9' _)"; if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) url=$(printf %s "$line" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/'); f="$S/$(printf %s "$url" | tr -c 'A-Za-z0-9' _)"; printf %s "$line" > "$f" ;;
  erase) f="$S/$(printf %s "$line" | tr -c 'A-Za-z0-9' _)"; rm "$f" ;;
esac
"#,
            store = store.display()
        );
        let helper = dir.path().join("docker-credential-test");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.path().join("config.json");
        write(
            &p,
            r#"{"credsStore":"test","credHelpers":{"special.example":"missing"}}"#,
        );
        let mut c = DockerConfig::load(&p).unwrap().with_helper_dir(dir.path());
        assert_eq!(
            c.credentials_for("reg.example").unwrap(),
            Credentials::Anonymous
        );
        c.store(
            "reg.example",
            &AuthEntry {
                username: "hel".into(),
                secret: "per".into(),
                identity_token: false,
            },
        )
        .unwrap();
        assert_eq!(
            c.credentials_for("reg.example").unwrap(),
            Credentials::basic("hel", "per")
        );
        // The secret is not in config.json.
        assert!(!std::fs::read_to_string(&p).unwrap().contains("per\""));
        c.store(
            "docker.io",
            &AuthEntry {
                username: "ignored".into(),
                secret: "IDTOKEN".into(),
                identity_token: true,
            },
        )
        .unwrap();
        assert!(matches!(
            c.credentials_for("docker.io").unwrap(),
            Credentials::RefreshToken { ref token, .. } if token == "IDTOKEN"
        ));
        assert!(c.erase("reg.example").unwrap());
        assert_eq!(
            c.credentials_for("reg.example").unwrap(),
            Credentials::Anonymous
        );
        // A configured helper that does not exist is a clear error.
        let e = c.credentials_for("special.example").unwrap_err();
        assert!(
            format!("{e:#}").contains("docker-credential-missing"),
            "{e:#}"
        );
    }
}
