//! The sans-I/O client of git's dumb HTTP protocol: [`Fetch::step`] says which file of the remote it needs
//! (`info/refs`, `HEAD`, `objects/info/packs`, a pack's `.idx` and `.pack`, a loose object), the host fetches it and
//! hands it back with [`Fetch::answer`], until the checkout is done. The work restarts from the top after each
//! answer; everything fetched and parsed is kept, so a restart only redoes lookups.

use std::collections::HashMap;
use std::rc::Rc;

use crate::checkout;
use crate::object::{self, Kind, Oid};
use crate::pack::{apply_delta, Index, Pack, Raw};
use crate::refs::{self, Head, Refs};
use crate::{Checkout, Error, Limits};

/// What the client wants next.
#[derive(Debug)]
pub enum Next {
    /// Fetch this URL and [`Fetch::answer`] it.
    Get(String),
    /// The checkout is ready.
    Done(Checkout),
}

/// Why a run stopped: a file is needed, or the fetch failed.
pub(crate) enum Stop {
    Need(String),
    Fail(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Fail(e)
    }
}

pub(crate) type R<T> = Result<T, Stop>;

/// One checkout of `reference` of the repository at `remote`.
pub struct Fetch {
    remote: String,
    reference: String,
    keep_git_dir: bool,
    limits: Limits,
    /// The `Authorization` value for the remote's own requests (BuildKit's `GIT_AUTH_HEADER`/`GIT_AUTH_TOKEN`).
    authorization: Option<String>,
    /// Path below the remote → body (`None`: the server does not have it).
    answers: HashMap<String, Option<Rc<Vec<u8>>>>,
    fetched: u64,
    refs: Option<Refs>,
    pack_names: Option<Vec<String>>,
    indexes: HashMap<String, Rc<Index>>,
    packs: HashMap<String, Rc<Pack>>,
    objects: HashMap<Oid, (Kind, Rc<Vec<u8>>)>,
}

impl Fetch {
    /// `reference`: a branch, tag or full commit id; empty for the remote's `HEAD`.
    pub fn new(remote: &str, reference: &str, keep_git_dir: bool, limits: Limits) -> Fetch {
        Fetch {
            remote: remote.trim_end_matches('/').to_string(),
            reference: reference.to_string(),
            keep_git_dir,
            limits,
            authorization: None,
            answers: HashMap::new(),
            fetched: 0,
            refs: None,
            pack_names: None,
            indexes: HashMap::new(),
            packs: HashMap::new(),
            objects: HashMap::new(),
        }
    }

    /// Send `authorization` (an `Authorization` header's value, as the core's `git_authorization` makes it from
    /// the build's secrets) with the remote's requests: see [`Fetch::authorization`].
    pub fn with_authorization(mut self, authorization: Option<String>) -> Fetch {
        self.authorization = authorization;
        self
    }

