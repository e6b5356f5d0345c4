//! Groups: fair shares between the tenants of one queue.
//!
//! A job added with [`JobOptions::group`](crate::JobOptions::group) waits in its group's
//! own queue, not in a priority lane. The claim (`move_to_active.lua`) takes ready jobs
//! round-robin: each group with waiting jobs has one turn per round, and so do the
//! queue's jobs without a group, together one more group. Within a group, priority then
//! add order decide. A group's turn takes its best job; across groups priority plays no
//! part, so one tenant's 10,000 jobs never make another tenant's one job wait behind them.
//!
//! Per-group limits are enforced in the claim too, so they hold over all workers: a cap on
//! a group's active jobs and a cap on its starts per window (a fixed window, as the queue's
//! own rate limit). Each has a queue-wide default and per-group overrides. A group at a
//! limit is *parked*: out of the round until its window reopens or one of its jobs
//! finishes, so it costs the claims of other groups nothing and no worker polls it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::limits::{validate_concurrency, validate_rate_limit};
use crate::queue::Queue;
use crate::scripts;
use crate::validate::validate_group;

/// Limits of one group (or the default of every group of a queue); `None`: no limit of
/// that kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupLimits {
    /// At most this many jobs of the group active at once, over all workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// At most this many job starts of the group per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_max: Option<u64>,
    /// The rate window in ms (set with `rate_max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_window_ms: Option<u64>,
}

impl GroupLimits {
    /// True when neither limit is set.
    pub fn is_unlimited(&self) -> bool {
        self.concurrency.is_none() && self.rate_max.is_none()
    }
}

/// A queue's per-group limits: the default every group gets, and the groups that override
/// it (an override of one kind replaces the default of that kind only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLimitsView {
    /// What a group without an override gets.
    pub default: GroupLimits,
    /// Groups with an override, by name.
    pub overrides: Vec<(String, GroupLimits)>,
    /// Stored fields that are not limits (a corrupt record), each named with its value and
    /// what the claim makes of it: ignored, so a corrupt override leaves its group the
    /// default. Setting or clearing that limit writes the field again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrupt: Vec<String>,
}

impl GroupLimitsView {
    /// The limits that apply to `group`.
    pub fn effective(&self, group: &str) -> GroupLimits {
        let mut l = self.default;
        if let Some((_, o)) = self.overrides.iter().find(|(g, _)| g == group) {
            if o.concurrency.is_some() {
                l.concurrency = o.concurrency;
            }
            if o.rate_max.is_some() {
                l.rate_max = o.rate_max;
                l.rate_window_ms = o.rate_window_ms;
            }
        }
        l
    }
}

/// Why a group is parked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum GroupLimited {
    /// At its concurrency cap: back in the round when one of its jobs finishes.
    Concurrency,
    /// Out of starts in its rate window, until `until_ms` (Unix ms).
    Rate {
        /// When the window reopens, Unix ms.
        until_ms: u64,
    },
}

/// One group of a queue as `jobq groups` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupInfo {
    /// The group's key.
    pub group: String,
    /// Jobs waiting in the group.
    pub waiting: u64,
    /// Jobs of the group running now.
    pub active: u64,
    /// Set while the group is held back by one of its limits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited: Option<GroupLimited>,
}

/// A look at a queue's groups: the busiest, and how many there are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupsView {
    /// Groups with waiting jobs.
    pub with_waiting: u64,
    /// Groups with active jobs.
    pub with_active: u64,
    /// Groups held back by a limit now.
    pub limited: u64,
    /// The groups with the most waiting jobs, most first, then groups with active jobs
    /// only, most active first; at most the limit asked for.
    pub groups: Vec<GroupInfo>,
}

/// A change to one kind of group limit, for [`Queue::set_group_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupLimitChange {
    /// Cap a group's active jobs at this many.
    Concurrency(u32),
    /// Remove the concurrency cap (an override's removal falls back to the default).
    ClearConcurrency,
    /// Cap a group's starts at `max` per `window`.
    Rate {
        /// Starts per window.
        max: u64,
        /// The window.
        window: Duration,
    },
    /// Remove the rate limit (an override's removal falls back to the default).
    ClearRate,
}

impl Queue {
    /// Changes a per-group limit: the queue's default when `group` is `None`, else that
    /// group's override. Takes effect at the next claim; loosening wakes the workers.
    pub async fn set_group_limit(
        &self,
        group: Option<&str>,
        change: GroupLimitChange,
    ) -> Result<()> {
        if let Some(g) = group {
            validate_group(g)?;
        }
        let (kind, value) = match change {
            GroupLimitChange::Concurrency(n) => {
                validate_concurrency("group concurrency", n)?;
                ("c", n.to_string())
            }
            GroupLimitChange::ClearConcurrency => ("c", String::new()),
            GroupLimitChange::Rate { max, window } => {
                let ms = validate_rate_limit("group rate limit", max, window)?;
                ("r", format!("{max}/{ms}"))
            }
            GroupLimitChange::ClearRate => ("r", String::new()),
        };
        scripts::set_group_limits::set(&self.inner, kind, group.unwrap_or(""), &value).await
    }

