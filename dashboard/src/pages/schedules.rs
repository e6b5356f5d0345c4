//! `/queues/{queue}/schedules`: a queue's schedules (repeatable jobs), each with its repeat
//! (every N or cron, UTC), the job it adds (name, data, options), its next run and the job
//! of its latest tick while that is stored; a Remove button on each, and a form that adds
//! one, checked as `jobq schedule add` checks its flags (`schedules.rs`). A refused add
//! shows the page again with the error and the values typed. A schedule's id, name and
//! data are whatever someone stored: all escaped.

use axum::extract::{Form, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::actions::{json_field, with_notice};
use super::layout::{button_form, error_banner, notice_banner, page};
use super::overview::NoticeQuery;
use super::{error_response, refused_form, respond, PageCtx};
use crate::error::AppError;
use crate::html::{clip, esc, job_href, queue_href, relative, schedules_href, url_component, utc};
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
    let banner = notice_banner(query.notice.as_deref()).into_string();
    let page = render(&state, access, &queue, &banner, None).await;
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
            let banner = error_banner(&e.to_string()).into_string();
            let page = render(&state, access, &queue, &banner, Some(&form)).await;
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

/// The page, under `banner` (a notice or an error, already HTML); `typed`: the values of a
/// refused add, shown again in the form.
async fn render(
    state: &AppState,
    access: Access,
    queue: &str,
    banner: &str,
    typed: Option<&ScheduleForm>,
) -> Result<Html<String>, AppError> {
    let ctx = PageCtx::new(state, Some(access));
    let q = state.backend().existing_queue(queue).await?;
    let listed = list(&q).await?;
    let mut body = String::with_capacity(8192);
    body.push_str(banner);
    body.push_str(&format!(
        "<section id=\"schedules\" data-queue=\"{}\"><h1>Schedules of <a href=\"{}\">{}</a></h1>\
         <p class=\"muted\">Each tick adds a job with the id <span class=\"mono\">\
         sched:&lt;schedule&gt;:&lt;tick ms&gt;</span>; cron expressions are in UTC. \
         Last run: the job of the latest tick, while it is stored.</p>",
        esc(queue),
        esc(&queue_href(queue)),
        esc(queue)
    ));
    body.push_str(&table(&ctx, queue, &listed));
    if ctx.can_change() {
        body.push_str(&add_form(queue, typed));
    }
    body.push_str("</section>");
    Ok(page(
        &ctx,
        &format!("schedules · {queue}"),
        maud::PreEscaped(body),
        &[
            (queue, queue_href(queue)),
            ("schedules", schedules_href(queue)),
        ],
        "",
    ))
}

fn table(ctx: &PageCtx, queue: &str, listed: &[Listed]) -> String {
    if listed.is_empty() {
        return "<div class=\"card muted\" id=\"no-schedules\">No schedules: add one below, or \
                with <span class=\"mono\">jobq schedule add</span>.</div>"
            .into();
    }
    let mut out = format!(
        "<p class=\"muted\">{} schedule(s){}</p><table id=\"schedules-table\"><thead><tr>\
         <th>Schedule</th><th>Repeat</th><th>Job name</th><th>Data</th><th>Options</th>\
         <th>Next run</th><th>Last run</th><th></th></tr></thead><tbody>",
        listed.len(),
        if listed.len() > LAST_RUN_LOOKUPS {
            format!(" (the last run of the first {LAST_RUN_LOOKUPS} only)")
        } else {
            String::new()
        }
    );
    for s in listed {
        let info = &s.info;
        let opts = serde_json::to_string(&info.opts).unwrap_or_default();
        let next = match info.next_run_ms {
            Some(ms) => format!(
                "<span class=\"mono\">{}</span> <span class=\"muted\">{}</span>",
                esc(&utc(ms)),
                esc(&relative(ms))
            ),
            None => "<span class=\"muted\">never (no further tick)</span>".into(),
        };
        let last = match &s.last_run {
            Some(run) => format!(
                "<a class=\"mono\" href=\"{}\">{}</a> <span class=\"badge {st}\">{st}</span>",
                esc(&job_href(queue, &run.job_id)),
                esc(&utc(run.tick_ms)),
                st = run.state
            ),
            None => "<span class=\"muted\" title=\"no job of its latest tick is stored: not \
                     fired yet, or removed by retention\">-</span>"
                .into(),
        };
        let remove = if ctx.can_change() {
            button_form(
                &format!(
                    "{}/{}/remove",
                    schedules_href(queue),
                    url_component(&info.id)
                ),
                "Remove",
                "danger",
                &[],
                Some(&format!("Remove schedule {}?", info.id)),
            )
            .into_string()
        } else {
            String::new()
        };
        out.push_str(&format!(
            "<tr data-schedule=\"{id}\"><td class=\"mono\">{id}</td><td class=\"mono\">{repeat}</td>\
             <td>{name}</td><td class=\"mono\">{data}</td><td class=\"mono\">{opts}</td>\
             <td data-field=\"next-run\">{next}</td><td data-field=\"last-run\">{last}</td>\
             <td>{remove}</td></tr>",
            id = esc(&info.id),
            repeat = esc(&info.repeat.to_string()),
            name = esc(&info.name),
            data = esc(&clip(&info.data.to_string(), 80)),
            opts = if opts == "{}" {
                String::new()
            } else {
                esc(&clip(&opts, 80))
            },
        ));
    }
    out.push_str("</tbody></table>");
    out
}

fn add_form(queue: &str, typed: Option<&ScheduleForm>) -> String {
    let value = |f: fn(&ScheduleForm) -> &Option<String>, default: &str| {
        esc(typed.and_then(|t| f(t).as_deref()).unwrap_or(default))
    };
    format!(
        "<details class=\"card\"{open}><summary><b>Add a schedule</b></summary>\
         <form id=\"add-schedule\" method=\"post\" action=\"{action}\">\
         <p><label>Schedule id <input name=\"id\" required size=\"24\" value=\"{id}\" \
         placeholder=\"e.g. nightly-report\"></label> \
         <span class=\"muted\">(an existing id is replaced)</span></p>\
         <p><label>Job name <input name=\"name\" required size=\"30\" value=\"{name}\" \
         placeholder=\"e.g. analytics.rollup\"></label></p>\
         <p><label>Every <input name=\"every\" size=\"8\" value=\"{every}\" \
         placeholder=\"e.g. 5m\"></label> or <label>cron <input name=\"cron\" size=\"20\" \
         value=\"{cron}\" placeholder=\"0 */5 * * * *\"></label> \
         <span class=\"muted\">(UTC; 5 fields, or 6 with seconds first)</span></p>\
         <p><label>Data (JSON)<textarea name=\"data\" rows=\"4\">{data}</textarea></label></p>\
         <p><label>Options (JSON, optional: priority, attempts, backoff, timeout, delay, \
         removeOnComplete, removeOnFail, group)<textarea name=\"opts\" rows=\"2\" \
         placeholder='{{\"attempts\": 3, \"backoff\": \"exp:1s\"}}'>{opts}</textarea></label></p>\
         <button class=\"primary\">Add schedule</button></form></details>",
        open = if typed.is_some() { " open" } else { "" },
        action = esc(&schedules_href(queue)),
        id = value(|f| &f.id, ""),
        name = value(|f| &f.name, ""),
        every = value(|f| &f.every, ""),
        cron = value(|f| &f.cron, ""),
        data = value(|f| &f.data, "{}"),
        opts = value(|f| &f.opts, ""),
    )
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
        let html = add_form("q", Some(&typed));
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
