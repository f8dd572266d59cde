//! `RUN --mount=…` and `RUN --device=…` specs (BuildKit's `commands_runmount.go` and
//! `commands_rundevice.go`), including the single-record CSV reader they use.

use crate::go_compat::values::{parse_bool, parse_uint, ram_in_bytes, with_suggestion};
use crate::parser::go_quote;

/// `csvvalue.Fields`: one CSV record, `,`-separated, `"`-quoted with `""` escapes.
pub fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut line = line;
    if let Some(l) = line.strip_suffix('\n') {
        line = l.strip_suffix('\r').unwrap_or(l);
    }
    if line.is_empty() {
        return Err("EOF".into());
    }
    let err =
        |pos: usize, what: &str| Err(format!("parse error on line 1, column {}: {what}", pos + 1));
    const BARE: &str = "bare \" in non-quoted-field";
    const QUOTE: &str = "extraneous or missing \" in quoted-field";
    let mut dst: Vec<String> = Vec::new();
    let mut pos = 0usize;
    'field: loop {
        if line.is_empty() || !line.starts_with('"') {
            let i = line.find(',');
            let field = match i {
                Some(i) => &line[..i],
                None => line,
            };
            if let Some(j) = field.find('"') {
                return err(pos + j, BARE);
            }
            dst.push(field.to_string());
            match i {
                Some(i) => {
                    line = &line[i + 1..];
                    pos += i + 1;
                    continue;
                }
                None => break,
            }
        }
        line = &line[1..];
        pos += 1;
        let mut half_open = false;
        loop {
            match line.find('"') {
                Some(i) => {
                    if !half_open {
                        dst.push(line[..i].to_string());
                    } else if let Some(last) = dst.last_mut() {
                        last.push_str(&line[..i]);
                    }
                    line = &line[i + 1..];
                    pos += i + 1;
                    match line.chars().next() {
                        Some('"') => {
                            if let Some(last) = dst.last_mut() {
                                last.push('"');
                            }
                            line = &line[1..];
                            pos += 1;
                            half_open = true;
                        }
                        Some(',') => {
                            line = &line[1..];
                            pos += 1;
                            continue 'field;
                        }
                        None => break 'field,
                        Some(_) => return err(pos - 1, QUOTE),
                    }
                }
                None => return err(pos, QUOTE),
            }
        }
    }
    Ok(dst)
}

/// A mount type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// Cache sharing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

impl Sharing {
    pub fn as_str(self) -> &'static str {
        match self {
            Sharing::Shared => "shared",
            Sharing::Private => "private",
            Sharing::Locked => "locked",
        }
    }
}

/// A parsed `--mount` spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_type: MountType,
    pub from: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// tmpfs `size`, in bytes (0 when unset).
    pub size_limit: i64,
    /// `id`.
    pub cache_id: String,
    pub cache_sharing: Option<Sharing>,
    pub required: bool,
    /// secret `env`.
    pub env: Option<String>,
    pub mode: Option<u64>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
}

const ALL_KEYS: [&str; 19] = [
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

/// Expands one word (variables, quotes) the way the stage model does; see [`parse_mount`].
pub type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

fn unexpected_for_type(key: &str, t: MountType) -> String {
    format!("unexpected key '{key}' for mount type '{}'", t.as_str())
}

/// A field without `=` (`ro`, `rw`, `required`). `ro_auto` says the read-only default still applies.
fn set_flag(m: &mut Mount, ro_auto: &mut bool, key: &str, field: &str) -> Result<(), String> {
    match key {
        "readonly" | "ro" => {
            m.read_only = true;
            *ro_auto = false;
        }
        "readwrite" | "rw" => {
            m.read_only = false;
            *ro_auto = false;
        }
        "required" if matches!(m.mount_type, MountType::Secret | MountType::Ssh) => {
            m.required = true
        }
        "required" => return Err(unexpected_for_type(key, m.mount_type)),
        _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
    }
    Ok(())
}

fn mount_type(value: &str) -> Result<MountType, String> {
    Ok(
        match crate::go_compat::unicode::to_lower(value.as_bytes()).as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => {
                return Err(with_suggestion(
                    format!("unsupported mount type {}", go_quote(value.as_bytes())),
                    value,
                    &["bind", "cache", "secret", "ssh", "tmpfs"],
                    true,
                ))
            }
        },
    )
}

