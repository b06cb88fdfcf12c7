//! Pool configuration: sizes, growth strategy and idle timeout, validated once.

use alloc::boxed::Box;
use core::fmt;
use core::time::Duration;

use super::growable::GrowablePool;
use super::store::PoolStore;

/// How a pool grows when it has no idle object and is below its maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Growth {
    /// Create exactly the object that was asked for.
    OnDemand,
    /// Create this many objects at once (one is handed out, the rest go idle).
    Step(usize),
    /// Double the number of live objects (at least one), so a burst costs
    /// O(log n) growth steps.
    Double,
}

impl Growth {
    /// How many objects to create when `live` objects exist and `max` is the cap.
    pub(crate) fn batch(self, live: usize, max: usize) -> usize {
        let wanted = match self {
            Self::OnDemand => 1,
            Self::Step(n) => n.max(1),
            Self::Double => live.max(1),
        };
        wanted.min(max.saturating_sub(live))
    }
}

/// A pool configuration that [`PoolConfig::validate`] has checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Objects created up front.
    pub initial_size: usize,
    /// Shrinking never goes below this many live objects.
    pub min_size: usize,
    /// The pool never holds more live objects than this.
    pub max_size: usize,
    /// How the pool grows on a miss.
    pub growth: Growth,
    /// Idle objects not needed for this long leave through
    /// [`PoolStore::poll_evicted`]; `None` never shrinks.
    pub idle_timeout: Option<Duration>,
}

impl PoolConfig {
    /// A configuration with `max_size` live objects at most, nothing created
    /// up front, no minimum, on-demand growth and no shrinking.
    pub const fn new(max_size: usize) -> Self {
        Self {
            initial_size: 0,
            min_size: 0,
            max_size,
            growth: Growth::OnDemand,
            idle_timeout: None,
        }
    }

    /// Checks that the sizes are consistent: `max_size >= 1`,
    /// `min_size <= max_size` and `initial_size <= max_size`.
    pub const fn validate(&self) -> Result<(), ConfigError> {
        if self.max_size == 0 {
            return Err(ConfigError::ZeroMaximum);
        }
        if self.min_size > self.max_size {
            return Err(ConfigError::MinimumAboveMaximum {
                min: self.min_size,
                max: self.max_size,
            });
        }
        if self.initial_size > self.max_size {
            return Err(ConfigError::InitialAboveMaximum {
                initial: self.initial_size,
                max: self.max_size,
            });
        }
        if let Growth::Step(0) = self.growth {
            return Err(ConfigError::ZeroGrowthStep);
        }
        Ok(())
    }
}

