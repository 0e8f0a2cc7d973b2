//! The resilient upstream client: discovery, balancing, health, breakers, retries.

pub mod balance;
pub mod breaker;
pub mod call;
pub mod deadline;
pub mod discovery;
pub mod endpoint;
pub mod health;
pub mod retry;
pub mod service;
pub mod window;
