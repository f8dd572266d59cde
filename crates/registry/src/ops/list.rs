//! Paginated lists: tags, the catalog, and referrers (API or the tag-schema fallback).

use lw_oci::{media, Descriptor, Digest, Index};

use super::manifest::ManifestFlow;
use super::{pull_scope, Document, LIST_BODY_LIMIT};
use crate::auth::Scope;
use crate::exchange::Spec;
use crate::http::{append_query, link_next, resolve_url, Method, ResponseHead};
use crate::names::{referrers_tag, TagOrDigest};
use crate::op::{public_op, Flow, Next, Plan, Runner};
use crate::{Client, Error};

pub(crate) struct ListFlow {
    url: Option<String>,
    first_url: String,
    scopes: Vec<Scope>,
    key: &'static str,
    page_size: Option<u32>,
    items: Vec<String>,
    pages: u32,
    what: String,
}

impl Flow for ListFlow {
    type Output = Vec<String>;
    fn next(&mut self, _client: &Client) -> Result<Next<Vec<String>>, Error> {
        match self.url.take() {
            Some(url) => Ok(Next::Request(
                Spec::new(Method::Get, url, self.scopes.clone())
                    .header("Accept", "application/json"),
            )),
            None => Ok(Next::Done(std::mem::take(&mut self.items))),
        }
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        Ok(if head.status == 200 {
            Plan::Collect {
                limit: LIST_BODY_LIMIT,
                what: self.what.clone(),
            }
        } else {
            Plan::Fail
        })
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| Error::InvalidDocument {
                what: self.what.clone(),
                message: e.to_string(),
            })?;
        let page: Vec<String> = match v.get(self.key) {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => {
                return Err(Error::InvalidDocument {
                    what: self.what.clone(),
                    message: format!("`{}` is not a list", self.key),
                })
            }
        };
        self.pages += 1;
        let prev_last = self.items.last().cloned();
        let progressed = page.last().is_some_and(|l| Some(l) != prev_last.as_ref())
            && !page.iter().all(|t| self.items.contains(t));
        let n_page = page.len();
        for t in page {
            if !self.items.contains(&t) {
                self.items.push(t);
            }
        }
        if !progressed || self.pages >= 10_000 {
            return Ok(());
        }
        let current = self.first_url.clone();
        if let Some(next) = head.header("link").and_then(link_next) {
            self.url = Some(resolve_url(&current, &next));
        } else if let Some(n) = self.page_size {
            // `Link` may be hidden from browsers: a full page means there may be more; ask past the last one.
            if n > 0 && n_page >= n as usize {
                let base = current.split('?').next().unwrap_or(&current).to_string();
                let url = append_query(&base, "n", &n.to_string());
                self.url = Some(append_query(
                    &url,
                    "last",
                    self.items.last().map(String::as_str).unwrap_or(""),
                ));
            }
        }
        Ok(())
    }
}

public_op!(
    /// `GET /v2/<name>/tags/list`, following `Link: <…>; rel="next"` pagination.
    ListTags, ListFlow, Vec<String>
);

public_op!(
    /// `GET /v2/_catalog`, following `Link` pagination.
    Catalog, ListFlow, Vec<String>
);

impl ListTags {
    /// Ask for pages of `n` entries (`?n=`).
    pub fn page_size(mut self, n: u32) -> Self {
        set_page_size(self.0.flow_mut(), n);
        self
    }
}

impl Catalog {
    /// Ask for pages of `n` entries (`?n=`).
    pub fn page_size(mut self, n: u32) -> Self {
        set_page_size(self.0.flow_mut(), n);
        self
    }
}

fn set_page_size(f: &mut ListFlow, n: u32) {
    f.page_size = Some(n);
    let base = f.first_url.split('?').next().unwrap_or("").to_string();
    f.first_url = append_query(&base, "n", &n.to_string());
    f.url = Some(f.first_url.clone());
}

enum RefState {
    Api,
    Fallback(Box<ManifestFlow>),
}

pub(crate) struct ReferrersFlow {
    repo: String,
    subject: Digest,
    artifact_type: Option<String>,
    state: RefState,
    url: Option<String>,
    first_url: String,
    found: Vec<Descriptor>,
    pages: u32,
    done: bool,
    max: u64,
}

impl ReferrersFlow {
    fn filter_in(&self, d: &Descriptor) -> bool {
        match &self.artifact_type {
            Some(a) => d.artifact_type.as_deref() == Some(a.as_str()),
            None => true,
        }
    }

    /// Keeps the descriptors of the wanted artifact type (from the API or the fallback index).
    fn add_matching(&mut self, manifests: Vec<Descriptor>) {
        let keep: Vec<Descriptor> = manifests
            .into_iter()
            .filter(|d| self.filter_in(d))
            .collect();
        self.found.extend(keep);
    }
}

