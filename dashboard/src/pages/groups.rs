//! The queue page's "Groups" section: how many of the queue's groups (tenants) have waiting
//! jobs, have active jobs and are held back by a limit, and a table of the busiest (group,
//! waiting, active, what holds it back). Left out for a queue without any group. Group keys
//! are restricted to `[A-Za-z0-9._:-]` by queue-core; they are escaped all the same.

use queue_core::{GroupLimited, GroupsView};

use crate::html::{esc, relative, utc};

/// The section for `view` (the counts and the groups read), or nothing when the queue has
/// no group.
pub fn groups_section(view: &GroupsView) -> String {
    if !has_groups(view) {
        return String::new();
    }
    let mut out = String::from("<h2 id=\"groups\">Groups</h2>");
    out.push_str(&format!(
        "<p class=\"muted\"><span data-groups=\"with_waiting\">{}</span> with waiting jobs · \
         <span data-groups=\"with_active\">{}</span> with active jobs · \
         <span data-groups=\"limited\">{}</span> limited",
        view.with_waiting, view.with_active, view.limited
    ));
    let total = view.with_waiting.max(view.with_active);
    if (view.groups.len() as u64) < total {
        out.push_str(&format!(
            " — showing the {} busiest (most waiting first)",
            view.groups.len()
        ));
    }
    out.push_str("</p>");
    if view.groups.is_empty() {
        return out;
    }
    out.push_str(
        "<table id=\"groups-table\"><thead><tr><th>Group</th><th class=\"num\">Waiting</th>\
         <th class=\"num\">Active</th><th>Limited</th></tr></thead><tbody>",
    );
    for g in &view.groups {
        out.push_str(&format!(
            "<tr data-group=\"{name}\"><td class=\"mono\">{name}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            g.waiting,
            g.active,
            limited(g.limited),
            name = esc(&g.group),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

/// Whether the queue has any group: one with jobs waiting or active, or held back.
fn has_groups(view: &GroupsView) -> bool {
    view.with_waiting > 0 || view.with_active > 0 || view.limited > 0 || !view.groups.is_empty()
}

/// What holds a group back: `concurrency`, `rate until <time>`, or `-`.
fn limited(l: Option<GroupLimited>) -> String {
    match l {
        None => "<span class=\"muted\">-</span>".into(),
        Some(GroupLimited::Concurrency) => "<span class=\"badge paused\" title=\"at its \
             concurrency cap: back when one of its jobs finishes\">concurrency</span>"
            .into(),
        Some(GroupLimited::Rate { until_ms }) => format!(
            "<span class=\"badge delayed\">rate</span> until <span title=\"{}\">{}</span>",
            esc(&relative(until_ms)),
            esc(&utc(until_ms))
        ),
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
        assert_eq!(groups_section(&GroupsView::default()), "");
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
        let html = groups_section(&view);
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
        assert!(groups_section(&top).contains("showing the 3 busiest"));
    }
}
