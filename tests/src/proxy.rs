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
