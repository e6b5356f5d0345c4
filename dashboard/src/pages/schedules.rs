//! `/queues/{queue}/schedules`: a queue's schedules (repeatable jobs), each with its repeat
//! (every N or cron, UTC), the job it adds (name, data, options), its next run and the job
//! of its latest tick while that is stored; a Remove button on each, and a form that adds
//! one, checked as `jobq schedule add` checks its flags (`schedules.rs`). A refused add
//! shows the page again with the error and the values typed. A schedule's id, name and
//! data are whatever someone stored: all escaped (a `maud` template).

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use queue_core::CorruptSchedule;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::actions::{json_field, with_notice};
use super::layout::{button_form, error_banner, notice_banner, page};
use super::overview::NoticeQuery;
use super::{error_response, refused_form, respond, PageCtx};
use crate::error::AppError;
use crate::html::{clip, job_href, queue_href, relative, schedules_href, url_component, utc};
use crate::schedules::{list, parse_schedule, remove, upsert, Listed, LAST_RUN_LOOKUPS};
use crate::session::Access;
use crate::state::AppState;

/// The "add a schedule" form, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct ScheduleForm {
    /// Schedule id.
    pub id: Option<String>,
    /// Job name.
    pub name: Option<String>,
    /// Interval (`5m`), or empty.
    pub every: Option<String>,
    /// Cron expression, or empty.
    pub cron: Option<String>,
    /// Data as JSON text (empty: null).
    pub data: Option<String>,
    /// Options as a JSON object (empty: none).
    pub opts: Option<String>,
}

impl ScheduleForm {
    /// The form as the API's JSON body: empty fields left out.
    fn to_object(&self) -> Result<Map<String, Value>, AppError> {
        let mut obj = Map::new();
        for (key, v) in [
            ("id", &self.id),
            ("name", &self.name),
            ("every", &self.every),
            ("cron", &self.cron),
        ] {
            if let Some(s) = v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                obj.insert(key.into(), Value::String(s.into()));
            }
        }
        if let Some(v) = json_field("data", self.data.as_deref())? {
            obj.insert("data".into(), v);
        }
        if let Some(v) = json_field("options", self.opts.as_deref())? {
            obj.insert("opts".into(), v);
        }
        Ok(obj)
    }
}

/// The schedules page.
pub async fn schedules_page(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Response {
    let banner = notice_banner(query.notice.as_deref());
    let page = render(&state, access, &queue, banner, None).await;
    respond(&state, access, page)
}

/// `POST /queues/{q}/schedules` from the form: the schedule is stored and the page shows
/// it, or the page comes back with the error and the values typed.
pub async fn add_schedule(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    Form(form): Form<ScheduleForm>,
) -> Response {
    let run = async {
        let schedule = parse_schedule(form.to_object()?)?;
        upsert(&state, &queue, schedule).await
    };
    match run.await {
        Ok(info) => {
            let next = info.next_run_ms.map_or("never".into(), |ms| {
                format!("{} ({})", utc(ms), relative(ms))
            });
            let notice = format!(
                "added schedule {}: {} adds {}, next run {next}",
                info.id, info.repeat, info.name
            );
            Redirect::to(&with_notice(&schedules_href(&queue), &notice)).into_response()
        }
        Err(e) => {
            let banner = error_banner(&e.to_string());
            let page = render(&state, access, &queue, banner, Some(&form)).await;
            refused_form(&state, access, e, page)
        }
    }
}

/// `POST /queues/{q}/schedules/{id}/remove`: the Remove button.
pub async fn remove_schedule(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((queue, id)): Path<(String, String)>,
) -> Response {
    match remove(&state, &queue, &id).await {
        Ok(()) => Redirect::to(&with_notice(
            &schedules_href(&queue),
            &format!("removed schedule {id}: it adds no more jobs"),
        ))
        .into_response(),
        Err(e) => error_response(&state, Some(access), e),
    }
}

/// The page, under `banner` (a notice or an error); `typed`: the values of a
/// refused add, shown again in the form.
async fn render(
    state: &AppState,
    access: Access,
    queue: &str,
    banner: Markup,
    typed: Option<&ScheduleForm>,
) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let q = state.backend().existing_queue(queue).await?;
    let (listed, corrupt) = list(&q).await?;
    let body = html! {
        (banner)
        section id="schedules" data-queue=(queue) {
            h1 { "Schedules of " a href=(queue_href(queue)) { (queue) } }
            p class="muted" {
                "Each tick adds a job with the id "
                span class="mono" { "sched:<schedule>:<tick ms>" }
                "; cron expressions are in UTC. Last run: the job of the latest tick, while it is \
                 stored."
            }
            (table(&ctx, queue, &listed))
            @if !corrupt.is_empty() { (corrupt_table(&ctx, queue, &corrupt)) }
            @if ctx.can_change() { (add_form(queue, typed)) }
        }
    };
    Ok(page(
        &ctx,
        &format!("schedules · {queue}"),
        body,
        &[
            (queue, queue_href(queue)),
            ("schedules", schedules_href(queue)),
        ],
        "",
    ))
}

fn table(ctx: &PageCtx, queue: &str, listed: &[Listed]) -> Markup {
    if listed.is_empty() {
        return html! {
            div class="card muted" id="no-schedules" {
                "No schedules: add one below, or with "
                span class="mono" { "jobq schedule add" } "."
            }
        };
    }
    html! {
        p class="muted" {
            (listed.len()) " schedule(s)"
            @if listed.len() > LAST_RUN_LOOKUPS {
                " (the last run of the first " (LAST_RUN_LOOKUPS) " only)"
            }
        }
        table id="schedules-table" {
            thead {
                tr {
                    th { "Schedule" }
                    th { "Repeat" }
                    th { "Job name" }
                    th { "Data" }
                    th { "Options" }
                    th { "Next run" }
                    th { "Last run" }
                    th {}
                }
            }
            tbody {
                @for s in listed { (row(ctx, queue, s)) }
            }
        }
    }
}

