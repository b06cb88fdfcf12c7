//! A process-wide registry of named connection pools: create, get by name,
//! metrics of all, close all.
//!
//! Pools of different managers live side by side behind [`AnyPool`];
//! [`PoolRegistry::get`] hands a pool back with its type. Names are
//! unique: creating a second pool under a name in use is refused, so a
//! registry never silently replaces a pool that callers still hold.

use core::any::Any;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use mechops_alloc::conn::{ConfigError, Remaining};

use super::{
    ConnectionPool, ConnectionPoolConfig, ConnectionPoolMetrics, Manager, render_prometheus,
};

/// A pool of any manager, as the registry holds it.
pub trait AnyPool: Send + Sync {
    /// The pool's name.
    fn name(&self) -> &str;
    /// A snapshot of its metrics.
    fn snapshot(&self) -> ConnectionPoolMetrics;
    /// Closes it (see [`ConnectionPool::close`]).
    fn close(&self, grace: Duration) -> Pin<Box<dyn Future<Output = Remaining> + Send + '_>>;
    /// For [`PoolRegistry::get`] to recover the type.
    fn as_any(&self) -> &dyn Any;
}

impl<M: Manager> AnyPool for ConnectionPool<M> {
    fn name(&self) -> &str {
        Self::name(self)
    }

    fn snapshot(&self) -> ConnectionPoolMetrics {
        Self::snapshot(self)
    }

    fn close(&self, grace: Duration) -> Pin<Box<dyn Future<Output = Remaining> + Send + '_>> {
        Box::pin(Self::close(self, grace))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Why the registry could not create a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A pool of that name exists.
    #[error("a connection pool named {0:?} exists")]
    NameTaken(String),
    /// The settings cannot build a pool.
    #[error("connection pool {name:?}: {error}")]
    Config {
        /// The pool's name.
        name: String,
        /// What was wrong.
        error: ConfigError,
    },
}

/// Named pools. [`registry`] is the process-wide one; separate registries
/// can be made for tests.
#[derive(Default)]
pub struct PoolRegistry {
    pools: Mutex<BTreeMap<String, Arc<dyn AnyPool>>>,
}

impl PoolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<dyn AnyPool>>> {
        self.pools.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a pool under `name` (see [`ConnectionPool::new`]) and keeps
    /// it. Must be called inside a tokio runtime.
    pub fn create<M: Manager>(
        &self,
        name: &str,
        manager: M,
        endpoints: Vec<M::Endpoint>,
        config: ConnectionPoolConfig,
    ) -> Result<ConnectionPool<M>, RegistryError> {
        let mut pools = self.pools();
        if pools.contains_key(name) {
            return Err(RegistryError::NameTaken(name.to_owned()));
        }
        let pool = ConnectionPool::new(name, manager, endpoints, config).map_err(|error| {
            RegistryError::Config {
                name: name.to_owned(),
                error,
            }
        })?;
        pools.insert(name.to_owned(), Arc::new(pool.clone()));
        Ok(pool)
    }

    /// The pool named `name`, if there is one and its manager is `M`.
    pub fn get<M: Manager>(&self, name: &str) -> Option<ConnectionPool<M>> {
        let pools = self.pools();
        pools
            .get(name)?
            .as_any()
            .downcast_ref::<ConnectionPool<M>>()
            .cloned()
    }

    /// The pool named `name`, whatever its manager.
    pub fn get_any(&self, name: &str) -> Option<Arc<dyn AnyPool>> {
        self.pools().get(name).cloned()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.pools().keys().cloned().collect()
    }

    /// Forgets the pool named `name` (without closing it) and returns it.
    pub fn remove(&self, name: &str) -> Option<Arc<dyn AnyPool>> {
        self.pools().remove(name)
    }

    /// Snapshots of every pool, by name.
    pub fn metrics(&self) -> Vec<ConnectionPoolMetrics> {
        let pools: Vec<_> = self.pools().values().cloned().collect();
        pools.iter().map(|p| p.snapshot()).collect()
    }

    /// Every pool's metrics as Prometheus text.
    pub fn prometheus(&self) -> String {
        render_prometheus(&self.metrics())
    }

    /// Closes every pool, each within `grace`, and forgets them all;
    /// returns what each left, by name.
    pub async fn close_all(&self, grace: Duration) -> Vec<(String, Remaining)> {
        let pools = core::mem::take(&mut *self.pools());
        let mut left = Vec::with_capacity(pools.len());
        for (name, pool) in pools {
            left.push((name, pool.close(grace).await));
        }
        left
    }
}

/// The process-wide registry.
pub fn registry() -> &'static PoolRegistry {
    static REGISTRY: OnceLock<PoolRegistry> = OnceLock::new();
    REGISTRY.get_or_init(PoolRegistry::new)
}
