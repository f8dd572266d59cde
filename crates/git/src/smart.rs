//! Git's smart HTTP protocol, both versions, as bytes: the advertisement `info/refs?service=git-upload-pack`
//! answers (protocol v2's capabilities, or v0/v1's references with their capabilities), `ls-refs` and `fetch`
//! requests to `git-upload-pack`, and their answers (references; shallow lines, then the pack through
//! side-band-64k, progress kept for the host).

use std::collections::BTreeMap;

use crate::object::Oid;
use crate::pktline::{self, utf8, Pkt, Reader};
use crate::refs::Refs;
use crate::Error;

/// The content type of a smart server's advertisement (anything else is a dumb server's `info/refs`).
pub const ADVERTISEMENT: &str = "application/x-git-upload-pack-advertisement";
pub const REQUEST: &str = "application/x-git-upload-pack-request";
pub const RESULT: &str = "application/x-git-upload-pack-result";

fn agent() -> String {
    format!("agent=lw-git/{}", env!("CARGO_PKG_VERSION"))
}

/// What the server advertised.
#[derive(Debug, Clone)]
pub struct Advert {
    /// 2, or 0 for the original protocol (v1 is v0 with a version line).
    pub version: u8,
    pub caps: Vec<String>,
    /// v0's references (v2 lists them with `ls-refs`).
    pub refs: Refs,
}

impl Advert {
    /// The value of capability `name` (`name=value`), `Some("")` when it has none.
    fn cap(&self, name: &str) -> Option<&str> {
        self.caps.iter().find_map(|c| match c.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if c == name => Some(""),
            _ => None,
        })
    }

    /// Whether the server takes `deepen` (v2: `fetch=... shallow`; v0: `shallow`).
    pub fn shallow(&self) -> bool {
        match self.version {
            2 => self
                .cap("fetch")
                .is_some_and(|v| v.split(' ').any(|f| f == "shallow")),
            _ => self.cap("shallow").is_some(),
        }
    }

    /// The lines every v2 command starts with: the agent and object format, when the server names them.
    fn v2_head(&self, out: &mut Vec<u8>, command: &str) -> Result<(), Error> {
        pktline::line(out, &format!("command={command}"));
        if self.cap("agent").is_some() {
            pktline::line(out, &agent());
        }
        match self.cap("object-format") {
            None => {}
            Some("sha1") => pktline::line(out, "object-format=sha1"),
            Some(f) => return Err(unsupported(f)),
        }
        pktline::delim(out);
        Ok(())
    }
}

fn unsupported(format: &str) -> Error {
    Error::Bad {
        what: "the repository".into(),
        msg: format!("it uses object format {format}; only SHA-1 repositories are read"),
    }
}

/// Whether `body` looks like a smart advertisement (for a host that cannot give the content type).
pub fn sniffs_smart(body: &[u8]) -> bool {
    let mut r = Reader::new(body, "");
    matches!(r.packet(), Ok(Some(Pkt::Data(d))) if d.starts_with(b"# service=") || d.starts_with(b"version 2"))
}

/// Parse the advertisement.
pub fn advertisement(body: &[u8]) -> Result<Advert, Error> {
    let mut r = Reader::new(body, "the server's info/refs?service=git-upload-pack");
    let mut first = r.text()?;
    if let Some(Pkt::Data(d)) = first {
        if let Some(svc) = d.strip_prefix(b"# service=") {
            if svc != b"git-upload-pack" {
                return Err(r.bad(format!(
                    "it is for service {}",
                    String::from_utf8_lossy(svc)
                )));
            }
            if r.packet()? != Some(Pkt::Flush) {
                return Err(r.bad("no flush after the service line"));
            }
            first = r.text()?;
        }
    }
    if first == Some(Pkt::Data(b"version 2")) {
        let mut caps = Vec::new();
        while let Some(Pkt::Data(d)) = r.text()? {
            caps.push(utf8(&r, d)?.to_string());
            if caps.len() > 1000 {
                return Err(r.bad("more than 1000 capabilities"));
            }
        }
        return Ok(Advert {
            version: 2,
            caps,
            refs: Refs::default(),
        });
    }
    if first == Some(Pkt::Data(b"version 1")) {
        first = r.text()?;
    }
    let mut advert = Advert {
        version: 0,
        caps: Vec::new(),
        refs: Refs::default(),
    };
    let mut line = first;
    while let Some(Pkt::Data(d)) = line {
        let d = utf8(&r, d)?;
        let (d, caps) = d.split_once('\0').unwrap_or((d, ""));
        if !caps.is_empty() {
            advert.caps = caps.split(' ').map(str::to_string).collect();
        }
        let (id, name) = parse_ref(&r, d)?;
        if name != "capabilities^{}" && !name.ends_with("^{}") {
            advert.refs.names.insert(name.to_string(), id);
        }
        line = r.text()?;
    }
    if let Some(f) = advert.cap("object-format").filter(|f| *f != "sha1") {
        return Err(unsupported(f));
    }
    Ok(advert)
}

