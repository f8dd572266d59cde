//! The sans-I/O client of git's HTTP protocols: [`Fetch::step`] says which request it needs next, the host makes
//! it and hands the answer back with [`Fetch::answer_with`], until the checkout is done. It first asks for
//! `info/refs?service=git-upload-pack` (with `Git-Protocol: version=2`): a smart server answers with its
//! advertisement, and the client then POSTs `ls-refs` and `fetch` (protocol v2) or its want list (v0/v1) to
//! `git-upload-pack` and reads the one pack back; a dumb server answers with its static `info/refs`, and the
//! client then asks for the files it needs (`HEAD`, `objects/info/packs`, a pack's `.idx` and `.pack`, a loose
//! object). The work restarts from the top after each answer; everything fetched and parsed is kept, so a restart
//! only redoes lookups.

use std::collections::HashMap;
use std::rc::Rc;

use crate::checkout;
use crate::object::{self, Kind, Oid};
use crate::pack::{apply_delta, Index, Pack, Raw};
use crate::refs::{self, Head, Refs};
use crate::smart::{self, Advert};
use crate::{packin, Checkout, Error, Limits};

/// HTTP headers of a request, (name, value).
pub type Headers = Vec<(String, String)>;

/// What the client wants next.
#[derive(Debug)]
pub enum Next {
    /// GET this URL with these headers and [`Fetch::answer_with`] it.
    Get { url: String, headers: Headers },
    /// POST `body` to this URL with these headers and [`Fetch::answer_with`] the answer.
    Post {
        url: String,
        headers: Headers,
        body: Vec<u8>,
    },
    /// The checkout is ready.
    Done(Checkout),
}

/// A request of the smart protocol, answered under `stage`.
pub(crate) struct Call {
    stage: &'static str,
    url: String,
    headers: Headers,
    body: Option<Vec<u8>>,
}

/// Why a run stopped: a file or a smart request is needed, or the fetch failed.
pub(crate) enum Stop {
    Need(String),
    Call(Call),
    Fail(Error),
}

/// How the server speaks, once its `info/refs` answered.
#[derive(Clone)]
enum Proto {
    Dumb,
    Smart(Advert),
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
    proto: Option<Proto>,
    /// The smart request waiting for its answer: its URL and stage.
    pending: Option<(String, &'static str)>,
    /// Smart answers by stage: (content type, body; `None` for a 404).
    calls: HashMap<&'static str, (Option<String>, Option<Vec<u8>>)>,
    /// The object a smart fetch asks for (once the references are read), and whether its pack is in.
    want: Option<Oid>,
    received: bool,
    progress: Vec<String>,
    /// The remote is a pipe to `git-upload-pack` (SSH), not HTTP: see [`Fetch::over_pipe`].
    pipe: bool,
    /// The full name and id of the reference asked for by name (what a kept `.git` records, as BuildKit's).
    named: Option<(String, Oid)>,
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
            proto: None,
            pending: None,
            calls: HashMap::new(),
            want: None,
            received: false,
            progress: Vec::new(),
            pipe: false,
            named: None,
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

    pub(crate) fn remote(&self) -> &str {
        &self.remote
    }

    /// The reference asked for by name: its full name and the id it names.
    pub(crate) fn named(&self) -> Option<&(String, Oid)> {
        self.named.as_ref()
    }

    /// A fetch from `git-upload-pack` over a pipe (the host runs it through SSH): the same requests, read as the
    /// pack protocol's two exchanges. The [`Next::Get`] of `info/refs?service=git-upload-pack` is the
    /// advertisement the program writes first (its pkt-lines up to the flush); the [`Next::Post`] to
    /// `git-upload-pack` is the request to write to it, answered by all it writes until it exits. Protocol v0:
    /// no `Git-Protocol` reaches the program.
    pub fn over_pipe(remote: &str, reference: &str, keep_git_dir: bool, limits: Limits) -> Fetch {
        Fetch {
            pipe: true,
            ..Fetch::new(remote, reference, keep_git_dir, limits)
        }
    }

    /// The server's progress messages (side-band 2) since the last call, one line each.
    pub fn progress(&mut self) -> Vec<String> {
        std::mem::take(&mut self.progress)
    }

    /// `headers` with the `Authorization` the remote's own origin gets (see [`Fetch::authorization`]).
    fn authorized(&self, url: &str, mut headers: Headers) -> Headers {
        if let Some(a) = self.authorization(url) {
            headers.push(("Authorization".into(), a.to_string()));
        }
        headers
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.remote)
    }