    /// The `Authorization` value to send with a request for `url`: the one given, and only when `url` is on the
    /// remote's own scheme, host and port (as BuildKit scopes it to the remote with `http.<remote>.extraheader`).
    /// The host asks again for the URL a redirect leads to, so a redirect to another host gets none.
    pub fn authorization(&self, url: &str) -> Option<&str> {
        let origin = |u: &str| -> Option<String> {
            let (scheme, rest) = u.split_once("://")?;
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            Some(format!(
                "{}://{}",
                scheme.to_ascii_lowercase(),
                rest[..end].to_ascii_lowercase()
            ))
        };
        let (o, r) = (origin(url)?, origin(&self.remote)?);
        (o == r).then_some(self.authorization.as_deref()).flatten()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.remote)
    }

    /// The next file to fetch, or the checkout.
    pub fn step(&mut self) -> Result<Next, Error> {
        match self.run() {
            Ok(c) => Ok(Next::Done(c)),
            Err(Stop::Need(path)) => Ok(Next::Get(self.url(&path))),
            Err(Stop::Fail(e)) => Err(e),
        }
    }

    /// The body of `url` (one [`Next::Get`] asked for), or `None` when the server answered 404 Not Found.
    pub fn answer(&mut self, url: &str, body: Option<Vec<u8>>) -> Result<(), Error> {
        let path = url
            .strip_prefix(&self.remote)
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(|| Error::Bad {
                what: url.to_string(),
                msg: format!("not a file of {}", self.remote),
            })?
            .to_string();
        let n = body.as_ref().map_or(0, |b| b.len() as u64);
        self.fetched = self.fetched.saturating_add(n);
        if self.fetched > self.limits.max_fetch {
            return Err(Error::TooLarge {
                what: "the files fetched".into(),
                limit: self.limits.max_fetch,
            });
        }
        self.answers.insert(path, body.map(Rc::new));
        Ok(())
    }

    /// The file at `path`: `Ok(None)` for one the server does not have, a stop until it is fetched.
    fn get(&self, path: &str) -> R<Option<Rc<Vec<u8>>>> {
        match self.answers.get(path) {
            Some(b) => Ok(b.clone()),
            None => Err(Stop::Need(path.to_string())),
        }
    }

    fn run(&mut self) -> R<Checkout> {
        if !self.remote.starts_with("http://") && !self.remote.starts_with("https://") {
            return Err(Error::Scheme(self.remote.clone()).into());
        }
        let start = self.start()?;
        let commit = self.peel(start)?;
        checkout::checkout(self, &commit, self.keep_git_dir)
    }

    /// The id the reference names (possibly an annotated tag).
    fn start(&mut self) -> R<Oid> {
        if let Some(id) = Oid::from_hex(&self.reference) {
            return Ok(id);
        }
        if self.refs.is_none() {
            let data = self.get("info/refs")?.ok_or(Error::NotDumb)?;
            self.refs = Some(Refs::parse(&data)?);
        }
        let refs = self.refs.as_ref().cloned().unwrap_or_default();
        if self.reference.is_empty() || self.reference == "HEAD" {
            let data = self.get("HEAD")?.ok_or_else(|| Error::Bad {
                what: "HEAD".into(),
                msg: "the server does not have it".into(),
            })?;
            return match refs::parse_head(&data)? {
                Head::Detached(id) => Ok(id),
                Head::Symbolic(name) => refs
                    .names
                    .get(&name)
                    .copied()
                    .ok_or_else(|| Error::NoRef(format!("HEAD ({name})")).into()),
            };
        }
        refs.resolve(&self.reference)
            .ok_or_else(|| Error::NoRef(self.reference.clone()).into())
    }

    /// Follow annotated tags to the commit.
    fn peel(&mut self, mut id: Oid) -> R<Oid> {
        for _ in 0..16 {
            let (kind, body) = self.object(&id)?;
            match kind {
                Kind::Commit => return Ok(id),
                Kind::Tag => id = object::tag_target(&id, &body)?,
                k => {
                    return Err(Error::Bad {
                        what: format!("reference {:?}", self.reference),
                        msg: format!("it names a {}, not a commit", k.name()),
                    }
                    .into())
                }
            }
        }
        Err(Error::Bad {
            what: format!("reference {:?}", self.reference),
            msg: "it names a chain of more than 16 tags".into(),
        }
        .into())
    }

    /// The packs `objects/info/packs` lists (none when the server has no such file).
    fn pack_names(&mut self) -> R<Vec<String>> {
        if let Some(p) = &self.pack_names {
            return Ok(p.clone());
        }
        let mut names = Vec::new();
        if let Some(data) = self.get("objects/info/packs")? {
            for (i, line) in String::from_utf8_lossy(&data).lines().enumerate() {
                let Some(name) = line.strip_prefix("P ") else {
                    continue;
                };
                let ok = name.starts_with("pack-")
                    && name.ends_with(".pack")
                    && name
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
                if !ok {
                    return Err(Error::Bad {
                        what: format!("objects/info/packs line {}", i + 1),
                        msg: format!("{name:?} is not a pack name"),
                    }
                    .into());
                }
                names.push(name.trim_end_matches(".pack").to_string());
            }
        }
        self.pack_names = Some(names.clone());
        Ok(names)
    }

    /// The pack holding `oid` and its offset there, fetching indexes (and then that pack) as needed.
    fn find_packed(&mut self, oid: &Oid) -> R<Option<(Rc<Pack>, u64)>> {
        for name in self.pack_names()? {
            let index = match self.indexes.get(&name) {
                Some(i) => i.clone(),
                None => {
                    let path = format!("objects/pack/{name}.idx");
                    let data = self.get(&path)?.ok_or_else(|| Error::Bad {
                        what: path.clone(),
                        msg: "listed in objects/info/packs, but the server does not have it".into(),
                    })?;
                    let i = Rc::new(Index::parse(&path, &data)?);
                    self.indexes.insert(name.clone(), i.clone());
                    i
                }
            };
            let Some(offset) = index.find(oid) else {
                continue;
            };
            if let Some(p) = self.packs.get(&name) {
                return Ok(Some((p.clone(), offset)));
            }
            let path = format!("objects/pack/{name}.pack");
            let data = self.get(&path)?.ok_or_else(|| Error::Bad {
                what: path.clone(),
                msg: "its index is served, the pack is not".into(),
            })?;
            // The pack's bytes move into the Pack; the answer keeps an empty placeholder (it was fetched).
            self.answers.insert(path.clone(), Some(Rc::new(Vec::new())));
            let bytes = Rc::try_unwrap(data).unwrap_or_else(|rc| (*rc).clone());
            let pack = Rc::new(Pack::new(&path, bytes, index)?);
            self.packs.insert(name.clone(), pack.clone());
            return Ok(Some((pack, offset)));
        }
        Ok(None)
    }

    /// Object `oid`, from a pack or loose, its id checked.
    pub(crate) fn object(&mut self, oid: &Oid) -> R<(Kind, Rc<Vec<u8>>)> {
        if let Some(o) = self.objects.get(oid) {
            return Ok(o.clone());
        }
        let (kind, body) = match self.find_packed(oid)? {
            Some((pack, offset)) => self.unpack(&pack, offset)?,
            None => {
                let hex = oid.hex();
                let path = format!("objects/{}/{}", &hex[..2], &hex[2..]);
                let data = self.get(&path)?.ok_or(Error::Missing(hex))?;
                object::loose(oid, &data, self.limits.max_object)?
            }
        };
        object::verify(oid, kind, &body)?;
        // Kept: a restart (after the next file arrives) reads it again without inflating it again.
        let o = (kind, Rc::new(body));
        self.objects.insert(*oid, o.clone());
        Ok(o)
    }

    /// The object at `offset` of `pack`, its delta chain (by offset or by id) applied.
    fn unpack(&mut self, pack: &Rc<Pack>, offset: u64) -> R<(Kind, Vec<u8>)> {
        let limit = self.limits.max_object;
        let mut deltas = Vec::new();
        let mut at = (pack.clone(), offset);
        let (kind, mut body) = loop {
            if deltas.len() > self.limits.max_delta_chain {
                return Err(Error::Bad {
                    what: pack.name.clone(),
                    msg: format!(
                        "a delta chain longer than {} at offset {offset}",
                        self.limits.max_delta_chain
                    ),
                }
                .into());
            }
            match at.0.raw(at.1, limit)? {
                Raw::Whole(kind, body) => break (kind, body),
                Raw::OfsDelta(base, d) => {
                    deltas.push(d);
                    at.1 = base;
                }
                Raw::RefDelta(base, d) => {
                    deltas.push(d);
                    match self.find_packed(&base)? {
                        Some(p) => at = p,
                        None => {
                            let (kind, body) = self.object(&base)?;
                            break (kind, (*body).clone());
                        }
                    }
                }
            }
        };
        for d in deltas.iter().rev() {
            body = apply_delta(&body, d, limit).map_err(|m| Error::Bad {
                what: pack.name.clone(),
                msg: format!("object at offset {offset}: {m}"),
            })?;
        }
        Ok((kind, body))
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The raw files of the objects this fetch read, for a kept `.git`: the packs used (with their indexes) and
    /// the loose objects fetched, by their path below `objects/`.
    pub(crate) fn object_files(&self) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for (name, pack) in &self.packs {
            out.push((format!("pack/{name}.pack"), pack.data.clone()));
            if let Some(Some(idx)) = self.answers.get(&format!("objects/pack/{name}.idx")) {
                out.push((format!("pack/{name}.idx"), (**idx).clone()));
            }
        }
        for (path, body) in &self.answers {
            let loose = path
                .strip_prefix("objects/")
                .filter(|p| p.len() == 41 && p.as_bytes()[2] == b'/');
            if let (Some(p), Some(b)) = (loose, body) {
                out.push((p.to_string(), (**b).clone()));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header goes to the remote's own scheme, host and port only, whatever the path.
    #[test]
    fn authorization_is_for_the_remotes_host_only() {
        let f = Fetch::new(
            "https://127.0.0.1:48767/tgit/repo.git",
            "v1",
            false,
            Limits::default(),
        )
        .with_authorization(Some("basic eA==".into()));
        let auth = |u: &str| f.authorization(u);
        assert_eq!(
            auth("https://127.0.0.1:48767/tgit/repo.git/info/refs"),
            Some("basic eA==")
        );
        assert_eq!(
            auth("HTTPS://127.0.0.1:48767/other/path"),
            Some("basic eA==")
        );
        // Another port, scheme or host (also a redirect's target): none.
        assert_eq!(
            auth("https://127.0.0.1:48768/tgit/repo.git/info/refs"),
            None
        );
        assert_eq!(auth("http://127.0.0.1:48767/tgit/repo.git/info/refs"), None);
        assert_eq!(
            auth("https://localhost:48767/tgit/repo.git/info/refs"),
            None
        );
        assert_eq!(auth("https://127.0.0.1:48767.evil/x"), None);
        assert_eq!(auth("not a url"), None);
        // None given: none sent.
        let plain = Fetch::new("https://h/r.git", "", false, Limits::default());
        assert_eq!(plain.authorization("https://h/r.git/info/refs"), None);
    }
}