/// Why a pool configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `max_size` was zero: the pool could never hand anything out.
    ZeroMaximum,
    /// `min_size` was above `max_size`.
    MinimumAboveMaximum {
        /// The configured minimum.
        min: usize,
        /// The configured maximum.
        max: usize,
    },
    /// `initial_size` was above `max_size`.
    InitialAboveMaximum {
        /// The configured initial size.
        initial: usize,
        /// The configured maximum.
        max: usize,
    },
    /// `Growth::Step(0)` would never grow.
    ZeroGrowthStep,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroMaximum => f.write_str("pool maximum size is zero"),
            Self::MinimumAboveMaximum { min, max } => {
                write!(f, "pool minimum size {min} is above its maximum size {max}")
            }
            Self::InitialAboveMaximum { initial, max } => {
                write!(
                    f,
                    "pool initial size {initial} is above its maximum size {max}"
                )
            }
            Self::ZeroGrowthStep => f.write_str("pool growth step is zero"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// The boxed create hook of a pool.
pub type CreateFn<T> = Box<dyn FnMut() -> T + Send>;
/// The boxed reset hook of a pool.
pub type ResetFn<T> = Box<dyn FnMut(&mut T) + Send>;

/// Builds a pool, in the shape of `createPool({initialSize, maxPoolSize,
/// createObject, resetObject})`.
///
/// The create and reset hooks must be `Send` so that the same builder serves
/// the thread-safe pool of `mechops-std`; a single-threaded hook that needs
/// non-`Send` state fits [`super::HighFrequencyPool`], whose hooks are
/// generic.
pub struct PoolBuilder<T> {
    config: PoolConfig,
    create: CreateFn<T>,
    reset: Option<ResetFn<T>>,
}

impl<T> fmt::Debug for PoolBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("config", &self.config)
            .field("reset", &self.reset.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> PoolBuilder<T> {
    /// Starts a builder whose objects come from `create`, with
    /// [`PoolConfig::new`]`(max_size)` as the configuration.
    pub fn new(max_size: usize, create: impl FnMut() -> T + Send + 'static) -> Self {
        Self {
            config: PoolConfig::new(max_size),
            create: Box::new(create),
            reset: None,
        }
    }

    /// Replaces the whole configuration.
    #[must_use]
    pub fn with_config(mut self, config: PoolConfig) -> Self {
        self.config = config;
        self
    }

    /// Objects created when the pool is built.
    #[must_use]
    pub fn initial_size(mut self, n: usize) -> Self {
        self.config.initial_size = n;
        self
    }

    /// Shrinking keeps at least this many live objects.
    #[must_use]
    pub fn min_size(mut self, n: usize) -> Self {
        self.config.min_size = n;
        self
    }

    /// The most live objects the pool ever holds.
    #[must_use]
    pub fn max_size(mut self, n: usize) -> Self {
        self.config.max_size = n;
        self
    }

    /// The growth strategy on a miss.
    #[must_use]
    pub fn growth(mut self, growth: Growth) -> Self {
        self.config.growth = growth;
        self
    }

    /// Idle objects unused for this long are dropped by `maintain`.
    #[must_use]
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.config.idle_timeout = Some(timeout);
        self
    }

    /// Runs on every object handed back, before it can be handed out again.
    #[must_use]
    pub fn reset(mut self, reset: impl FnMut(&mut T) + Send + 'static) -> Self {
        self.reset = Some(Box::new(reset));
        self
    }

    /// The configuration so far.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Validates the configuration and builds the bare store, with the
    /// reset hook but without the create hook, and nothing created yet: the
    /// initial objects are asked for through [`PoolStore::poll_create`].
    pub fn build_store(self) -> Result<PoolStore<T>, ConfigError> {
        PoolStore::new(self.config, self.reset)
    }

    /// Validates the configuration and gives the store, with its initial
    /// objects already created, and the create hook: the parts of a
    /// synchronous wrapper that adds its own sharing, such as the std shared
    /// pool.
    pub fn build_parts(self) -> Result<(PoolStore<T>, CreateFn<T>), ConfigError> {
        let mut create = self.create;
        let mut store = PoolStore::new(self.config, self.reset)?;
        store.fill_with(&mut create);
        Ok((store, create))
    }

    /// Validates the configuration and builds a single-threaded [`GrowablePool`].
    pub fn build(self) -> Result<GrowablePool<T>, ConfigError> {
        self.build_parts()
            .map(|(store, create)| GrowablePool::from_parts(store, create))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_refuses_inconsistent_sizes() {
        assert_eq!(PoolConfig::new(0).validate(), Err(ConfigError::ZeroMaximum));
        let mut c = PoolConfig::new(2);
        c.min_size = 3;
        assert_eq!(
            c.validate(),
            Err(ConfigError::MinimumAboveMaximum { min: 3, max: 2 })
        );
        let mut c = PoolConfig::new(2);
        c.initial_size = 5;
        assert_eq!(
            c.validate(),
            Err(ConfigError::InitialAboveMaximum { initial: 5, max: 2 })
        );
        let mut c = PoolConfig::new(2);
        c.growth = Growth::Step(0);
        assert_eq!(c.validate(), Err(ConfigError::ZeroGrowthStep));
        assert_eq!(PoolConfig::new(1).validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_values() {
        let msg = alloc::format!("{}", ConfigError::MinimumAboveMaximum { min: 7, max: 3 });
        assert!(msg.contains('7') && msg.contains('3'), "{msg}");
    }

    #[test]
    fn growth_batches_are_capped() {
        assert_eq!(Growth::OnDemand.batch(3, 10), 1);
        assert_eq!(Growth::Step(4).batch(8, 10), 2);
        assert_eq!(Growth::Double.batch(0, 10), 1);
        assert_eq!(Growth::Double.batch(4, 10), 4);
        assert_eq!(Growth::Double.batch(6, 10), 4);
        assert_eq!(Growth::Double.batch(10, 10), 0);
    }
}
