//! The event-driven pattern on NATS JetStream (docs/events.md): `publish` turns a request into
//! a stored message and answers 202 with a job, `job_status` reads the job's state from a
//! key-value bucket, `event_stream` streams a stream's messages to the client as server-sent
//! events. The broker connection ([`broker`]) outlives reloads while its settings do.

pub mod broker;
pub mod headers;
pub mod job;
pub mod publish;
pub mod settings;
pub mod sse;
