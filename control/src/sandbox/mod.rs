//! The sandbox domain: model, validation, state machine and the service that
//! is the only writer of sandbox state.

pub mod devops;
pub mod diagnostics;
pub mod egress_env;
pub mod error;
pub mod hooks;
pub mod labels;
pub mod lifecycle;
pub mod model;
pub mod ops;
pub mod proxy_target;
pub mod quantity;
pub mod query;
pub mod reconcile;
pub mod registry;
pub mod request;
pub mod rules;
pub mod service;
pub mod snapshot;
pub mod snapshot_model;
pub mod snapshot_query;
pub mod state;
pub mod volumes;
