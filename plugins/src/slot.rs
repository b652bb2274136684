//! The active plugin of one kind: self-test before install, atomic hot swap, automatic rollback.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwapOption;

use crate::error::{CallError, InstallError, SlotCallError};
use crate::host::Plugin;
use crate::kinds::PluginKind;
use crate::meta::PluginMeta;

/// What a self-test case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected<T> {
    /// Exactly this answer.
    Output(T),
    /// A clean refusal ([`CallError::Refused`]), e.g. a decoder given a malformed payload.
    Refused,
}

/// One self-test case, carried by the plugin's bundle manifest next to the component: a sample input and the
/// answer the publisher expects. The host runs every case before a plugin may become active.
#[derive(Debug, Clone)]
pub struct SelfTest<K: PluginKind> {
    /// The sample input.
    pub input: K::Input,
    /// The expected answer.
    pub expected: Expected<K::Output>,
}

impl<K: PluginKind> Plugin<K> {
    /// Runs the self-test cases in order; the first that does not give the expected answer fails the test.
    pub fn self_test(&self, cases: &[SelfTest<K>]) -> Result<(), InstallError> {
        if cases.is_empty() {
            return Err(InstallError::NoSelfTest(self.meta().label()));
        }
        for (case, test) in cases.iter().enumerate() {
            let failed = |reason: String| InstallError::SelfTestFailed {
                plugin: self.meta().label(),
                case,
                reason,
            };
            match (self.call(&test.input), &test.expected) {
                (Ok(got), Expected::Output(want)) if &got == want => {}
                (Ok(got), Expected::Output(want)) => {
                    return Err(failed(format!("expected {want:?}, got {got:?}")));
                }
                (Err(CallError::Refused(_)), Expected::Refused) => {}
                (Ok(got), Expected::Refused) => {
                    return Err(failed(format!("expected a refusal, got {got:?}")));
                }
                (Err(e), _) => return Err(failed(e.to_string())),
            }
        }
        Ok(())
    }
}

/// When a slot gives up on its active plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthPolicy {
    /// How many of the latest calls are looked at.
    pub window: usize,
    /// More faults ([`CallError::is_fault`]) than this among them roll the plugin back.
    pub max_faults: usize,
}

impl Default for HealthPolicy {
    /// Roll back when more than half of the last 20 calls faulted.
    fn default() -> Self {
        Self {
            window: 20,
            max_faults: 10,
        }
    }
}

/// A rollback the slot performed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The plugin that was given up (refused from now on by this slot).
    pub from: PluginMeta,
    /// The plugin active again.
    pub to: PluginMeta,
    /// Faults among the calls looked at.
    pub faults: usize,
    /// Calls looked at.
    pub calls: usize,
    /// The fault that tipped the balance.
    pub last_error: CallError,
}

/// What a slot holds, for status pages and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    /// The active plugin.
    pub active: Option<PluginMeta>,
    /// The plugin a rollback would return to.
    pub previous: Option<PluginMeta>,
    /// Calls of the active plugin in the health window.
    pub recent_calls: usize,
    /// Faults among them.
    pub recent_faults: usize,
    /// More faults than the policy allows, and nothing to roll back to.
    pub unhealthy: bool,
    /// Every rollback so far, oldest first.
    pub rollbacks: Vec<Rollback>,
}

struct Active<K> {
    plugin: Plugin<K>,
    previous: Option<Plugin<K>>,
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    faults: VecDeque<bool>,
}

impl Window {
    /// Records one outcome; returns `(faults, calls)` in the window.
    fn record(&mut self, fault: bool, size: usize) -> (usize, usize) {
        self.faults.push_back(fault);
        while self.faults.len() > size.max(1) {
            self.faults.pop_front();
        }
        self.counts()
    }

    fn counts(&self) -> (usize, usize) {
        (
            self.faults.iter().filter(|f| **f).count(),
            self.faults.len(),
        )
    }
}

#[derive(Default)]
struct SlotState {
    rollbacks: Vec<Rollback>,
    /// `(name, version, source sha256)` of plugins rolled back.
    refused: HashSet<(String, String, [u8; 32])>,
}

/// The active plugin of one kind (e.g. the decoder for one vendor format).
///
/// Calls never wait for installs or rollbacks: they load the active plugin atomically (ArcSwap) and run it;
/// a swap only affects calls that start after it.
pub struct PluginSlot<K: PluginKind> {
    active: ArcSwapOption<Active<K>>,
    health: HealthPolicy,
    state: Mutex<SlotState>,
}

impl<K: PluginKind> std::fmt::Debug for PluginSlot<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSlot")
            .field("status", &self.status())
            .finish()
    }
}

