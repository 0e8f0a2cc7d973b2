//! The `internal` section: settings only `gatehouse-internal` reads, declared here and parsed
//! by its extension. Every key is optional; `docs/configuration.md` documents them.

use gatehouse_common::config::ByteSize;
use serde::{Deserialize, Serialize};

use crate::cache::StoreSettings;
use crate::events::settings::EventSettings;
use crate::transcode::descriptors::DescriptorSettings;

/// Settings of the internal gateway tier.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InternalSettings {
    /// The most a route handler reads of one service response it must parse (an `envelope`
    /// part): above it the part fails as too large, so memory stays bounded. Default 1MiB.
    pub max_handler_body_bytes: ByteSize,
    /// The response cache that routes opt into with `cache:` (docs/orchestration.md).
    pub cache: StoreSettings,
    /// The protobuf types transcoding reads (docs/transcoding.md): `.proto` files and binary
    /// descriptor sets, paths relative to the config file's directory, compiled at every load.
    /// Default: none (only the built-in `google/*` files).
    pub descriptors: DescriptorSettings,
    /// The event broker of the `publish`, `job_status` and `event_stream` handlers
    /// (docs/events.md). Default: none (those routes answer 503).
    pub events: EventSettings,
}

impl Default for InternalSettings {
    fn default() -> Self {
        InternalSettings {
            max_handler_body_bytes: ByteSize::new(1024 * 1024),
            cache: StoreSettings::default(),
            descriptors: DescriptorSettings::default(),
            events: EventSettings::default(),
        }
    }
}
