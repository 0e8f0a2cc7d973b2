//! Negotiation by `Accept`, and which request bodies are XML.

use http::HeaderValue;

use crate::xml::*;

#[test]
fn negotiates() {
    use Format::{Json, Xml};
    let cases: Vec<(Option<&str>, bool, Option<Format>)> = vec![
        (None, true, Some(Json)),
        (Some(""), true, Some(Json)),
        (Some("*/*"), true, Some(Json)),
        (Some("application/json"), true, Some(Json)),
        (Some("application/xml"), true, Some(Xml)),
        (Some("application/xml"), false, None),
        (Some("text/xml"), true, Some(Xml)),
        (Some("APPLICATION/XML"), true, Some(Xml)),
        (Some("application/xml, */*;q=0.5"), true, Some(Xml)),
        (Some("application/xml, */*;q=0.5"), false, Some(Json)),
        (Some("application/xml, */*"), true, Some(Xml)),
        (Some("application/json, application/xml"), true, Some(Json)),
        (Some("application/xml, application/json"), true, Some(Json)),
        (
            Some("application/xml;q=0.9, application/json;q=0.8"),
            true,
            Some(Xml),
        ),
        (
            Some("application/json;q=0.5, application/xml"),
            true,
            Some(Xml),
        ),
        (
            Some("application/xml; charset=utf-8; q=0.8, application/json; q=0.7"),
            true,
            Some(Xml),
        ),
        (Some("application/*"), true, Some(Json)),
        (Some("application/*, text/xml"), true, Some(Xml)),
        (Some("text/*"), true, Some(Xml)),
        (Some("text/*"), false, None),
        (Some("text/html"), true, None),
        (Some("text/html, */*;q=0.1"), true, Some(Json)),
        (Some("application/json;q=0"), true, None),
        (Some("application/json;q=0, */*"), true, Some(Xml)),
        (Some("application/json;q=0, */*"), false, None),
        (Some("*/*;q=0"), true, None),
        (Some("*/*;q=0, application/json"), false, Some(Json)),
        (Some("application/xml;q=0.5, text/xml"), true, Some(Xml)),
        (Some("application/xml;q=0, text/*"), true, Some(Xml)),
        (
            Some("application/xml;q=0, application/json;q=0.001"),
            true,
            Some(Json),
        ),
        (Some("application/json;q=2"), true, Some(Json)),
        (
            Some("application/xml;q=abc, application/json;q=0.1"),
            true,
            Some(Json),
        ),
        (
            Some("application/xml;q=1.000, application/json;q=1.0"),
            true,
            Some(Json),
        ),
        (Some("garbage"), true, Some(Json)),
        (Some(" , ,"), true, Some(Json)),
        (Some("*/json"), true, Some(Json)),
        (
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            true,
            Some(Xml),
        ),
        (
            Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
            false,
            Some(Json),
        ),
    ];
    for (accept, xml, want) in cases {
        let header = accept.map(HeaderValue::from_static);
        let got = negotiate(header.as_ref(), xml).ok();
        assert_eq!(got, want, "{accept:?} xml={xml}");
    }
    let opaque = HeaderValue::from_bytes(b"\xff").expect("opaque header");
    assert_eq!(negotiate(Some(&opaque), true), Ok(Json));
    assert_eq!(
        negotiate(Some(&HeaderValue::from_static("text/html")), true),
        Err(NotAcceptable {
            offered: "application/json, application/xml"
        })
    );
    assert_eq!(
        negotiate(Some(&HeaderValue::from_static("text/html")), false).map_err(|e| e.to_string()),
        Err(
            "none of the media types in Accept can be served; this route answers application/json"
                .into()
        )
    );
    assert_eq!(Json.content_type(), "application/json");
    assert_eq!(Xml.content_type(), "application/xml");
}

#[test]
fn xml_content_types() {
    let cases = [
        ("application/xml", true),
        ("application/xml; charset=utf-8", true),
        ("Text/XML", true),
        ("application/atom+xml", true),
        ("application/json", false),
        ("text/plain", false),
        ("application/+xml", false),
        ("xml", false),
    ];
    for (ct, want) in cases {
        assert_eq!(
            is_xml_content_type(Some(&HeaderValue::from_static(ct))),
            want,
            "{ct}"
        );
    }
    assert!(!is_xml_content_type(None));
}
