//! `/queues/{queue}/limits`: a queue's limits, the ones `jobq limits` shows and sets: its
//! rate limit and global concurrency, the limits every group gets, and the groups'
//! overrides. Three forms set them (the queue's; every group's default; one group's
//! override), each holding the values in force: a field left empty removes that limit.
//! Every value of a form is checked before any is stored (`limits.rs`); a refused form
//! shows the page again with the error and the values typed.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::internal::limits_view::rate_text;
use queue_core::{GroupLimits, GroupLimitsView, Limits};
use serde::Deserialize;

use super::actions::with_notice;
use super::layout::{button_form, error_banner, notice_banner, page};
use super::overview::NoticeQuery;
use super::{refused_form, respond, PageCtx};
use crate::backend::deadline;
use crate::error::AppError;
use crate::html::{limits_href, queue_href};
use crate::limits::{parse_concurrency, parse_rate, Change, LimitsChange};
use crate::session::Access;
use crate::state::AppState;

/// One of the page's forms, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct LimitsForm {
    /// `queue` (the queue's limits), `groups` (every group's default) or `group` (one
    /// group's override).
    pub scope: Option<String>,
    /// The group of an override.
    pub group: Option<String>,
    /// `MAX/WINDOW`, or empty: no rate limit.
    pub rate: Option<String>,
    /// N, or empty: no concurrency limit.
    pub concurrency: Option<String>,
}

impl LimitsForm {
    /// The change this form asks for: each field's limit set, or removed when empty.
    fn change(&self) -> Result<LimitsChange, AppError> {
        let blank = |v: &Option<String>| v.as_deref().is_none_or(|s| s.trim().is_empty());
        let (rate_key, conc_key) = match self.scope.as_deref() {
            Some("queue") => ("rate", "concurrency"),
            Some("groups" | "group") => ("group_rate", "group_concurrency"),
            other => {
                return Err(AppError::BadRequest(format!(
                    "scope {:?}: use queue, groups or group",
                    other.unwrap_or("")
                )))
            }
        };
        let rate = match self.rate.as_deref() {
            Some(s) if !blank(&self.rate) => Change::Set(parse_rate(rate_key, s)?),
            _ => Change::Clear,
        };
        let concurrency = match self.concurrency.as_deref() {
            Some(s) if !blank(&self.concurrency) => Change::Set(parse_concurrency(conc_key, s)?),
            _ => Change::Clear,
        };
        let change = match self.scope.as_deref() {
            Some("queue") => LimitsChange {
                rate: Some(rate),
                concurrency: Some(concurrency),
                ..LimitsChange::default()
            },
            scope => LimitsChange {
                group: if scope == Some("group") {
                    if blank(&self.group) {
                        return Err(AppError::BadRequest(
                            "group is missing: name the group whose override to set".into(),
                        ));
                    }
                    self.group.as_deref().map(|g| g.trim().to_string())
                } else {
                    None
                },
                group_rate: Some(rate),
                group_concurrency: Some(concurrency),
                ..LimitsChange::default()
            },
        };
        change.check()?;
        Ok(change)
    }
}

/// The limits page.
pub async fn limits_page(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let banner = notice_banner(query.notice.as_deref());
    let page = render(&state, access, &queue, banner, None).await;
    respond(&state, access, page)
}

/// `POST /queues/{q}/limits` from one of the forms: stored, then the page with a notice; or
/// the page again with the error and the values typed (nothing stored).
pub async fn set_limits(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    Form(form): Form<LimitsForm>,
) -> Response {
    let run = async {
        let change = form.change()?;
        let q = state.backend().existing_queue(&queue).await?;
        change.apply(&q).await?;
        Ok::<_, AppError>(change)
    };
    match run.await {
        Ok(change) => {
            Redirect::to(&with_notice(&limits_href(&queue), &saved(&change))).into_response()
        }
        Err(e) => {
            let banner = error_banner(&e.to_string());
            let page = render(&state, access, &queue, banner, Some(&form)).await;
            refused_form(&state, access, e, page)
        }
    }
}