impl Flow for ReferrersFlow {
    type Output = Vec<Descriptor>;
    fn next(&mut self, client: &Client) -> Result<Next<Vec<Descriptor>>, Error> {
        if self.done {
            return Ok(Next::Done(std::mem::take(&mut self.found)));
        }
        match &mut self.state {
            RefState::Api => match self.url.take() {
                Some(url) => Ok(Next::Request(
                    Spec::new(Method::Get, url, pull_scope(&self.repo))
                        .header("Accept", media::OCI_INDEX),
                )),
                None => Ok(Next::Done(std::mem::take(&mut self.found))),
            },
            RefState::Fallback(m) => match m.next(client)? {
                Next::Done(got) => {
                    if let Some(Document::Index(idx)) = got.map(|g| g.document) {
                        self.add_matching(idx.manifests);
                    }
                    Ok(Next::Done(std::mem::take(&mut self.found)))
                }
                other => Ok(other.map_done()),
            },
        }
    }
    fn on_head(&mut self, head: &ResponseHead) -> Result<Plan, Error> {
        match &mut self.state {
            RefState::Fallback(m) => m.on_head(head),
            RefState::Api => Ok(match head.status {
                200 => Plan::Collect {
                    limit: self.max,
                    what: format!("referrers of {}@{}", self.repo, self.subject),
                },
                404 => Plan::Discard,
                _ => Plan::Fail,
            }),
        }
    }
    fn on_collected(&mut self, head: ResponseHead, body: Vec<u8>) -> Result<(), Error> {
        if let RefState::Fallback(m) = &mut self.state {
            return m.on_collected(head, body);
        }
        if head.status == 404 {
            // No referrers API: fall back to the referrers tag schema.
            let tag = TagOrDigest::Tag(referrers_tag(&self.subject));
            self.state = RefState::Fallback(Box::new(ManifestFlow {
                repo: self.repo.clone(),
                reference: tag,
                max: self.max,
                missing_ok: true,
                sent: false,
                result: None,
            }));
            return Ok(());
        }
        let idx: Index = serde_json::from_slice(&body).map_err(|e| Error::InvalidDocument {
            what: format!("referrers of {}@{}", self.repo, self.subject),
            message: e.to_string(),
        })?;
        self.add_matching(idx.manifests);
        self.pages += 1;
        if let Some(next) = head.header("link").and_then(link_next) {
            if self.pages < 10_000 {
                self.url = Some(resolve_url(&self.first_url, &next));
            }
        }
        Ok(())
    }
}

impl<T> Next<T> {
    /// Re-type a non-`Done` step.
    fn map_done<U>(self) -> Next<U> {
        match self {
            Next::Request(s) => Next::Request(s),
            Next::Sleep(d) => Next::Sleep(d),
            Next::Done(_) => unreachable!("map_done on Done"),
        }
    }
}

public_op!(
    /// `GET /v2/<name>/referrers/<digest>` with `Link` pagination; falls back to the referrers tag schema when
    /// the registry has no referrers API (404). Filters by `artifactType` itself when asked to (the registry's
    /// `OCI-Filters-Applied` header may be hidden).
    Referrers, ReferrersFlow, Vec<Descriptor>
);

impl Client {
    /// List a repository's tags.
    pub fn list_tags(&self, repo: &str) -> Result<ListTags, Error> {
        Self::check(repo)?;
        let url = self.v2_url(&format!("{repo}/tags/list"));
        Ok(ListTags(Runner::new(
            self.clone(),
            ListFlow {
                url: Some(url.clone()),
                first_url: url,
                scopes: pull_scope(repo),
                key: "tags",
                page_size: None,
                items: Vec::new(),
                pages: 0,
                what: format!("tag list of {repo}"),
            },
        )))
    }

    /// List the registry's repositories.
    pub fn catalog(&self) -> Catalog {
        let url = self.v2_url("_catalog");
        Catalog(Runner::new(
            self.clone(),
            ListFlow {
                url: Some(url.clone()),
                first_url: url,
                scopes: vec![Scope::new("registry", "catalog", &["*"])],
                key: "repositories",
                page_size: None,
                items: Vec::new(),
                pages: 0,
                what: "catalog".into(),
            },
        ))
    }

    /// List the manifests whose `subject` is `digest`, optionally only those of one artifact type.
    pub fn referrers(
        &self,
        repo: &str,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, Error> {
        Self::check(repo)?;
        let mut url = self.v2_url(&format!("{repo}/referrers/{digest}"));
        if let Some(a) = artifact_type {
            url = append_query(&url, "artifactType", a);
        }
        Ok(Referrers(Runner::new(
            self.clone(),
            ReferrersFlow {
                repo: repo.to_string(),
                subject: digest.clone(),
                artifact_type: artifact_type.map(str::to_string),
                state: RefState::Api,
                url: Some(url.clone()),
                first_url: url,
                found: Vec::new(),
                pages: 0,
                done: false,
                max: self.config().max_manifest_size,
            },
        )))
    }
}