    /// The per-group limits stored for this queue.
    pub async fn group_limits(&self) -> Result<GroupLimitsView> {
        let fields = scripts::groups::limit_fields(&self.inner).await?;
        let mut view = GroupLimitsView::default();
        // each group's place in `view.overrides` (a search of the list for every field took
        // 35 s for 100,000 overrides)
        let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (field, value) in fields {
            let (kind, group) = match field.split_once(':') {
                Some((k, g)) => (k.to_string(), Some(g.to_string())),
                None => (field.clone(), None),
            };
            let target = match group {
                None => &mut view.default,
                Some(g) => {
                    let i = *at.entry(g.clone()).or_insert_with(|| {
                        view.overrides.push((g, GroupLimits::default()));
                        view.overrides.len() - 1
                    });
                    &mut view.overrides[i].1
                }
            };
            // a corrupt field limits nothing in the claim (which reads it the same way): it
            // is left out here too, and named
            if parse_limit(target, &kind, &value).is_none() {
                tracing::warn!(queue = %self.name(), field, value, "a stored group limit is not a limit: ignored");
                let falls_back = if field.contains(':') {
                    "ignored, the default applies"
                } else {
                    "ignored, no default"
                };
                view.corrupt.push(format!(
                    "field {:?} is {:?}, not a limit: {falls_back}",
                    crate::text::clip(&field, 140),
                    crate::text::clip(&value, 40)
                ));
            }
        }
        view.overrides.retain(|(_, l)| !l.is_unlimited());
        view.overrides.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(view)
    }

    /// The queue's groups: counts, and the `limit` busiest with what holds them back.
    pub async fn groups(&self, limit: usize) -> Result<GroupsView> {
        scripts::groups::read(&self.inner, limit).await
    }
}

/// Reads one stored limit field (`c` = a concurrency, `r` = `<max>/<ms>`) into `l`, as the
/// claim reads it (move_to_active.lua `limit_value` and `rate_of`): a concurrency is a whole
/// number from 1 to 2^53 as Lua's `tonumber` reads it (capped at `u32::MAX` here), a rate two
/// such numbers written in digits. `None` for anything else, which the claim ignores.
fn parse_limit(l: &mut GroupLimits, kind: &str, value: &str) -> Option<()> {
    match kind {
        "c" => {
            let n = crate::limits::stored_limit(value)?;
            l.concurrency = Some(u32::try_from(n).unwrap_or(u32::MAX));
        }
        "r" => {
            let (max, ms) = value.split_once('/')?;
            let digits = |s: &str| {
                (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| crate::limits::stored_limit(s))
                    .flatten()
            };
            let (max, ms) = (digits(max)?, digits(ms)?);
            l.rate_max = Some(max);
            l.rate_window_ms = Some(ms);
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_limits_parse_and_overrides_replace_the_default_per_kind() {
        let mut d = GroupLimits::default();
        parse_limit(&mut d, "c", "2").unwrap();
        parse_limit(&mut d, "r", "10/1000").unwrap();
        assert!(parse_limit(&mut d, "r", "10").is_none());
        assert!(parse_limit(&mut d, "c", "0").is_none());
        assert!(parse_limit(&mut d, "x", "1").is_none());
        // as the claim's Lua reads them: tonumber for a concurrency, digits for a rate
        let mut l = GroupLimits::default();
        parse_limit(&mut l, "c", " 1e3").unwrap();
        assert_eq!(l.concurrency, Some(1000));
        assert!(parse_limit(&mut l, "c", "2.5").is_none());
        assert!(parse_limit(&mut l, "r", "1e3/1000").is_none());
        assert!(parse_limit(&mut l, "r", "5/0").is_none());
        assert!(parse_limit(&mut l, "r", "99999999999999999999/1").is_none());
        assert_eq!(l.rate_max, None, "a rate half read is not kept");
        let mut o = GroupLimits::default();
        parse_limit(&mut o, "c", "5").unwrap();
        let view = GroupLimitsView {
            default: d,
            overrides: vec![("vip".into(), o)],
            corrupt: Vec::new(),
        };
        let vip = view.effective("vip");
        assert_eq!((vip.concurrency, vip.rate_max), (Some(5), Some(10)));
        assert_eq!(view.effective("other").concurrency, Some(2));
    }
}