/// What a stored change did, in words.
fn saved(c: &LimitsChange) -> String {
    fn rate(c: Option<Change<queue_core::internal::args::Rate>>) -> String {
        match c {
            Some(Change::Set(r)) => format!("{}/{}", r.max, queue_core::format_duration(r.window)),
            _ => "none".into(),
        }
    }
    fn conc(c: Option<Change<u32>>) -> String {
        match c {
            Some(Change::Set(n)) => n.to_string(),
            _ => "none".into(),
        }
    }
    match (&c.group, c.rate.is_some()) {
        (_, true) => format!(
            "queue limits saved: rate {}, global concurrency {}",
            rate(c.rate),
            conc(c.concurrency)
        ),
        (None, false) => format!(
            "every group's limits saved: rate {}, concurrency {}",
            rate(c.group_rate),
            conc(c.group_concurrency)
        ),
        (Some(g), false) => format!(
            "group {g}'s override saved: rate {}, concurrency {} (none: the default applies)",
            rate(c.group_rate),
            conc(c.group_concurrency)
        ),
    }
}

async fn render(
    state: &AppState,
    access: Access,
    queue: &str,
    banner: Markup,
    typed: Option<&LimitsForm>,
) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let q = state.backend().existing_queue(queue).await?;
    let (limits, groups) = tokio::try_join!(deadline(q.limits()), deadline(q.group_limits()))?;
    let body = html! {
        (banner)
        section id="limits" data-queue=(queue) {
            h1 { "Limits of " a href=(queue_href(queue)) { (queue) } }
            p class="muted" {
                "Enforced where jobs are claimed, so across all workers, and in force at once. A \
                 rate is MAX/WINDOW: at most MAX job starts per WINDOW (MAX 1 to 2^53, WINDOW 1ms \
                 to 365d), e.g. 100/1s; a concurrency is 1 to 4294967295 active jobs."
            }
            (queue_section(&ctx, queue, &limits, typed))
            (groups_section(&ctx, queue, &groups, typed))
        }
    };
    Ok(page(
        &ctx,
        &format!("limits · {queue}"),
        body,
        &[(queue, queue_href(queue)), ("limits", limits_href(queue))],
        "",
    ))
}

/// `100/1s`, or a muted `none`.
fn shown(text: Option<String>, unset: &str) -> Markup {
    html! {
        @match text {
            Some(t) => (t),
            None => span class="muted" { (unset) },
        }
    }
}

fn queue_section(ctx: &PageCtx, queue: &str, l: &Limits, typed: Option<&LimitsForm>) -> Markup {
    let rate = rate_text(l.rate_max, l.rate_window_ms);
    let conc = l.concurrency.map(|n| n.to_string());
    html! {
        h2 { "Queue" }
        @if let Some(c) = &l.corrupt {
            p class="reason" data-limit="corrupt" { "corrupt record: " (c) }
        }
        table id="queue-limits" {
            tbody {
                tr { th { "Rate limit" } td data-limit="rate" { (shown(rate.clone(), "none")) } }
                tr {
                    th { "Global concurrency" }
                    td data-limit="concurrency" { (shown(conc.clone(), "none")) }
                }
            }
        }
        @if ctx.can_change() {
            (form(
                queue,
                "queue-limits-form",
                "queue",
                None,
                [("Rate limit", rate), ("Global concurrency", conc)],
                typed.filter(|t| t.scope.as_deref() == Some("queue")),
                "empty: no limit",
            ))
        }
    }
}

fn groups_section(
    ctx: &PageCtx,
    queue: &str,
    g: &GroupLimitsView,
    typed: Option<&LimitsForm>,
) -> Markup {
    let row = |scope: Markup, key: &str, l: &GroupLimits, unset: &str, button: Markup| {
        html! {
            tr data-scope=(key) {
                td { (scope) }
                td data-limit="concurrency" { (shown(l.concurrency.map(|n| n.to_string()), unset)) }
                td data-limit="rate" { (shown(rate_text(l.rate_max, l.rate_window_ms), unset)) }
                td { (button) }
            }
        }
    };
    let d = &g.default;
    let override_typed = typed.filter(|t| t.scope.as_deref() == Some("group"));
    html! {
        h2 { "Groups" }
        @for c in &g.corrupt {
            p class="reason" data-limit="corrupt" { "corrupt record: " (c) }
        }
        p class="muted" {
            "Per group (tenant) of the queue: the default every group gets, and the groups that \
             override it (an override of one kind replaces the default of that kind only)."
        }
        table id="group-limits" {
            thead {
                tr {
                    th { "Limit of" }
                    th { "Concurrency" }
                    th { "Rate" }
                    th {}
                }
            }
            tbody {
                (row(
                    html! { "each group (default)" },
                    "default",
                    &g.default,
                    "none",
                    Markup::default(),
                ))
                @for (name, o) in &g.overrides {
                    @let button = html! {
                        @if ctx.can_change() {
                            (button_form(
                                &limits_href(queue),
                                "Remove override",
                                "danger",
                                &[("scope", "group"), ("group", name)],
                                Some(&format!("Remove the override of group {name}?")),
                            ))
                        }
                    };
                    @let scope = html! { "group " span class="mono" { (name) } };
                    (row(scope, name, o, "default", button))
                }
            }
        }
        @if ctx.can_change() {
            (form(
                queue,
                "group-default-form",
                "groups",
                None,
                [
                    ("Rate per group", rate_text(d.rate_max, d.rate_window_ms)),
                    ("Concurrency per group", d.concurrency.map(|n| n.to_string())),
                ],
                typed.filter(|t| t.scope.as_deref() == Some("groups")),
                "every group; empty: no limit",
            ))
            (form(
                queue,
                "group-override-form",
                "group",
                Some(override_typed.and_then(|t| t.group.as_deref()).unwrap_or("")),
                [("Rate", None), ("Concurrency", None)],
                override_typed,
                "one group's override (set again to change it); empty: the default applies",
            ))
        }
    }
}