fn sharing(value: &str) -> Result<Sharing, String> {
    Ok(
        match crate::go_compat::unicode::to_lower(value.as_bytes()).as_str() {
            "shared" => Sharing::Shared,
            "private" => Sharing::Private,
            "locked" => Sharing::Locked,
            _ => {
                return Err(with_suggestion(
                    format!("unsupported sharing value {}", go_quote(value.as_bytes())),
                    value,
                    &["locked", "private", "shared"],
                    true,
                ))
            }
        },
    )
}

/// A `key=value` field, its value expanded.
fn set_field(
    m: &mut Mount,
    ro_auto: &mut bool,
    key: &str,
    value: String,
    field: &str,
) -> Result<(), String> {
    let invalid = |key: &str, value: &str| format!("invalid value for {key}: {value}");
    let id_number = |base: u32, what: &str| {
        parse_uint(&value, base, 32).map_err(|_| format!("invalid value {value} for {what}"))
    };
    match key {
        "type" => m.mount_type = mount_type(&value)?,
        "from" => m.from = value,
        "source" | "src" => m.source = value,
        "target" | "dst" | "destination" => m.target = value,
        "readonly" | "ro" => {
            m.read_only = parse_bool(&value).ok_or_else(|| invalid(key, &value))?;
            *ro_auto = false;
        }
        "readwrite" | "rw" => {
            let rw = parse_bool(&value).ok_or_else(|| invalid(key, &value))?;
            m.read_only = !rw;
            *ro_auto = false;
        }
        "required" if matches!(m.mount_type, MountType::Secret | MountType::Ssh) => {
            m.required = parse_bool(&value).ok_or_else(|| invalid(key, &value))?;
        }
        "size" if m.mount_type == MountType::Tmpfs => {
            m.size_limit = ram_in_bytes(&value).map_err(|_| invalid(key, &value))?;
        }
        "required" | "size" => return Err(unexpected_for_type(key, m.mount_type)),
        "id" => m.cache_id = value,
        "sharing" => m.cache_sharing = Some(sharing(&value)?),
        "mode" => m.mode = Some(id_number(8, "mode")?),
        "uid" => m.uid = Some(id_number(10, "uid")?),
        "gid" => m.gid = Some(id_number(10, "gid")?),
        "env" => m.env = Some(value),
        _ => {
            return Err(with_suggestion(
                format!("unexpected key '{key}' in '{field}'"),
                key,
                &ALL_KEYS,
                true,
            ))
        }
    }
    Ok(())
}

/// The checks BuildKit makes once every field is read, and the read-only default.
fn finish_mount(mut m: Mount, ro_auto: bool) -> Result<Mount, String> {
    let file_info_allowed = matches!(
        m.mount_type,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        let t = go_quote(m.mount_type.as_str().as_bytes());
        if m.mode.is_some() {
            return Err(format!("mode not allowed for {t} type mounts"));
        }
        if m.uid.is_some() {
            return Err(format!("uid not allowed for {t} type mounts"));
        }
        if m.gid.is_some() {
            return Err(format!("gid not allowed for {t} type mounts"));
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.mount_type, MountType::Cache | MountType::Tmpfs);
    }
    if m.mount_type == MountType::Secret {
        if !m.from.is_empty() {
            return Err("secret mount should not have a from".into());
        }
        if m.cache_sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_empty() && m.target.is_empty() && m.cache_id.is_empty() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if !m.source.is_empty() && !m.cache_id.is_empty() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.cache_sharing.is_some() && m.mount_type != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.mount_type.as_str()
        ));
    }
    Ok(m)
}

