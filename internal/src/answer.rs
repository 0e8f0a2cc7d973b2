//! What an orchestration route does with the JSON answer its handler produced: the shared
//! response cache (`cache`), and XML for clients whose `Accept` prefers it (`xml`). Built once
//! per route; the same for `aggregate` and `proxy` routes.
//!
//! Order per request: the client's `Accept` is checked first (406 before any upstream work),
//! then the cache answers or the handler produces (the cache holds the JSON), then the JSON is
//! rendered as XML when that is the format chosen. Only 2xx JSON answers are rendered: errors
//! stay `application/problem+json`, which every client of this gateway already handles.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use gatehouse_common::body::{ProxyBody, full};
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::forward::Forward;
use gatehouse_common::handler::HandlerBuild;
use http::header::{self, HeaderValue};
use http::{Response, request};

use crate::cache::{CacheSettings, Fetched, RouteCache, Store};
use crate::fetch::{read_limited, rewrite_json};
use crate::xml::{self, Format, XmlSettings};

/// The deepest XML request body taken: deeper documents are refused with 400.
const MAX_XML_DEPTH: usize = 64;

/// One route's answer stage.
#[derive(Debug)]
pub struct Answer {
    cache: Option<RouteCache>,
    xml: Option<Xml>,
    /// The most read of a body this stage must parse (XML in, JSON out to XML).
    max_body: u64,
}

#[derive(Debug)]
struct Xml {
    root: String,
    accept_body: bool,
}

impl Answer {
    /// Checks the route's `cache` and `xml` arguments (at `<handler key>.cache`, `.xml`).
    pub fn build(
        cx: &HandlerBuild<'_>,
        cache: Option<&CacheSettings>,
        xml: Option<&XmlSettings>,
        store: &Arc<Store>,
        max_body: u64,
    ) -> Result<Answer, ConfigError> {
        let cache = match cache {
            Some(c) => {
                c.validate()
                    .map_err(|e| cx.error(&format!("cache.{}", e.key), e.message))?;
                Some(RouteCache::new(store.clone(), cx.route, c))
            }
            None => None,
        };
        let xml = match xml {
            Some(x) => {
                x.validate()
                    .map_err(|e| cx.error(&format!("xml.{}", e.key), e.message))?;
                Some(Xml {
                    root: x.root.clone(),
                    accept_body: x.accept_xml_body,
                })
            }
            None => None,
        };
        Ok(Answer {
            cache,
            xml,
            max_body,
        })
    }

    /// Whether the route renders XML (its handler must then ask services for JSON).
    pub fn renders_xml(&self) -> bool {
        self.xml.is_some()
    }

    /// The format the client gets, or 406 when its `Accept` allows neither.
    pub fn format(&self, req: &request::Parts) -> Result<Format, ProxyError> {
        match &self.xml {
            Some(_) => xml::negotiate(req.headers.get(header::ACCEPT), true)
                .map_err(|e| ProxyError::NotAcceptable { offered: e.offered }),
            // Without `xml`, the route answers what its services answer: `Accept` is theirs.
            None => Ok(Format::Json),
        }
    }

    /// The request body as the route's services take it: an XML body (when the route takes
    /// XML) becomes JSON; anything else streams through untouched.
    pub async fn request_body(
        &self,
        req: &mut request::Parts,
        body: ProxyBody,
    ) -> Result<ProxyBody, ProxyError> {
        let takes_xml = self.xml.as_ref().is_some_and(|x| x.accept_body);
        if !takes_xml || !xml::is_xml_content_type(req.headers.get(header::CONTENT_TYPE)) {
            return Ok(body);
        }
        let data = read_limited(body, self.max_body)
            .await
            .map_err(|source| ProxyError::ClientBody { source })?
            .ok_or(ProxyError::BodyTooLarge {
                limit: self.max_body,
            })?;
        let value = xml::from_xml(&data, MAX_XML_DEPTH).map_err(|e| ProxyError::BadRequest {
            reason: format!("the XML body cannot be read: {e}"),
        })?;
        let json = Bytes::from(value.to_string());
        let h = &mut req.headers;
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(json.len()));
        Ok(full(json))
    }

    /// Answers from the cache or from `produce`, in the client's format.
    pub async fn serve<F, Fut>(
        &self,
        req: &request::Parts,
        host: Option<&str>,
        forward: &Forward,
        format: Format,
        produce: F,
    ) -> Result<Response<ProxyBody>, ProxyError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
    {
        let res = match &self.cache {
            Some(cache) => {
                let produce = || async { produce().await.map(Fetched::from) };
                cache.serve(req, host, forward.remaining(), produce).await?
            }
            None => produce().await?,
        };
        let mut res = match (&self.xml, format) {
            (Some(x), Format::Xml) => self.render_xml(res, &x.root).await?,
            _ => res,
        };
        if self.xml.is_some() {
            // The representation depends on `Accept`: say so to every cache on the way back.
            res.headers_mut()
                .append(header::VARY, HeaderValue::from_static("accept"));
        }
        Ok(res)
    }

    /// A 2xx JSON answer as XML; anything else as it is.
    async fn render_xml(
        &self,
        res: Response<ProxyBody>,
        root: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let ct = Some("application/xml; charset=utf-8");
        rewrite_json(res, self.max_body, "xml rendering", ct, |value| {
            Bytes::from(xml::to_xml(&value, root))
        })
        .await
    }
}