/// A form of `scope` with a rate and a concurrency field, holding `values` (or what was
/// typed into it before it was refused); `group`: the field naming the group, if any.
fn form(
    queue: &str,
    id: &str,
    scope: &str,
    group: Option<&str>,
    values: [(&str, Option<String>); 2],
    typed: Option<&LimitsForm>,
    note: &str,
) -> Markup {
    let [(rate_label, rate), (conc_label, conc)] = values;
    let rate = typed.map_or(rate, |t| t.rate.clone());
    let conc = typed.map_or(conc, |t| t.concurrency.clone());
    html! {
        form class="card" id=(id) method="post" action=(limits_href(queue)) {
            input type="hidden" name="scope" value=(scope);
            @if let Some(g) = group {
                label {
                    "Group "
                    input name="group" size="16" value=(g) required placeholder="e.g. tenant-42";
                }
                " "
            }
            label {
                (rate_label) " "
                input name="rate" size="10" value=(rate.unwrap_or_default())
                    placeholder="e.g. 100/1s";
            }
            " "
            label {
                (conc_label) " "
                input name="concurrency" size="8" value=(conc.unwrap_or_default())
                    placeholder="none";
            }
            " "
            button class="primary" { "Save" }
            " "
            span class="muted" { (note) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_of(scope: &str, group: &str, rate: &str, conc: &str) -> LimitsForm {
        LimitsForm {
            scope: Some(scope.into()),
            group: Some(group.into()),
            rate: Some(rate.into()),
            concurrency: Some(conc.into()),
        }
    }

    #[test]
    fn a_form_sets_what_is_filled_in_and_removes_what_is_empty() {
        let c = form_of("queue", "", "5/1s", "").change().unwrap();
        assert!(matches!(c.rate, Some(Change::Set(r)) if r.max == 5));
        assert_eq!(c.concurrency, Some(Change::Clear));
        assert_eq!((c.group_rate, c.group_concurrency), (None, None));
        let c = form_of("group", " vip ", "", "2").change().unwrap();
        assert_eq!(c.group.as_deref(), Some("vip"));
        assert_eq!(
            (c.group_rate, c.group_concurrency),
            (Some(Change::Clear), Some(Change::Set(2)))
        );
        assert_eq!(c.rate, None);
        let c = form_of("groups", "ignored", "", "").change().unwrap();
        assert_eq!(c.group, None);
        for (f, needle) in [
            (form_of("queue", "", "0/1s", ""), "rate \"0/1s\""),
            (form_of("queue", "", "", "-1"), "concurrency \"-1\""),
            (form_of("groups", "", "", "99999999999"), "99999999999"),
            (form_of("group", "", "1/1s", ""), "group is missing"),
            (form_of("group", "no spaces", "1/1s", ""), "no spaces"),
            (form_of("everything", "", "", ""), "scope \"everything\""),
        ] {
            let e = f.change().unwrap_err();
            assert!(matches!(e, AppError::BadRequest(_)), "{e:?}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn values_are_shown_escaped_and_a_refused_form_keeps_what_was_typed() {
        let typed = form_of("queue", "", "\"><b>", "7");
        let html = form(
            "q",
            "x",
            "queue",
            None,
            [("Rate", Some("1/1s".into())), ("C", None)],
            Some(&typed),
            "",
        )
        .into_string();
        assert!(html.contains("value=\"&quot;&gt;&lt;b&gt;\"") && !html.contains("<b>"));
        assert!(html.contains("value=\"7\""));
        assert_eq!(
            saved(&form_of("queue", "", "", "3").change().unwrap()),
            "queue limits saved: rate none, global concurrency 3"
        );
    }
}