fn key<K: PluginKind>(p: &Plugin<K>) -> (String, String, [u8; 32]) {
    (
        p.meta().name.clone(),
        p.meta().version.clone(),
        p.source_sha256(),
    )
}

impl<K: PluginKind> PluginSlot<K> {
    /// An empty slot.
    pub fn new(health: HealthPolicy) -> Self {
        Self {
            active: ArcSwapOption::empty(),
            health,
            state: Mutex::new(SlotState::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, SlotState> {
        // The state is only ever replaced field by field; a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Self-tests `plugin` and makes it the active one; the one it replaces is kept for a rollback.
    ///
    /// Refused (and nothing changes) when a self-test case fails, when there is no case, when a plugin of the same
    /// name is active with an equal or newer version, or when this exact plugin was rolled back before.
    pub fn install(
        &self,
        plugin: Plugin<K>,
        self_tests: &[SelfTest<K>],
    ) -> Result<(), InstallError> {
        {
            let state = self.state();
            if state.refused.contains(&key(&plugin)) {
                return Err(InstallError::RolledBackBefore(plugin.meta().label()));
            }
            self.check_newer(&plugin)?;
        }
        // Self-tests run without the lock: they may take up to a deadline per case.
        plugin.self_test(self_tests)?;
        let _state = self.state();
        // Checked again: another install may have happened meanwhile.
        self.check_newer(&plugin)?;
        let current = self.active.load_full();
        self.active.store(Some(Arc::new(Active {
            plugin,
            previous: current.map(|c| c.plugin.clone()),
            window: Mutex::new(Window::default()),
        })));
        Ok(())
    }

    fn check_newer(&self, plugin: &Plugin<K>) -> Result<(), InstallError> {
        match self.active.load().as_ref().map(|a| &a.plugin) {
            Some(cur)
                if cur.meta().name == plugin.meta().name && cur.version() >= plugin.version() =>
            {
                Err(InstallError::NotNewer {
                    name: plugin.meta().name.clone(),
                    offered: plugin.meta().version.clone(),
                    installed: cur.meta().version.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The active plugin, if any.
    pub fn current(&self) -> Option<Plugin<K>> {
        self.active.load().as_ref().map(|a| a.plugin.clone())
    }

    /// Calls the active plugin. Its outcome enters the health window; when faults exceed the policy, the slot
    /// rolls back to the previous plugin (this call still returns its own error).
    pub fn call(&self, input: &K::Input) -> Result<K::Output, SlotCallError> {
        let Some(active) = self.active.load_full() else {
            return Err(SlotCallError::Empty);
        };
        let result = active.plugin.call(input);
        let fault = result.as_ref().err().filter(|e| e.is_fault());
        let (faults, calls) = active
            .window
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(fault.is_some(), self.health.window);
        if let Some(error) = fault.filter(|_| faults > self.health.max_faults) {
            self.roll_back(&active, faults, calls, error);
        }
        result.map_err(|error| SlotCallError::Call {
            plugin: active.plugin.meta().label(),
            error,
        })
    }

    fn roll_back(&self, from: &Arc<Active<K>>, faults: usize, calls: usize, error: &CallError) {
        let mut state = self.state();
        let still_active = self
            .active
            .load()
            .as_ref()
            .is_some_and(|a| Arc::ptr_eq(a, from));
        let Some(previous) = from.previous.clone().filter(|_| still_active) else {
            return;
        };
        state.refused.insert(key(&from.plugin));
        state.rollbacks.push(Rollback {
            from: from.plugin.meta().clone(),
            to: previous.meta().clone(),
            faults,
            calls,
            last_error: error.clone(),
        });
        self.active.store(Some(Arc::new(Active {
            plugin: previous,
            previous: None,
            window: Mutex::new(Window::default()),
        })));
    }

    /// What the slot holds now.
    pub fn status(&self) -> SlotStatus {
        let state = self.state();
        let active = self.active.load_full();
        let (recent_faults, recent_calls) = active
            .as_ref()
            .map(|a| {
                a.window
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .counts()
            })
            .unwrap_or((0, 0));
        SlotStatus {
            active: active.as_ref().map(|a| a.plugin.meta().clone()),
            previous: active
                .as_ref()
                .and_then(|a| a.previous.as_ref())
                .map(|p| p.meta().clone()),
            recent_calls,
            recent_faults,
            unhealthy: recent_faults > self.health.max_faults,
            rollbacks: state.rollbacks.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_only_the_latest_calls() {
        let mut w = Window::default();
        for _ in 0..5 {
            w.record(true, 4);
        }
        assert_eq!(w.counts(), (4, 4));
        w.record(false, 4);
        w.record(false, 4);
        assert_eq!(w.counts(), (2, 4));
    }
}