    /// The next file to fetch, or the checkout.
    pub fn step(&mut self) -> Result<Next, Error> {
        match self.run() {
            Ok(c) => Ok(Next::Done(c)),
            Err(Stop::Need(path)) => {
                let url = self.url(&path);
                Ok(Next::Get {
                    headers: self.authorized(&url, Vec::new()),
                    url,
                })
            }
            Err(Stop::Call(c)) => {
                self.pending = Some((c.url.clone(), c.stage));
                let headers = self.authorized(&c.url, c.headers);
                Ok(match c.body {
                    Some(body) => Next::Post {
                        url: c.url,
                        headers,
                        body,
                    },
                    None => Next::Get {
                        url: c.url,
                        headers,
                    },
                })
            }
            Err(Stop::Fail(e)) => Err(e),
        }
    }

    /// [`Fetch::answer_with`] without a content type (the body tells a smart advertisement from a dumb file).
    pub fn answer(&mut self, url: &str, body: Option<Vec<u8>>) -> Result<(), Error> {
        self.answer_with(url, None, body)
    }

    /// The answer to the request for `url` ([`Next::Get`] or [`Next::Post`]): its `Content-Type` when the host
    /// has it, and its body, or `None` when the server answered 404 Not Found.
    pub fn answer_with(
        &mut self,
        url: &str,
        content_type: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let n = body.as_ref().map_or(0, |b| b.len() as u64);
        if let Some((_, stage)) = self.pending.take_if(|(u, _)| u == url) {
            self.count(n)?;
            let ct = content_type.map(|t| t.split(';').next().unwrap_or("").trim().to_string());
            self.calls.insert(stage, (ct, body));
            return Ok(());
        }
        let path = url
            .strip_prefix(&self.remote)
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(|| Error::Bad {
                what: url.to_string(),
                msg: format!("not a file of {}", self.remote),
            })?
            .to_string();
        self.count(n)?;
        self.answers.insert(path, body.map(Rc::new));
        Ok(())
    }

    fn count(&mut self, n: u64) -> Result<(), Error> {
        self.fetched = self.fetched.saturating_add(n);
        if self.fetched > self.limits.max_fetch {
            return Err(Error::TooLarge {
                what: "the files fetched".into(),
                limit: self.limits.max_fetch,
            });
        }
        Ok(())
    }

    /// The answer of smart request `stage`, a stop until it is made.
    fn call(
        &mut self,
        stage: &'static str,
        path: &str,
        headers: Headers,
        body: Option<Vec<u8>>,
    ) -> R<(Option<String>, Option<Vec<u8>>)> {
        match self.calls.remove(stage) {
            Some(a) => Ok(a),
            None => Err(Stop::Call(Call {
                stage,
                url: self.url(path),
                headers,
                body,
            })),
        }
    }

    /// Which protocol the server speaks: the first request, as git makes it.
    fn proto(&mut self) -> R<Proto> {
        if let Some(p) = &self.proto {
            return Ok(p.clone());
        }
        let v2 = vec![("Git-Protocol".to_string(), "version=2".to_string())];
        let (ct, body) = self.call("info/refs", "info/refs?service=git-upload-pack", v2, None)?;
        let body = body.ok_or(Error::NotDumb)?;
        // Over a pipe the program's first words are its advertisement (no service line to recognise).
        let smart = self.pipe
            || match ct.as_deref() {
                Some(t) => t == smart::ADVERTISEMENT,
                None => smart::sniffs_smart(&body),
            };
        let p = if smart {
            Proto::Smart(smart::advertisement(&body)?)
        } else {
            self.answers.insert("info/refs".into(), Some(Rc::new(body)));
            Proto::Dumb
        };
        self.proto = Some(p.clone());
        Ok(p)
    }