fn parse_ref<'a>(r: &Reader<'_>, line: &'a str) -> Result<(Oid, &'a str), Error> {
    line.split_once(' ')
        .and_then(|(id, name)| Some((Oid::from_hex(id)?, name)))
        .filter(|(_, name)| !name.is_empty())
        .ok_or_else(|| r.bad(format!("{line:?} is not `ID NAME`")))
}

/// The names git asks `ls-refs` about for a reference given by the user (its lookup rules); `HEAD` for none.
fn prefixes(reference: &str) -> Vec<String> {
    if reference.is_empty() || reference == "HEAD" {
        return vec!["HEAD".into()];
    }
    ["", "refs/", "refs/tags/", "refs/heads/", "refs/remotes/"]
        .iter()
        .map(|p| format!("{p}{reference}"))
        .chain([format!("refs/remotes/{reference}/HEAD")])
        .collect()
}

/// The v2 `ls-refs` request for `reference`.
pub fn ls_refs(advert: &Advert, reference: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    advert.v2_head(&mut out, "ls-refs")?;
    pktline::line(&mut out, "peel");
    pktline::line(&mut out, "symrefs");
    for p in prefixes(reference) {
        pktline::line(&mut out, &format!("ref-prefix {p}"));
    }
    pktline::flush(&mut out);
    Ok(out)
}

/// The references an `ls-refs` answer lists (`ID NAME [symref-target:T] [peeled:ID]`).
pub fn ls_refs_answer(body: &[u8]) -> Result<Refs, Error> {
    let mut r = Reader::new(body, "the server's ls-refs answer");
    let mut names = BTreeMap::new();
    while let Some(Pkt::Data(d)) = r.text()? {
        let line = utf8(&r, d)?;
        let mut words = line.split(' ');
        let head = format!(
            "{} {}",
            words.next().unwrap_or(""),
            words.next().unwrap_or("")
        );
        let (id, name) = parse_ref(&r, &head)?;
        names.insert(name.to_string(), id);
        if names.len() > 1_000_000 {
            return Err(r.bad("more than a million references"));
        }
    }
    Ok(Refs { names })
}

/// The `fetch` request (v2 `command=fetch`, or v0's want list) for `want`, `deepen 1` when `shallow`.
pub fn fetch(advert: &Advert, want: &Oid, shallow: bool) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let deepen = shallow && advert.shallow();
    if advert.version == 2 {
        advert.v2_head(&mut out, "fetch")?;
        pktline::line(&mut out, "ofs-delta");
        if deepen {
            pktline::line(&mut out, "deepen 1");
        }
        pktline::line(&mut out, &format!("want {want}"));
        pktline::line(&mut out, "done");
        pktline::flush(&mut out);
        return Ok(out);
    }
    let mut caps = vec!["side-band-64k".to_string(), "ofs-delta".into()];
    if deepen {
        caps.push("shallow".into());
    }
    if advert.cap("agent").is_some() {
        caps.push(agent());
    }
    caps.retain(|c| advert.cap(c.split('=').next().unwrap_or(c)).is_some());
    if !caps.iter().any(|c| c == "side-band-64k") {
        return Err(Error::Bad {
            what: "the server".into(),
            msg: "it does not offer side-band-64k (git's pack transfer since 2009)".into(),
        });
    }
    pktline::line(&mut out, &format!("want {want} {}", caps.join(" ")));
    if deepen {
        pktline::line(&mut out, "deepen 1");
    }
    pktline::flush(&mut out);
    pktline::line(&mut out, "done");
    Ok(out)
}