fn row(ctx: &PageCtx, queue: &str, s: &Listed) -> Markup {
    let info = &s.info;
    let opts = serde_json::to_string(&info.opts).unwrap_or_default();
    html! {
        tr data-schedule=(info.id) {
            td class="mono" { (info.id) }
            td class="mono" { (info.repeat.to_string()) }
            td { (info.name) }
            td class="mono" { (clip(&info.data.to_string(), 80)) }
            td class="mono" { @if opts != "{}" { (clip(&opts, 80)) } }
            td data-field="next-run" {
                @match info.next_run_ms {
                    Some(ms) => {
                        span class="mono" { (utc(ms)) } " " span class="muted" { (relative(ms)) }
                    },
                    None => span class="muted" { "never (no further tick)" },
                }
            }
            td data-field="last-run" {
                @match &s.last_run {
                    Some(run) => {
                        a class="mono" href=(job_href(queue, &run.job_id)) { (utc(run.tick_ms)) }
                        " "
                        span class={ "badge " (run.state.as_str()) } { (run.state.as_str()) }
                    },
                    None => span class="muted"
                        title="no job of its latest tick is stored: not fired yet, or removed by \
                               retention" {
                        "-"
                    },
                }
            }
            td { (remove_button(ctx, queue, &info.id)) }
        }
    }
}

/// The stored definitions that do not read back: they never fire; removing one is the way
/// out (then add it again).
fn corrupt_table(ctx: &PageCtx, queue: &str, corrupt: &[CorruptSchedule]) -> Markup {
    html! {
        div class="card" id="corrupt-schedules" {
            p {
                b { (corrupt.len()) " corrupt schedule(s)" }
                ": their stored definitions cannot be read, so they never fire. Remove them and \
                 add them again."
            }
            table {
                thead { tr { th { "Schedule" } th { "Why" } th {} } }
                tbody {
                    @for c in corrupt {
                        tr data-schedule=(c.id) class="corrupt" {
                            td class="mono" { (clip(&c.id, 200)) }
                            td class="mono" { (clip(&c.corrupt, 300)) }
                            td { (remove_button(ctx, queue, &c.id)) }
                        }
                    }
                }
            }
        }
    }
}

/// The Remove button of schedule `id`, for a dashboard that may change things.
fn remove_button(ctx: &PageCtx, queue: &str, id: &str) -> Markup {
    html! {
        @if ctx.can_change() {
            (button_form(
                &format!("{}/{}/remove", schedules_href(queue), url_component(id)),
                "Remove",
                "danger",
                &[],
                Some(&format!("Remove schedule {id}?")),
            ))
        }
    }
}

fn add_form(queue: &str, typed: Option<&ScheduleForm>) -> Markup {
    let value = |f: fn(&ScheduleForm) -> &Option<String>, default: &str| {
        typed
            .and_then(|t| f(t).as_deref())
            .unwrap_or(default)
            .to_string()
    };
    html! {
        details class="card" open[typed.is_some()] {
            summary { b { "Add a schedule" } }
            form id="add-schedule" method="post" action=(schedules_href(queue)) {
                p {
                    label {
                        "Schedule id "
                        input name="id" required size="24" value=(value(|f| &f.id, ""))
                            placeholder="e.g. nightly-report";
                    }
                    " " span class="muted" { "(an existing id is replaced)" }
                }
                p {
                    label {
                        "Job name "
                        input name="name" required size="30" value=(value(|f| &f.name, ""))
                            placeholder="e.g. analytics.rollup";
                    }
                }
                p {
                    label {
                        "Every "
                        input name="every" size="8" value=(value(|f| &f.every, ""))
                            placeholder="e.g. 5m";
                    }
                    " or "
                    label {
                        "cron "
                        input name="cron" size="20" value=(value(|f| &f.cron, ""))
                            placeholder="0 */5 * * * *";
                    }
                    " " span class="muted" { "(UTC; 5 fields, or 6 with seconds first, or 7 with a year last)" }
                }
                p {
                    label {
                        "Data (JSON)"
                        textarea name="data" rows="4" { (value(|f| &f.data, "{}")) }
                    }
                }
                p {
                    label {
                        "Options (JSON, optional: priority, attempts, backoff, timeout, delay, \
                         removeOnComplete, removeOnFail, group)"
                        textarea name="opts" rows="2"
                            placeholder=r#"{"attempts": 3, "backoff": "exp:1s"}"# {
                            (value(|f| &f.opts, ""))
                        }
                    }
                }
                button class="primary" { "Add schedule" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_form_comes_back_with_its_values_escaped() {
        let typed = ScheduleForm {
            id: Some("\"><script>x</script>".into()),
            cron: Some("61 * * * * *".into()),
            ..ScheduleForm::default()
        };
        let html = add_form("q", Some(&typed)).into_string();
        assert!(html.contains(" open>"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
        assert!(html.contains("value=\"61 * * * * *\""));
        assert!(!html.contains("<script>"));
        let v = typed.to_object().unwrap();
        assert_eq!(v["cron"], "61 * * * * *");
        assert!(v.get("every").is_none() && v.get("data").is_none());
        let bad = ScheduleForm {
            data: Some("{oops".into()),
            ..ScheduleForm::default()
        };
        assert!(bad
            .to_object()
            .unwrap_err()
            .to_string()
            .contains("data is not valid JSON"));
    }
}