/// `parseMount`. With no expander (instruction-parse time) only the CSV syntax and
/// `from` (which may not use variables) are checked, the rest is left for later, as
/// upstream; with an expander every value is expanded and validated.
pub fn parse_mount(val: &str, mut expander: Option<Expander<'_>>) -> Result<Mount, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = Mount {
        mount_type: MountType::Bind,
        from: String::new(),
        source: String::new(),
        target: String::new(),
        read_only: false,
        size_limit: 0,
        cache_id: String::new(),
        cache_sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    for field in &fields {
        let (key, value, has_eq) = match field.split_once('=') {
            Some((k, v)) => (k, v.to_string(), true),
            None => (field.as_str(), String::new(), false),
        };
        let key = crate::go_compat::unicode::to_lower(key.as_bytes());
        if !has_eq {
            if expander.is_some() {
                set_flag(&mut m, &mut ro_auto, &key, field)?;
            }
            continue;
        }
        let value = match expander.as_mut() {
            Some(exp) => exp(&value)?,
            None if key == "from" => {
                if let Some(idx) = value.find('$') {
                    if idx != value.len() - 1 {
                        return Err(format!(
                            "'{key}' doesn't support variable expansion, define alias stage instead"
                        ));
                    }
                }
                value
            }
            None => continue,
        };
        set_field(&mut m, &mut ro_auto, &key, value, field)?;
    }
    finish_mount(m, ro_auto)
}

/// A `--device` request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Device {
    pub name: String,
    pub required: bool,
}

