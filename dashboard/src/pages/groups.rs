//! The queue page's "Groups" section: how many of the queue's groups (tenants) have waiting
//! jobs, have active jobs and are held back by a limit, and a table of the busiest (group,
//! waiting, active, what holds it back). Left out for a queue without any group. Group keys
//! are restricted to `[A-Za-z0-9._:-]` by queue-core; they are escaped all the same.

use maud::{html, Markup};
use queue_core::{GroupLimited, GroupsView};

use crate::html::{relative, utc};

/// The section for `view` (the counts and the groups read), or nothing when the queue has
/// no group.
pub fn groups_section(view: &GroupsView) -> Markup {
    if !has_groups(view) {
        return Markup::default();
    }
    let total = view.with_waiting.max(view.with_active);
    html! {
        h2 id="groups" { "Groups" }
        p class="muted" {
            span data-groups="with_waiting" { (view.with_waiting) } " with waiting jobs · "
            span data-groups="with_active" { (view.with_active) } " with active jobs · "
            span data-groups="limited" { (view.limited) } " limited"
            @if (view.groups.len() as u64) < total {
                " — showing the " (view.groups.len()) " busiest (most waiting first)"
            }
        }
        @if !view.groups.is_empty() {
            table id="groups-table" {
                thead {
                    tr {
                        th { "Group" }
                        th class="num" { "Waiting" }
                        th class="num" { "Active" }
                        th { "Limited" }
                    }
                }
                tbody {
                    @for g in &view.groups {
                        tr data-group=(g.group) {
                            td class="mono" { (g.group) }
                            td class="num" { (g.waiting) }
                            td class="num" { (g.active) }
                            td { (limited(g.limited)) }
                        }
                    }
                }
            }
        }
    }
}

/// Whether the queue has any group: one with jobs waiting or active, or held back.
fn has_groups(view: &GroupsView) -> bool {
    view.with_waiting > 0 || view.with_active > 0 || view.limited > 0 || !view.groups.is_empty()
}

/// What holds a group back: `concurrency`, `rate until <time>`, or `-`.
fn limited(l: Option<GroupLimited>) -> Markup {
    html! {
        @match l {
            None => span class="muted" { "-" },
            Some(GroupLimited::Concurrency) => span class="badge paused"
                title="at its concurrency cap: back when one of its jobs finishes" {
                "concurrency"
            },
            Some(GroupLimited::Rate { until_ms }) => {
                span class="badge delayed" { "rate" } " until "
                span title=(relative(until_ms)) { (utc(until_ms)) }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use queue_core::GroupInfo;

    fn group(name: &str, waiting: u64, active: u64, limited: Option<GroupLimited>) -> GroupInfo {
        GroupInfo {
            group: name.into(),
            waiting,
            active,
            limited,
        }
    }

    #[test]
    fn a_queue_without_groups_shows_nothing() {
        assert_eq!(groups_section(&GroupsView::default()).0, "");
    }

    #[test]
    fn every_group_is_listed_escaped_with_what_holds_it_back() {
        let view = GroupsView {
            with_waiting: 3,
            with_active: 1,
            limited: 2,
            groups: vec![
                group("acme", 5, 1, Some(GroupLimited::Concurrency)),
                group("<b>x</b>", 2, 0, Some(GroupLimited::Rate { until_ms: 0 })),
                group("free", 1, 0, None),
            ],
        };
        let html = groups_section(&view).into_string();
        assert!(html.contains("<span data-groups=\"with_waiting\">3</span>"));
        assert!(html.contains("<span data-groups=\"limited\">2</span>"));
        assert!(html.contains(
            "<tr data-group=\"acme\"><td class=\"mono\">acme</td><td class=\"num\">5</td>\
             <td class=\"num\">1</td>"
        ));
        assert!(html.contains(">concurrency</span>"));
        assert!(
            html.contains("until <span title=\"") && html.contains(">1970-01-01 00:00:00.000 UTC<")
        );
        assert!(!html.contains("<b>x</b>") && html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(html.contains("<span class=\"muted\">-</span>"));
        assert!(!html.contains("busiest"), "all groups shown: {html}");
        let mut top = view.clone();
        top.with_waiting = 80;
        assert!(groups_section(&top).0.contains("showing the 3 busiest"));
    }
}
