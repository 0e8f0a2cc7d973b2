//! A service on a Unix domain socket (a sidecar's local app may listen on one).

use std::convert::Infallible;

use gatehouse_common::body::full;
use gatehouse_tests::{Client, start};
use http::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};

#[tokio::test]
async fn proxies_to_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.sock");
    let listener = tokio::net::UnixListener::bind(&path).expect("bind unix socket");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    |req: http::Request<hyper::body::Incoming>| async move {
                        let host = req
                            .headers()
                            .get("host")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        Ok::<_, Infallible>(Response::new(full(format!(
                            "unix app saw {} for {host}",
                            req.uri().path()
                        ))))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    for protocol in ["http1", "h2c"] {
        let yaml = format!(
            "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nroutes: [{{ name: app, service: app }}]\nservices:\n  app: {{ unix_socket: \"{}\", protocol: {protocol} }}\n",
            path.display()
        );
        let proxy = start(&yaml).await;
        let addr = proxy.addr("main").await.expect("listener");
        let (s, _, body) = Client::http1().get(&format!("http://{addr}/hello")).await;
        assert_eq!(s, StatusCode::OK, "{protocol}");
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!("unix app saw /hello for {addr}"),
            "{protocol}: path and the client's Host arrive"
        );
    }
}

#[test]
fn unix_socket_excludes_endpoints() {
    let yaml = "listeners: [{ name: main, address: \"127.0.0.1:0\" }]\nservices:\n  app: { unix_socket: /tmp/x.sock, endpoints: [\"127.0.0.1:1\"] }\n";
    let loaded = gatehouse_common::config::parse::<gatehouse_common::settings::ProxySettings>(
        "t.yaml", yaml,
    )
    .expect("parses");
    let err = gatehouse_common::plan::Plan::build(loaded.value, &loaded.source, None)
        .expect_err("refused");
    assert!(err.to_string().contains("use only one of"), "{err}");
}
