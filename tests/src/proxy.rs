//! Starting a Gatehouse proxy in-process from a YAML string.

use gatehouse_common::config;
use gatehouse_common::runtime::{self, Running};
use gatehouse_common::settings::ProxySettings;

/// Parses `yaml` (as file `test.yaml`) and starts the proxy core on it; panics on a bad config.
pub async fn start(yaml: &str) -> Running {
    let loaded = config::parse::<ProxySettings>("test.yaml", yaml).expect("test config");
    runtime::run("gatehouse-test", loaded, None)
        .await
        .expect("proxy start")
}

/// A proxy with one plain listener `main`, an admin listener, `limits: { LIMITS }` and one
/// route to a backend that answers `hello`: the connection-handling tests' set-up.
pub async fn with_limits(limits: &str) -> (Running, crate::BackendHandle) {
    let be = crate::Backend::new().route("/", "hello").run().await;
    let yaml = format!(
        "listeners: [{{ name: main, address: \"127.0.0.1:0\" }}]\nadmin: {{ address: \"127.0.0.1:0\" }}\nlimits: {{ {limits} }}\nroutes: [{{ name: all, service: app }}]\nservices:\n  app: {{ endpoints: [\"{}\"] }}\n",
        be.addr
    );
    (start(&yaml).await, be)
}
