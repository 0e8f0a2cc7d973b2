use serde_json::{Value, json};

use super::*;

mod negotiate;

const DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const XSI: &str = r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;

/// What a refused input must be refused as.
type Expect = fn(&XmlError) -> bool;

#[test]
fn renders() {
    let cases: Vec<(&str, Value, &str, String)> = vec![
        (
            "nested objects",
            json!({"order": {"id": "1", "lines": {"sku": "a"}}}),
            "response",
            format!(
                "<response {XSI}><order><id>1</id><lines><sku>a</sku></lines></order></response>"
            ),
        ),
        (
            "an array member",
            json!({"tags": ["a", "b"]}),
            "response",
            format!("<response {XSI}><tags><item>a</item><item>b</item></tags></response>"),
        ),
        (
            "a top-level array",
            json!([1, {"a": true}]),
            "products",
            format!("<products {XSI}><item>1</item><item><a>true</a></item></products>"),
        ),
        (
            "null member",
            json!({"rating": null}),
            "response",
            format!(r#"<response {XSI}><rating xsi:nil="true"/></response>"#),
        ),
        (
            "null document",
            json!(null),
            "r",
            format!(r#"<r {XSI} xsi:nil="true"/>"#),
        ),
        (
            "scalar document",
            json!("hi"),
            "r",
            format!("<r {XSI}>hi</r>"),
        ),
        (
            "escaping",
            json!({"t": "<a href=\"x\">Tom & Jerry's</a>"}),
            "r",
            format!(
                "<r {XSI}><t>&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt;</t></r>"
            ),
        ),
        (
            "non-ASCII as UTF-8",
            json!({"name": "Café ☕"}),
            "r",
            format!("<r {XSI}><name>Café ☕</name></r>"),
        ),
        (
            "numbers as JSON writes them, bools",
            json!({"a": -1.5, "b": 42, "c": 0.1, "d": true, "e": false, "f": 1e300}),
            "r",
            format!(
                "<r {XSI}><a>-1.5</a><b>42</b><c>0.1</c><d>true</d><e>false</e><f>1e+300</f></r>"
            ),
        ),
        (
            "names that are not XML names",
            json!({"1st": 1, "a b": 2, "@id": 3, "xmlns": 4, "XmlThing": 5, "ns:x": 6, "": 7, "-x": 8}),
            "r",
            format!(
                "<r {XSI}><member name=\"\">7</member><member name=\"-x\">8</member>\
                 <member name=\"1st\">1</member><member name=\"@id\">3</member>\
                 <member name=\"XmlThing\">5</member><member name=\"a b\">2</member>\
                 <member name=\"ns:x\">6</member><member name=\"xmlns\">4</member></r>"
            ),
        ),
        (
            "valid names kept, non-ASCII included",
            json!({"café": 1, "unit-price_cents.v2": 2, "_x": 3}),
            "r",
            format!(
                "<r {XSI}><_x>3</_x><café>1</café><unit-price_cents.v2>2</unit-price_cents.v2></r>"
            ),
        ),
        (
            "a name attribute escaped",
            json!({"a\"<&\tb\n": 1}),
            "r",
            format!("<r {XSI}><member name=\"a&quot;&lt;&amp;&#x9;b&#xA;\">1</member></r>"),
        ),
        (
            "CR kept, characters XML cannot carry replaced",
            json!({"s": "a\u{1}b\rc\td\ne\u{FFFF}"}),
            "r",
            format!("<r {XSI}><s>a\u{FFFD}b&#xD;c\td\ne\u{FFFD}</s></r>"),
        ),
        (
            "empty object, array, string",
            json!({"o": {}, "a": [], "s": ""}),
            "r",
            format!("<r {XSI}><a></a><o></o><s></s></r>"),
        ),
        (
            "an invalid root name",
            json!(1),
            "1root",
            format!("<member name=\"1root\" {XSI}>1</member>"),
        ),
    ];
    for (name, value, root, want) in cases {
        assert_eq!(to_xml(&value, root), format!("{DECL}{want}"), "{name}");
    }
    // Numbers are the text serde_json writes for them.
    assert_eq!(
        serde_json::to_string(&json!(1e300)).ok().as_deref(),
        Some("1e+300")
    );
}

#[test]
fn parses() {
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "the demo order: text is always a string",
            "<order><productId>1001</productId><quantity>2</quantity></order>",
            json!({"productId": "1001", "quantity": "2"}),
        ),
        ("nested", "<a><b><c>x</c></b></a>", json!({"b": {"c": "x"}})),
        (
            "a repeated name becomes an array",
            "<o><line>1</line><id>x</id><line>2</line><line>3</line></o>",
            json!({"line": ["1", "2", "3"], "id": "x"}),
        ),
        (
            "repeated objects",
            "<o><p><id>1</id></p><p><id>2</id></p></o>",
            json!({"p": [{"id": "1"}, {"id": "2"}]}),
        ),
        (
            "item lists",
            "<r><tags><item>a</item><item>b</item></tags></r>",
            json!({"tags": ["a", "b"]}),
        ),
        (
            "one item is a list",
            "<r><tags><item>a</item></tags></r>",
            json!({"tags": ["a"]}),
        ),
        (
            "a top-level item list",
            "<products><item><id>1</id></item><item><id>2</id></item></products>",
            json!([{"id": "1"}, {"id": "2"}]),
        ),
        (
            "xsi:nil",
            r#"<r xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><x xsi:nil="true"/><y xsi:nil="false">v</y><z xsi:nil="true"> </z></r>"#,
            json!({"x": null, "y": "v", "z": null}),
        ),
        (
            "empty elements are empty strings",
            "<r><a/><b></b></r>",
            json!({"a": "", "b": ""}),
        ),
        (
            "layout whitespace dropped, text kept exactly",
            "<?xml version=\"1.0\"?>\n<r>\n  <a> padded </a>\n  <b>\n</b>\n</r>\n",
            json!({"a": " padded ", "b": "\n"}),
        ),
        (
            "non-ASCII, entities and character references",
            "<r><n>Café &#x2615; &#9749; &amp; &lt;ok&gt; &quot;&apos;</n></r>",
            json!({"n": "Café ☕ ☕ & <ok> \"'"}),
        ),
        (
            "CDATA is text",
            "<r><c><![CDATA[<not markup> & such]]></c></r>",
            json!({"c": "<not markup> & such"}),
        ),
        (
            "member elements carry their name",
            r#"<r><member name="1st">a</member><member name="a &amp; b">b</member><member>plain</member></r>"#,
            json!({"1st": "a", "a & b": "b", "member": "plain"}),
        ),
        (
            "comments and PIs ignored",
            "<!-- hi --><r><?pi x?><a>1<!-- c --></a></r><!-- bye -->",
            json!({"a": "1"}),
        ),
        ("a UTF-8 BOM", "\u{FEFF}<r>x</r>", json!("x")),
        ("a text document", "<r>just text</r>", json!("just text")),
        (
            "an empty root",
            r#"<?xml version="1.0" encoding="utf-8"?><r/>"#,
            json!(""),
        ),
        (
            "line ends normalized, &#xD; kept",
            "<r><a>a\r\nb</a><b>a&#xD;b</b></r>",
            json!({"a": "a\nb", "b": "a\rb"}),
        ),
        (
            "namespace and xml: attributes accepted, prefixes kept",
            r#"<r xmlns="urn:x" xmlns:p="urn:p" xml:lang="en"><p:a>1</p:a></r>"#,
            json!({"p:a": "1"}),
        ),
    ];
    for (name, xml, want) in cases {
        match from_xml(xml.as_bytes(), 32) {
            Ok(got) => assert_eq!(got, want, "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn refuses() {
    let deep = "<a>".repeat(100_000);
    let cases: Vec<(&str, &[u8], Expect)> = vec![
        (
            "billion laughs",
            br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#,
            |e| matches!(e, XmlError::Doctype),
        ),
        (
            "XXE",
            br#"<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>"#,
            |e| matches!(e, XmlError::Doctype),
        ),
        ("any DOCTYPE", b"<!DOCTYPE r><r/>", |e| matches!(e, XmlError::Doctype)),
        ("an undeclared entity", b"<r>&nbsp;</r>", |e| matches!(e, XmlError::UnknownEntity(n) if n == "nbsp")),
        ("an entity in an attribute", b"<member name=\"&x;\"/>", |e| matches!(e, XmlError::Malformed { .. })),
        ("a NUL character reference", b"<r>&#0;</r>", |e| matches!(e, XmlError::BadCharRef(_))),
        ("a control character reference", b"<r>&#1;</r>", |e| matches!(e, XmlError::BadCharRef(_))),
        ("a bad character reference", b"<r>&#xZZ;</r>", |e| matches!(e, XmlError::BadCharRef(_))),
        ("a dangling ampersand", b"<r>a & b</r>", |e| matches!(e, XmlError::Malformed { .. })),
        ("mismatched end tag", b"<r><a></r>", |e| matches!(e, XmlError::Malformed { .. })),
        ("a stray end tag", b"</r>", |e| matches!(e, XmlError::Malformed { .. })),
        ("an unquoted attribute", b"<r a=1/>", |e| matches!(e, XmlError::Malformed { .. })),
        ("a duplicate attribute", br#"<r xml:lang="a" xml:lang="b"/>"#, |e| matches!(e, XmlError::Malformed { .. })),
        ("unclosed", b"<r><a>1</a>", |e| matches!(e, XmlError::Unclosed(t) if t == "r")),
        ("truncated tag", b"<r><a", |e| matches!(e, XmlError::Malformed { .. })),
        ("too deep", b"<a><b><c><d>x</d></c></b></a>", |e| matches!(e, XmlError::TooDeep { max: 3 })),
        ("very deep", deep.as_bytes(), |e| matches!(e, XmlError::TooDeep { max: 3 })),
        ("not UTF-8", b"<r>\xff\xfe</r>", |e| matches!(e, XmlError::NotUtf8 { position: 3 })),
        ("UTF-16", b"\xff\xfe<\0r\0/\0>\0", |e| matches!(e, XmlError::NotUtf8 { position: 0 })),
        ("garbage", b"\x01\x02 not xml", |e| matches!(e, XmlError::OutsideRoot)),
        ("empty", b"", |e| matches!(e, XmlError::NoRoot)),
        ("whitespace and a comment", b" \n<!-- c -->\n", |e| matches!(e, XmlError::NoRoot)),
        ("text before children", b"<r>text<a>1</a></r>", |e| matches!(e, XmlError::MixedContent(t) if t == "r")),
        ("text after children", b"<r><a>1</a>tail</r>", |e| matches!(e, XmlError::MixedContent(t) if t == "r")),
        ("two roots", b"<a/><b/>", |e| matches!(e, XmlError::OutsideRoot)),
        ("text after the root", b"<a/>x", |e| matches!(e, XmlError::OutsideRoot)),
        ("an entity after the root", b"<a/>&amp;", |e| matches!(e, XmlError::OutsideRoot)),
        (
            "a data attribute",
            br#"<order id="5"><a>1</a></order>"#,
            |e| matches!(e, XmlError::Attribute { element, attribute } if element == "order" && attribute == "id"),
        ),
        ("nil with text", br#"<r><a xsi:nil="true">x</a></r>"#, |e| matches!(e, XmlError::NilWithContent(t) if t == "a")),
        ("nil with a child", br#"<r><a xsi:nil="true"><b/></a></r>"#, |e| matches!(e, XmlError::NilWithContent(t) if t == "a")),
        ("a bad nil", br#"<r xsi:nil="yes"/>"#, |e| matches!(e, XmlError::BadNil(t) if t == "r")),
        (
            "another encoding",
            br#"<?xml version="1.0" encoding="ISO-8859-1"?><r/>"#,
            |e| matches!(e, XmlError::Encoding(enc) if enc == "ISO-8859-1"),
        ),
        ("a late declaration", br#"<r/><?xml version="1.0"?>"#, |e| matches!(e, XmlError::LateDeclaration)),
    ];
    for (name, input, is_expected) in cases {
        match from_xml(input, 3) {
            Ok(v) => panic!("{name}: accepted as {v}"),
            Err(e) => assert!(is_expected(&e), "{name}: {e:?}"),
        }
    }
}

#[test]
fn depth_counts_the_root() {
    let xml = b"<a><b><c>x</c></b></a>";
    assert!(from_xml(xml, 3).is_ok());
    assert!(matches!(
        from_xml(xml, 2),
        Err(XmlError::TooDeep { max: 2 })
    ));
    assert!(matches!(
        from_xml(b"<a/>", 0),
        Err(XmlError::TooDeep { max: 0 })
    ));
}

#[test]
fn error_messages_are_for_clients() {
    let cases: [(&[u8], &str); 4] = [
        (
            b"<!DOCTYPE r><r/>",
            "a DOCTYPE is not accepted (no DTDs, no entity declarations)",
        ),
        (b"<r>t<a/></r>", "`<r>` mixes text with child elements"),
        (
            b"<a><b><c><d/></c></b></a>",
            "elements are nested more than 3 deep",
        ),
        (
            b"<r a=\"1\"/>",
            "attribute `a` on `<r>` is not accepted: data goes in elements",
        ),
    ];
    for (input, want) in cases {
        let err = from_xml(input, 3).expect_err(want);
        assert_eq!(err.to_string(), want);
    }
    let err = from_xml(b"<r><a></r>", 3)
        .expect_err("mismatch")
        .to_string();
    assert!(
        err.starts_with("the body is not well-formed XML (near byte"),
        "{err}"
    );
}

#[test]
fn strings_round_trip() {
    let docs = [
        json!({
            "id": "1001",
            "name": "Café ☕ <&> \"quoted\" 'single'",
            "padded": "  spaces \t tab\nnewline\r\nCRLF ",
            "empty": "",
            "missing": null,
            "tags": ["a", "b", "c"],
            "one": ["only"],
            "lines": [{"sku": "x", "qty": "1"}, {"sku": "y", "qty": "2"}],
            "nested": {"deeper": {"deepest": "z"}},
            "1st": "invalid name",
            "a b": {"@id": "attr-like", "xmlish": "reserved prefix"}
        }),
        json!(["x", {"k": "v"}, null]),
        json!("just text"),
    ];
    for doc in docs {
        let xml = to_xml(&doc, "response");
        match from_xml(xml.as_bytes(), 16) {
            Ok(back) => assert_eq!(back, doc, "{xml}"),
            Err(e) => panic!("{xml}: {e}"),
        }
    }
}

/// No input panics: mutations of a valid document and random bytes, from a fixed seed.
#[test]
fn never_panics() {
    let seed = r#"<?xml version="1.0" encoding="UTF-8"?><r xmlns:xsi="x"><a>1&amp;&#x41;</a><b xsi:nil="true"/><member name="q">t</member><c><item>x</item><![CDATA[y]]></c><!-- c --></r>"#;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"<>/&;#x=\"' !?[]-:abrxmlns\xff\xc3\x00";
    for round in 0..20_000 {
        let mut input = if round % 4 == 0 {
            Vec::new()
        } else {
            seed.as_bytes().to_vec()
        };
        let edits = 1 + next() % 8;
        for _ in 0..edits {
            let byte = alphabet[(next() % alphabet.len() as u64) as usize];
            let at = (next() % (input.len() as u64 + 1)) as usize;
            match next() % 3 {
                0 if at < input.len() => input[at] = byte,
                1 if at < input.len() => {
                    input.remove(at);
                }
                _ => input.insert(at, byte),
            }
        }
        let _ = from_xml(&input, 8);
    }
}

#[test]
fn names() {
    let cases = [
        ("response", true),
        ("order-list", true),
        ("_x.y", true),
        ("café", true),
        ("x1", true),
        ("", false),
        ("1x", false),
        ("-x", false),
        (".x", false),
        ("a b", false),
        ("@id", false),
        ("a:b", false),
        ("xml", false),
        ("XMLthing", false),
        ("xmlns", false),
        ("xm", true),
        ("a\u{0}", false),
    ];
    for (name, want) in cases {
        assert_eq!(is_xml_name(name), want, "{name:?}");
    }
}

#[test]
fn settings() {
    let parsed: XmlSettings = serde_yaml::from_str("{}").expect("empty");
    assert_eq!(
        parsed,
        XmlSettings {
            root: "response".into(),
            accept_xml_body: false
        }
    );
    assert_eq!(parsed.validate(), Ok(()));
    let parsed: XmlSettings =
        serde_yaml::from_str("{root: products, accept_xml_body: true}").expect("set");
    assert_eq!(
        parsed,
        XmlSettings {
            root: "products".into(),
            accept_xml_body: true
        }
    );
    assert!(serde_yaml::from_str::<XmlSettings>("{rot: x}").is_err());
    for bad in ["", "1x", "a:b", "xmlResponse", "a b"] {
        let settings = XmlSettings {
            root: bad.into(),
            accept_xml_body: false,
        };
        let err = settings.validate().expect_err(bad);
        assert_eq!(err.key, "root", "{bad}");
        assert!(
            err.message
                .starts_with(&format!("`{bad}` is not an XML element name")),
            "{err}"
        );
    }
}