/// What a `fetch` answer holds: the pack's bytes and the commits the server marked shallow.
pub struct Fetched {
    pub pack: Vec<u8>,
    pub shallow: Vec<Oid>,
}

/// Parse the answer to [`fetch`] (protocol `version`), passing progress lines to `progress`.
pub fn fetch_answer(
    version: u8,
    body: &[u8],
    limit: u64,
    progress: &mut Vec<String>,
) -> Result<Fetched, Error> {
    let mut r = Reader::new(body, "the server's fetch answer");
    let mut got = Fetched {
        pack: Vec::new(),
        shallow: Vec::new(),
    };
    let shallow_line = |r: &Reader<'_>, line: &str, got: &mut Fetched| -> Result<bool, Error> {
        if let Some(id) = line.strip_prefix("shallow ") {
            got.shallow
                .push(Oid::from_hex(id).ok_or_else(|| r.bad(format!("{line:?}")))?);
            return Ok(true);
        }
        Ok(line.starts_with("unshallow "))
    };
    if version != 2 {
        // Shallow lines (and their flush), then NAK, then the side-band pack.
        loop {
            match r.text()? {
                Some(Pkt::Flush) => continue,
                Some(Pkt::Data(d)) => {
                    let line = utf8(&r, d)?;
                    if line == "NAK" || line.starts_with("ACK ") {
                        break;
                    }
                    if !shallow_line(&r, line, &mut got)? {
                        return Err(r.bad(format!("unexpected line {line:?}")));
                    }
                }
                _ => return Err(r.bad("a delimiter before the pack")),
            }
        }
        pktline::demux(&mut r, &mut got.pack, progress, limit)?;
        return Ok(got);
    }
    loop {
        let section = match r.text()? {
            Some(Pkt::Data(d)) => utf8(&r, d)?.to_string(),
            Some(Pkt::Flush) | Some(Pkt::End) | None => break,
            Some(Pkt::Delim) => continue,
        };
        if section == "packfile" {
            pktline::demux(&mut r, &mut got.pack, progress, limit)?;
            break;
        }
        if !["acknowledgments", "shallow-info", "wanted-refs"].contains(&section.as_str()) {
            return Err(r.bad(format!("unexpected section {section:?}")));
        }
        while let Some(Pkt::Data(d)) = r.text()? {
            let line = utf8(&r, d)?;
            if section == "shallow-info" {
                shallow_line(&r, line, &mut got)?;
            }
        }
    }
    if got.pack.is_empty() {
        return Err(r.bad("it holds no pack"));
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "e4211549b1b160f28e0f1a26d9d7b89e0fd0d346";

    #[test]
    fn v0_and_v2_advertisements_and_requests() {
        let mut b = Vec::new();
        pktline::line(&mut b, "# service=git-upload-pack");
        pktline::flush(&mut b);
        pktline::data(
            &mut b,
            format!("{A} HEAD\0multi_ack side-band-64k ofs-delta shallow agent=git/2\n").as_bytes(),
        );
        pktline::line(&mut b, &format!("{A} refs/tags/v1^{{}}"));
        pktline::flush(&mut b);
        assert!(sniffs_smart(&b));
        let a = advertisement(&b).unwrap();
        assert_eq!((a.version, a.shallow()), (0, true));
        assert_eq!(a.refs.names.keys().collect::<Vec<_>>(), ["HEAD"]);
        let req = String::from_utf8(fetch(&a, &Oid::from_hex(A).unwrap(), true).unwrap()).unwrap();
        assert!(
            req.contains(&format!(
                "want {A} side-band-64k ofs-delta shallow agent=lw-git/"
            )),
            "{req}"
        );
        assert!(req.ends_with("000ddeepen 1\n00000009done\n"), "{req}");

        let mut b = Vec::new();
        pktline::line(&mut b, "version 2");
        pktline::line(&mut b, "ls-refs=unborn");
        pktline::line(&mut b, "fetch=shallow wait-for-done");
        pktline::line(&mut b, "object-format=sha256");
        pktline::flush(&mut b);
        let a = advertisement(&b).unwrap();
        assert_eq!((a.version, a.shallow()), (2, true));
        let e = ls_refs(&a, "main").unwrap_err().to_string();
        assert!(e.contains("sha256"), "{e}");
        assert!(!sniffs_smart(format!("{A}\trefs/heads/main\n").as_bytes()));
    }
}
