//! The route table on the proxy side: the lookup index, the store that
//! swaps it atomically, and the background sync that feeds it.
//!
//! # Layout
//! - [`index`]: [`RouteIndex`] / [`RouteEntry`], built once per update for cheap lookups.
//! - [`store`]: [`RouteStore`], one `ArcSwap<RouteIndex>` plus a swap signal.
//! - [`sync`]: [`RouteSync`], the pingora background service following the control plane.

pub mod index;
pub mod store;
pub mod sync;

pub use index::{PortState, RouteEntry, RouteIndex, SecureAccess, Upstream};
pub use store::RouteStore;
pub use sync::RouteSync;