/// `ParseDevice`: `name[,required[=bool]]` or `name=…,required=…`.
pub fn parse_device(val: &str) -> Result<Device, String> {
    let fields = csv_fields(val).map_err(|e| format!("failed to parse csv devices: {e}"))?;
    let mut d = Device::default();
    for field in &fields {
        let (key, value, has_eq) = match field.split_once('=') {
            Some((k, v)) => (k, v, true),
            None => (field.as_str(), "", false),
        };
        let key = crate::go_compat::unicode::to_lower(key.as_bytes());
        if !has_eq {
            if key == "required" {
                d.required = true;
                continue;
            }
            if d.name.is_empty() {
                d.name = field.clone();
                continue;
            }
            return Err(format!("invalid field '{field}' must be a key=value pair"));
        }
        match key.as_str() {
            "name" => {
                if !d.name.is_empty() {
                    return Err(format!("device name already set to {}", d.name));
                }
                d.name = value.to_string();
            }
            "required" => {
                d.required =
                    parse_bool(value).ok_or_else(|| format!("invalid value for {key}: {value}"))?;
            }
            _ => {
                if d.name.is_empty() {
                    d.name = field.clone();
                    continue;
                }
                return Err(with_suggestion(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    &["name", "required"],
                    true,
                ));
            }
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn literal(s: &str) -> Result<String, String> {
        Ok(s.to_string())
    }

    fn full(spec: &str) -> Result<Mount, String> {
        let mut f = literal;
        parse_mount(spec, Some(&mut f))
    }

    #[test]
    fn csv() {
        assert_eq!(
            csv_fields("a,b=c,\"d,e\"").unwrap(),
            vec!["a", "b=c", "d,e"]
        );
        assert_eq!(csv_fields("\"a\"\"b\",").unwrap(), vec!["a\"b", ""]);
        assert_eq!(csv_fields("").unwrap_err(), "EOF");
        assert_eq!(
            csv_fields("a\"b").unwrap_err(),
            "parse error on line 1, column 2: bare \" in non-quoted-field"
        );
        assert_eq!(
            csv_fields("\"a\"b").unwrap_err(),
            "parse error on line 1, column 3: extraneous or missing \" in quoted-field"
        );
        assert!(csv_fields("\"ab").is_err());
    }

    #[test]
    fn mounts_success() {
        let m = full("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1,gid=2")
            .unwrap();
        assert_eq!(m.mount_type, MountType::Cache);
        assert_eq!(m.target, "/root/.cache");
        assert_eq!(m.cache_sharing, Some(Sharing::Locked));
        assert_eq!((m.mode, m.uid, m.gid), (Some(0o755), Some(1), Some(2)));
        assert!(!m.read_only);

        let m = full("type=bind,src=.,dst=/src,from=build,rw").unwrap();
        assert_eq!(
            (
                m.source.as_str(),
                m.target.as_str(),
                m.from.as_str(),
                m.read_only
            ),
            (".", "/src", "build", false)
        );
        let m = full("target=/x").unwrap();
        assert!(m.read_only);
        assert_eq!(m.mount_type, MountType::Bind);

        let m = full("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert_eq!(
            (m.cache_id.as_str(), m.env.as_deref(), m.required),
            ("tok", Some("TOKEN"), true)
        );
        let m = full("type=ssh,required=true").unwrap();
        assert!(m.required && m.read_only);
        let m = full("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size_limit, 64 << 20);
        let m = full("TYPE=Cache,destination=/c,readonly=true").unwrap();
        assert!(m.read_only);
    }

    #[test]
    fn mounts_failure() {
        let e = |s: &str| full(s).unwrap_err();
        assert_eq!(e("type=foo"), "unsupported mount type \"foo\"");
        assert_eq!(
            e("type=cahce"),
            "unsupported mount type \"cahce\" (did you mean cache?)"
        );
        assert_eq!(
            e("type=cache,sharing=none"),
            "unsupported sharing value \"none\""
        );
        assert_eq!(
            e("type=bind,mode=0755"),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            e("type=tmpfs,uid=1"),
            "uid not allowed for \"tmpfs\" type mounts"
        );
        assert_eq!(
            e("type=bind,required"),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert_eq!(
            e("type=cache,size=1m"),
            "unexpected key 'size' for mount type 'cache'"
        );
        assert_eq!(e("type=tmpfs,size=lots"), "invalid value for size: lots");
        assert_eq!(
            e("type=secret"),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            e("type=secret,id=a,src=b"),
            "both source and id can't be set"
        );
        assert_eq!(
            e("type=secret,id=a,from=x"),
            "secret mount should not have a from"
        );
        assert_eq!(
            e("type=bind,sharing=shared"),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(e("type=cache,mode=9"), "invalid value 9 for mode");
        assert_eq!(e("type=cache,uid=-1"), "invalid value -1 for uid");
        assert_eq!(e("ro=maybe"), "invalid value for ro: maybe");
        assert_eq!(
            e("targte=/x"),
            "unexpected key 'targte' in 'targte=/x' (did you mean target?)"
        );
        assert_eq!(e("bogus"), "invalid field 'bogus' must be a key=value pair");
        assert_eq!(e(""), "failed to parse csv mounts: EOF");
    }

    #[test]
    fn mounts_deferred() {
        // Without an expander only CSV syntax and `from` are checked.
        assert!(parse_mount("type=foo,bogus", None).is_ok());
        assert_eq!(
            parse_mount("type=bind,from=$STAGE", None).unwrap_err(),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
        assert!(parse_mount("from=a$", None).is_ok());
        assert!(parse_mount("a\"b", None).is_err());
    }

    #[test]
    fn devices() {
        assert_eq!(
            parse_device("/dev/fuse").unwrap(),
            Device {
                name: "/dev/fuse".into(),
                required: false
            }
        );
        assert_eq!(
            parse_device("name=gpu,required").unwrap(),
            Device {
                name: "gpu".into(),
                required: true
            }
        );
        assert_eq!(
            parse_device("vendor.com/x=1,required=false").unwrap().name,
            "vendor.com/x=1"
        );
        assert_eq!(
            parse_device("a,b").unwrap_err(),
            "invalid field 'b' must be a key=value pair"
        );
        assert_eq!(
            parse_device("a,name=b").unwrap_err(),
            "device name already set to a"
        );
        assert_eq!(
            parse_device("a,required=x").unwrap_err(),
            "invalid value for required: x"
        );
    }
}
