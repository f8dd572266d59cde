//! One logical request to the registry, carried through authentication (challenge → token → retry), redirects
//! and retries with backoff. Every operation is a sequence of these, so that logic exists once.

use std::time::Duration;

use crate::auth::{
    merge_scopes, scopes_from_challenge, AuthScheme, BearerRealm, Credentials, Scope,
};
use crate::challenge::{parse_all, Challenge};
use crate::error::{is_retryable_status, parse_error_envelope, Error, TransportError};
use crate::http::{
    authority, encode_component, resolve_url, Body, BodyMode, Method, Request, ResponseHead,
};
use crate::Client;

const MAX_REDIRECTS: u32 = 10;
/// Bodies of error answers are read up to this much (for their messages), the rest ignored.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
const TOKEN_BODY_LIMIT: usize = 1024 * 1024;

/// What an operation wants sent.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub method: Method,
    /// Absolute URL without proxy prefix.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Token scopes the request needs.
    pub scopes: Vec<Scope>,
    /// Whether the exchange itself may resend after 408/429/5xx or a connection failure. Off for requests
    /// that are not safe to repeat as such (chunk uploads); their operation restarts at a higher level.
    pub retry: bool,
}

impl Spec {
    pub fn new(method: Method, url: String, scopes: Vec<Scope>) -> Spec {
        Spec {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            scopes,
            retry: true,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Spec {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, body: Body) -> Spec {
        self.body = body;
        self
    }

    pub fn no_retry(mut self) -> Spec {
        self.retry = false;
        self
    }
}

pub(crate) enum ExStep {
    Send(Request),
    Sleep(Duration),
    /// The final response was delivered; nothing more to do.
    Idle,
}

pub(crate) enum Handled {
    /// The exchange consumes this response itself; the host handles its body as told.
    Internal(BodyMode),
    /// The response the operation asked for (2xx, or an error status it must judge).
    Final(ResponseHead),
}

#[derive(Debug)]
struct TokenPhase {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Body,
    scopes: Vec<Scope>,
    realm: String,
}

#[derive(Debug)]
enum Phase {
    Main,
    Token(TokenPhase),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Unauthorized,
    Retry,
    TokenOk,
    TokenFail,
}

#[derive(Debug)]
enum State {
    Ready,
    Sleeping(Duration),
    Awaiting,
    /// Dropping the body of a redirect.
    Skip,
    Collect {
        purpose: Purpose,
        head: ResponseHead,
        buf: Vec<u8>,
        limit: usize,
        strict: bool,
    },
    Delivered,
}

pub(crate) struct Exchange {
    client: Client,
    spec: Spec,
    method: Method,
    drop_body: bool,
    url: String,
    phase: Phase,
    state: State,
    retries: u32,
    redirects: u32,
    token_fetches: u32,
    basic_tried: bool,
    sent_token: Option<String>,
}

fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

fn retry_after(head: &ResponseHead) -> Option<Duration> {
    // Only the delta-seconds form: HTTP dates would need a clock.
    head.header("retry-after")?
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

fn envelope_summary(body: &[u8]) -> Option<String> {
    let errs = parse_error_envelope(body)?;
    Some(
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

impl Exchange {
    pub fn new(client: Client, spec: Spec) -> Exchange {
        Exchange {
            method: spec.method,
            url: spec.url.clone(),
            client,
            spec,
            drop_body: false,
            phase: Phase::Main,
            state: State::Ready,
            retries: 0,
            redirects: 0,
            token_fetches: 0,
            basic_tried: false,
            sent_token: None,
        }
    }

    pub fn method(&self) -> Method {
        self.method
    }

    /// The URL of the main request (after redirects).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn poll(&mut self) -> Result<ExStep, Error> {
        match self.state {
            State::Sleeping(d) => {
                self.state = State::Ready;
                Ok(ExStep::Sleep(d))
            }
            State::Ready => {
                if matches!(self.phase, Phase::Main) {
                    if let Some(realm) = self.should_preauth() {
                        self.start_token(realm, Vec::new());
                    }
                }
                let req = self.build();
                self.state = State::Awaiting;
                Ok(ExStep::Send(req))
            }
            State::Delivered => Ok(ExStep::Idle),
            _ => Err(Error::Misuse("poll() while a response is outstanding")),
        }
    }

    fn same_host_as_registry(&self, url: &str) -> bool {
        authority(url) == authority(self.client.base_url())
    }

    /// Fetch a token before the first request when we already know the registry wants one.
    fn should_preauth(&self) -> Option<BearerRealm> {
        if self.token_fetches > 0
            || matches!(
                self.client.config().credentials,
                Credentials::BearerToken(_)
            )
            || !self.same_host_as_registry(&self.url)
        {
            return None;
        }
        let realm = self.client.known_bearer()?;
        if self.client.state().tokens.find(&self.spec.scopes).is_some() {
            return None;
        }
        Some(realm)
    }

    fn build(&mut self) -> Request {
        match &self.phase {
            Phase::Token(t) => Request {
                method: t.method,
                url: self.client.wire_url(&t.url),
                headers: t.headers.clone(),
                body: t.body.clone(),
            },
            Phase::Main => {
                let mut headers = self.spec.headers.clone();
                self.sent_token = None;
                // Never send our credentials to another host (a CDN a blob redirect points at).
                if self.same_host_as_registry(&self.url) {
                    if let Some((value, token)) = self.client.authorization(&self.spec.scopes) {
                        headers.push(("Authorization".to_string(), value));
                        self.sent_token = token;
                    }
                }
                Request {
                    method: self.method,
                    url: self.client.wire_url(&self.url),
                    headers,
                    body: if self.drop_body {
                        Body::Empty
                    } else {
                        self.spec.body.clone()
                    },
                }
            }
        }
    }

    pub fn on_response(&mut self, head: ResponseHead) -> Result<Handled, Error> {
        if !matches!(self.state, State::Awaiting) {
            return Err(Error::Misuse("on_response() without a request outstanding"));
        }
        let status = head.status;
        if is_redirect(status) {
            if let Some(loc) = head.header("location") {
                if self.redirects >= MAX_REDIRECTS {
                    return Err(Error::Protocol {
                        url: self.current_url().to_string(),
                        message: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                self.redirects += 1;
                let loc = self.client.strip_proxy(loc).to_string();
                match &mut self.phase {
                    Phase::Main => {
                        self.url = resolve_url(&self.url, &loc);
                        if status == 303 && self.method != Method::Head {
                            self.method = Method::Get;
                            self.drop_body = true;
                        }
                    }
                    Phase::Token(t) => t.url = resolve_url(&t.url, &loc),
                }
                self.state = State::Skip;
                return Ok(Handled::Internal(BodyMode::Discard));
            }
        }
        let collect = |purpose, head, limit, strict| State::Collect {
            purpose,
            head,
            buf: Vec::new(),
            limit,
            strict,
        };
        match self.phase {
            Phase::Main => {
                if status == 401 {
                    self.state = collect(Purpose::Unauthorized, head, ERROR_BODY_LIMIT, false);
                } else if is_retryable_status(status)
                    && self.spec.retry
                    && self.retries < self.client.config().retry.max_retries
                {
                    self.state = collect(Purpose::Retry, head, ERROR_BODY_LIMIT, false);
                } else {
                    self.state = State::Delivered;
                    return Ok(Handled::Final(head));
                }
            }
            Phase::Token(_) => {
                if (200..300).contains(&status) {
                    self.state = collect(Purpose::TokenOk, head, TOKEN_BODY_LIMIT, true);
                } else if is_retryable_status(status)
                    && self.retries < self.client.config().retry.max_retries
                {
                    self.state = collect(Purpose::Retry, head, ERROR_BODY_LIMIT, false);
                } else {
                    self.state = collect(Purpose::TokenFail, head, ERROR_BODY_LIMIT, false);
                }
            }
        }
        let mode = BodyMode::Buffer;
        Ok(Handled::Internal(mode))
    }

    fn current_url(&self) -> &str {
        match &self.phase {
            Phase::Token(t) => &t.url,
            Phase::Main => &self.url,
        }
    }

    fn current_method(&self) -> Method {
        match &self.phase {
            Phase::Token(t) => t.method,
            Phase::Main => self.method,
        }
    }

    pub fn on_body(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if let State::Collect {
            buf,
            limit,
            strict,
            purpose,
            ..
        } = &mut self.state
        {
            if buf.len() + chunk.len() > *limit {
                if *strict {
                    return Err(Error::TooLarge {
                        what: match purpose {
                            Purpose::TokenOk => "token response".to_string(),
                            _ => "response".to_string(),
                        },
                        limit: *limit as u64,
                        announced: None,
                    });
                }
                let room = *limit - buf.len();
                buf.extend_from_slice(&chunk[..room]);
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        Ok(())
    }

    pub fn on_body_end(&mut self) -> Result<(), Error> {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::Skip => Ok(()),
            State::Collect {
                purpose, head, buf, ..
            } => match purpose {
                Purpose::Retry => {
                    let err = Error::from_response(
                        self.current_method(),
                        self.current_url(),
                        &head,
                        &buf,
                    );
                    self.retry_or(retry_after(&head), err)
                }
                Purpose::Unauthorized => self.handle_401(&head, &buf),
                Purpose::TokenOk => {
                    let Phase::Token(t) = std::mem::replace(&mut self.phase, Phase::Main) else {
                        return Err(Error::Misuse("token body outside the token phase"));
                    };
                    let resp = crate::auth::parse_token_response(&t.realm, &buf)?;
                    self.client.state().tokens.insert(t.scopes, resp.token);
                    Ok(())
                }
                Purpose::TokenFail => Err(self.token_failure(&head, &buf)),
            },
            other => {
                self.state = other;
                Err(Error::Misuse("on_body_end() without a body being read"))
            }
        }
    }

    /// A connection failure while sending, awaiting the head, or reading a body this exchange (or, once
    /// delivered, its operation) was reading.
    pub fn on_transport_error(&mut self, e: TransportError) -> Result<(), Error> {
        if matches!(self.state, State::Ready | State::Sleeping(_)) {
            return Err(Error::Misuse(
                "on_transport_error() without a request outstanding",
            ));
        }
        let may_retry = e.retryable
            && (self.spec.retry || matches!(self.phase, Phase::Token(_)))
            && self.retries < self.client.config().retry.max_retries;
        let err = Error::Transport {
            method: self.current_method(),
            url: self.current_url().to_string(),
            message: e.message,
            attempts: self.retries + 1,
        };
        if may_retry {
            if matches!(self.state, State::Delivered) {
                // Start over from the original URL: a redirect target may have been short-lived.
                self.url = self.spec.url.clone();
                self.method = self.spec.method;
                self.drop_body = false;
            }
            self.retries += 1;
            self.state = State::Sleeping(self.client.config().retry.backoff(self.retries, None));
            Ok(())
        } else {
            self.state = State::Delivered;
            Err(err)
        }
    }

    fn retry_or(&mut self, after: Option<Duration>, err: Error) -> Result<(), Error> {
        if self.retries < self.client.config().retry.max_retries {
            self.retries += 1;
            self.state = State::Sleeping(self.client.config().retry.backoff(self.retries, after));
            Ok(())
        } else {
            Err(err)
        }
    }

    fn registry(&self) -> String {
        self.client.config().registry.clone()
    }

    /// The response's authentication challenges; when none is readable (a browser without
    /// CORS exposure of the header), the configured token realm, if any.
    fn challenges(&self, head: &ResponseHead) -> Vec<Challenge> {
        let mut challenges: Vec<Challenge> = parse_all(head.headers_named("www-authenticate"));
        if challenges.is_empty() {
            if let Some(hint) = &self.client.config().token_realm {
                let mut params = vec![("realm".to_string(), hint.realm.clone())];
                if let Some(s) = &hint.service {
                    params.push(("service".to_string(), s.clone()));
                }
                challenges.push(Challenge {
                    scheme: "bearer".into(),
                    params,
                    token68: None,
                });
            }
        }
        challenges
    }

    fn handle_401(&mut self, head: &ResponseHead, body: &[u8]) -> Result<(), Error> {
        let challenges = self.challenges(head);
        let detail = envelope_summary(body).unwrap_or_else(|| "401 Unauthorized".to_string());
        let creds = self.client.config().credentials.clone();
        if let Credentials::BearerToken(_) = creds {
            return Err(Error::Unauthorized {
                registry: self.registry(),
                reason: format!("the registry refused the configured token ({detail})"),
            });
        }
        let bearer = challenges
            .iter()
            .find(|c| c.is_bearer() && c.param("realm").is_some_and(|r| !r.is_empty()));
        if let Some(b) = bearer {
            let fresh_token_refused = self.sent_token.is_some() && self.token_fetches > 0;
            if let Some(t) = self.sent_token.take() {
                self.client.state().tokens.remove_token(&t);
            }
            if fresh_token_refused || self.token_fetches >= 2 {
                let scopes: Vec<String> = self.spec.scopes.iter().map(|s| s.to_string()).collect();
                let what = if scopes.is_empty() {
                    "the registry".to_string()
                } else {
                    scopes.join(" ")
                };
                return Err(if creds.is_anonymous() {
                    Error::Unauthorized {
                        registry: self.registry(),
                        reason: format!(
                            "anonymous access to {what} is not allowed; log in first ({detail})"
                        ),
                    }
                } else {
                    Error::Denied {
                        registry: self.registry(),
                        reason: format!("the token issued for {what} was refused ({detail})"),
                    }
                });
            }
            let realm = BearerRealm {
                realm: b.param("realm").unwrap_or_default().to_string(),
                service: b.param("service").map(str::to_string),
            };
            self.client.state().scheme = Some(AuthScheme::Bearer(realm.clone()));
            let extra = b
                .param("scope")
                .map(scopes_from_challenge)
                .unwrap_or_default();
            self.start_token(realm, extra);
            return Ok(());
        }
        let basic = challenges.iter().any(|c| c.is_basic());
        if basic || challenges.is_empty() {
            let hidden = if challenges.is_empty() {
                " (no WWW-Authenticate header was readable: a registry used from a browser must expose it \
                 through Access-Control-Expose-Headers)"
            } else {
                ""
            };
            return match &creds {
                Credentials::Basic { username, .. } => {
                    if !self.basic_tried {
                        self.basic_tried = true;
                        self.client.state().scheme = Some(AuthScheme::Basic);
                        self.state = State::Ready;
                        Ok(())
                    } else {
                        Err(Error::Unauthorized {
                            registry: self.registry(),
                            reason: format!(
                                "the registry refused the password for user {username:?}: wrong username or \
                                 password ({detail})"
                            ),
                        })
                    }
                }
                _ => Err(Error::Unauthorized {
                    registry: self.registry(),
                    reason: format!("the registry requires a username and password; log in first ({detail}){hidden}"),
                }),
            };
        }
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        Err(Error::Unauthorized {
            registry: self.registry(),
            reason: format!(
                "unsupported authentication scheme(s): {}",
                schemes.join(", ")
            ),
        })
    }

    fn start_token(&mut self, realm: BearerRealm, extra: Vec<Scope>) {
        let scopes = merge_scopes(self.spec.scopes.iter().cloned().chain(extra));
        let creds = self.client.config().credentials.clone();
        let mut headers = vec![("Accept".to_string(), "application/json".to_string())];
        let (method, url, body) = match &creds {
            Credentials::RefreshToken { token, .. } => {
                let mut form = format!(
                    "grant_type=refresh_token&refresh_token={}&client_id={}",
                    encode_component(token),
                    encode_component(&self.client.config().client_id)
                );
                if let Some(s) = &realm.service {
                    form.push_str(&format!("&service={}", encode_component(s)));
                }
                if !scopes.is_empty() {
                    let joined: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
                    form.push_str(&format!("&scope={}", encode_component(&joined.join(" "))));
                }
                headers.push((
                    "Content-Type".to_string(),
                    "application/x-www-form-urlencoded".to_string(),
                ));
                (
                    Method::Post,
                    realm.realm.clone(),
                    Body::Bytes(form.into_bytes()),
                )
            }
            _ => {
                let mut url = realm.realm.clone();
                if let Some(s) = &realm.service {
                    url = crate::http::append_query(&url, "service", s);
                }
                for s in &scopes {
                    url = crate::http::append_query(&url, "scope", &s.to_string());
                }
                if let Credentials::Basic { username, .. } = &creds {
                    url = crate::http::append_query(&url, "account", username);
                }
                if let Some(h) = creds.basic_header() {
                    headers.push(("Authorization".to_string(), h));
                }
                (Method::Get, url, Body::Empty)
            }
        };
        self.token_fetches += 1;
        self.phase = Phase::Token(TokenPhase {
            method,
            url,
            headers,
            body,
            scopes,
            realm: realm.realm,
        });
        self.state = State::Ready;
    }

    fn token_failure(&self, head: &ResponseHead, body: &[u8]) -> Error {
        let Phase::Token(t) = &self.phase else {
            return Error::Misuse("token failure outside the token phase");
        };
        if matches!(head.status, 400 | 401 | 403) {
            let detail = envelope_summary(body)
                .or_else(|| {
                    let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                        .trim()
                        .to_string();
                    (!text.is_empty()).then_some(text)
                })
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let who = match &self.client.config().credentials {
                Credentials::Basic { username, .. } => {
                    format!(
                        "refused the password for user {username:?}: wrong username or password"
                    )
                }
                Credentials::RefreshToken { .. } => {
                    "refused the stored identity token; log in again".into()
                }
                _ => "refused anonymous access; log in first".into(),
            };
            return Error::Unauthorized {
                registry: self.registry(),
                reason: format!(
                    "the token server {} {who} ({} {}{detail})",
                    t.realm,
                    head.status,
                    crate::error::reason_phrase(head.status)
                ),
            };
        }
        Error::from_response(t.method, &t.url, head, body)
    }
}