    /// POST a smart request to `git-upload-pack`; the answer's body.
    fn upload_pack(&mut self, stage: &'static str, advert: &Advert, body: Vec<u8>) -> R<Vec<u8>> {
        let mut headers = vec![
            ("Content-Type".to_string(), smart::REQUEST.to_string()),
            ("Accept".to_string(), smart::RESULT.to_string()),
        ];
        if advert.version == 2 {
            headers.push(("Git-Protocol".into(), "version=2".into()));
        }
        let (ct, answer) = self.call(stage, "git-upload-pack", headers, Some(body))?;
        let bad = |msg: String| Error::Bad {
            what: format!("{}/git-upload-pack ({stage})", self.remote),
            msg,
        };
        if let Some(t) = ct.filter(|t| t != smart::RESULT) {
            return Err(bad(format!("the answer is {t}, not {}", smart::RESULT)).into());
        }
        Ok(answer.ok_or_else(|| bad("the server answered 404 Not Found".into()))?)
    }

    /// The smart protocol: the reference resolved (v0's advertisement or v2's `ls-refs`), then its one pack
    /// fetched (shallow where the server allows) and read. The object the reference names.
    fn smart(&mut self, advert: &Advert) -> R<Oid> {
        if let (Some(id), true) = (self.want, self.received) {
            return Ok(id);
        }
        let want = match self.want.or_else(|| Oid::from_hex(&self.reference)) {
            Some(id) => id,
            None => {
                let refs = if advert.version == 2 {
                    let req = smart::ls_refs(advert, &self.reference)?;
                    smart::ls_refs_answer(&self.upload_pack("ls-refs", advert, req)?)?
                } else {
                    advert.refs.clone()
                };
                let head = self.reference.is_empty() || self.reference == "HEAD";
                let id = if head {
                    refs.names.get("HEAD").copied()
                } else {
                    self.named = refs.resolve_name(&self.reference);
                    self.named.as_ref().map(|(_, id)| *id)
                };
                id.ok_or_else(|| Error::NoRef(self.reference.clone()))?
            }
        };
        self.want = Some(want);
        let req = smart::fetch(advert, &want, true)?;
        let answer = self.upload_pack("fetch", advert, req)?;
        let got = smart::fetch_answer(
            advert.version,
            &answer,
            self.limits.max_fetch,
            &mut self.progress,
        )?;
        drop(answer);
        let r = packin::receive(got.pack, &self.limits)?;
        let name = r.pack.name.trim_end_matches(".pack").to_string();
        self.answers
            .insert(format!("objects/pack/{name}.idx"), Some(Rc::new(r.idx)));
        self.packs.insert(name, r.pack);
        self.objects.extend(r.objects);
        self.received = true;
        Ok(want)
    }

    /// The file at `path`: `Ok(None)` for one the server does not have, a stop until it is fetched.
    fn get(&self, path: &str) -> R<Option<Rc<Vec<u8>>>> {
        match self.answers.get(path) {
            Some(b) => Ok(b.clone()),
            None => Err(Stop::Need(path.to_string())),
        }
    }

    fn run(&mut self) -> R<Checkout> {
        if !self.pipe && !self.remote.starts_with("http://") && !self.remote.starts_with("https://")
        {
            return Err(Error::Scheme(self.remote.clone()).into());
        }
        let start = match self.proto()? {
            Proto::Smart(advert) => self.smart(&advert)?,
            Proto::Dumb => self.start()?,
        };
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
        self.named = refs.resolve_name(&self.reference);
        self.named
            .as_ref()
            .map(|(_, id)| *id)
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
        if matches!(self.proto, Some(Proto::Smart(_))) {
            // The one pack the server sent holds everything the checkout reads.
            return Err(Error::Missing(oid.hex()).into());
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
