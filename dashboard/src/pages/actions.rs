//! What the pages' buttons do: HTML form posts that steer a queue or a job through
//! queue-core, then go back to the page they came from with a notice (303 See Other), or
//! show an error page naming what went wrong (e.g. retrying a job that is not failed).
//! The auth guard has already checked credentials, read-only mode and that the post came
//! from this dashboard's own pages.

use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use queue_core::internal::job_spec::parse_job_value;
use queue_core::{Cancelled, Produced};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error_response;
use super::login::safe_next;
use super::queue::tab_href;
use crate::api::clean_state;
use crate::backend::{deadline, CancelDone};
use crate::error::AppError;
use crate::html::{job_href, queue_href, url_component};
use crate::session::Access;
use crate::state::AppState;

/// Fields the action forms may send.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    /// The tab to go back to (queue actions), or the state to clean.
    pub state: Option<String>,
    /// Clean only jobs older than this (`1h`).
    pub older_than: Option<String>,
    /// The page to go back to (job actions from a listing).
    pub return_to: Option<String>,
}

/// `POST /queues/{q}/{action}`: pause, resume, retry-all, promote-all, clean, drain.
pub async fn queue_action(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((queue, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let run = async {
        let q = state.backend().existing_queue(&queue).await?;
        let back = form.state.clone().unwrap_or_else(|| "waiting".into());
        let (tab, notice) = match action.as_str() {
            "pause" => {
                deadline(q.pause()).await?;
                (back, format!("paused {queue}: workers start none of its jobs"))
            }
            "resume" => {
                deadline(q.resume()).await?;
                (back, format!("resumed {queue}"))
            }
            "retry-all" => {
                let n = deadline(q.retry_all_failed()).await?;
                ("waiting".into(), format!("retrying {n} failed job(s)"))
            }
            "promote-all" => {
                let n = deadline(q.promote_all_delayed()).await?;
                ("waiting".into(), format!("promoted {n} delayed job(s)"))
            }
            "clean" => {
                let which = clean_state(form.state.as_deref().unwrap_or(""))?;
                let older = form.older_than.as_deref().filter(|s| !s.trim().is_empty()).unwrap_or("0s");
                let older_than = queue_core::parse_duration(older.trim())?;
                let n = deadline(q.clean(which, older_than, None)).await?;
                (which.to_string(), format!("removed {n} {which} job(s) older than {older}"))
            }
            "drain" => {
                let n = deadline(q.drain()).await?;
                (back, format!("removed {n} waiting or delayed job(s)"))
            }
            other => {
                return Err(AppError::NotFound(format!(
                    "no queue action {other:?}: use pause, resume, retry-all, promote-all, clean or drain"
                )))
            }
        };
        Ok::<_, AppError>(Redirect::to(&tab_href(&queue, &tab, &notice)))
    };
    match run.await {
        Ok(r) => r.into_response(),
        Err(e) => error_response(&state, Some(access), e),
    }
}

/// `POST /queues/{q}/jobs/{id}/{action}`: retry, promote, cancel, remove.
pub async fn job_action(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((queue, id, action)): Path<(String, String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let run = async {
        let q = state.backend().existing_queue(&queue).await?;
        let (notice, default_back) = match action.as_str() {
            "retry" => {
                deadline(q.retry_job(&id)).await?;
                (format!("retrying job {id}"), job_href(&queue, &id))
            }
            "promote" => {
                deadline(q.promote_job(&id)).await?;
                (
                    format!("promoted job {id}: it is waiting"),
                    job_href(&queue, &id),
                )
            }
            "cancel" => {
                let notice = match state.backend().cancel_walking_on(&q, &id).await? {
                    CancelDone::Finished(Cancelled::Now { children: 0 }) => {
                        format!("cancelled job {id}")
                    }
                    CancelDone::Finished(Cancelled::Now { children }) => {
                        format!("cancelled job {id} and {children} of its flow's jobs")
                    }
                    CancelDone::Finished(Cancelled::Requested) => {
                        format!("cancelling job {id}: its worker stops it within a second")
                    }
                    CancelDone::Walking => format!(
                        "cancelled job {id}: its flow's jobs are being cancelled in the background"
                    ),
                };
                (notice, job_href(&queue, &id))
            }
            "remove" => {
                deadline(q.remove_job(&id)).await?;
                (format!("removed job {id}"), queue_href(&queue))
            }
            other => {
                return Err(AppError::NotFound(format!(
                    "no job action {other:?}: use retry, promote, cancel or remove"
                )))
            }
        };
        let back = back_to(form.return_to.as_deref(), default_back);
        Ok::<_, AppError>(Redirect::to(&with_notice(&back, &notice)))
    };
    match run.await {
        Ok(r) => r.into_response(),
        Err(e) => error_response(&state, Some(access), e),
    }
}

/// The "add a job" form: a name, JSON data, optional JSON options.
#[derive(Debug, Default, Deserialize)]
pub struct AddJobForm {
    /// Job name.
    pub name: Option<String>,
    /// Data as JSON text (empty: null).
    pub data: Option<String>,
    /// Options as a JSON object (empty: none).
    pub opts: Option<String>,
}

/// `POST /queues/{q}/jobs` from the form: checked like the API's enqueue, then the new
/// job's page; or, when Redis is down and the job was spooled (`JOBQ_FALLBACK=spool`), the
/// overview with a notice saying so (the job's page cannot be read until Redis is back).
pub async fn add_job(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(queue): Path<String>,
    Form(form): Form<AddJobForm>,
) -> Response {
    let run = async {
        queue_core::internal::validate::validate_queue_name(&queue)?;
        let job =
            parse_job_value(form_job(&form)?).map_err(|e| AppError::BadRequest(e.to_string()))?;
        let produced = state.enqueuer().add(&queue, vec![job]).await?;
        let to = match produced.into_iter().next() {
            Some(Produced::Stored(added)) => {
                let notice = if added.duplicate {
                    format!(
                        "a job with id {} is already stored: nothing added",
                        added.id
                    )
                } else if added.debounced {
                    format!(
                        "debounced: job {}, not started yet, took this data; nothing added",
                        added.id
                    )
                } else {
                    format!("added job {}", added.id)
                };
                with_notice(&job_href(&queue, &added.id), &notice)
            }
            Some(Produced::Spooled { id, reason, .. }) => with_notice(
                "/",
                &format!(
                    "{reason}: job {id} is spooled (JOBQ_FALLBACK=spool) and will be added to \
                     {queue} under this id once Redis is back"
                ),
            ),
            _ => return Err(AppError::Internal("add returned nothing".into())),
        };
        Ok::<_, AppError>(Redirect::to(&to))
    };
    match run.await {
        Ok(r) => r.into_response(),
        Err(e) => error_response(&state, Some(access), e),
    }
}

/// The form's fields as the JSON job form `{"name", "data", "opts"}`.
fn form_job(form: &AddJobForm) -> Result<Value, AppError> {
    let mut job = Map::new();
    job.insert(
        "name".into(),
        Value::String(form.name.clone().unwrap_or_default().trim().to_string()),
    );
    if let Some(v) = json_field("data", form.data.as_deref())? {
        job.insert("data".into(), v);
    }
    if let Some(v) = json_field("options", form.opts.as_deref())? {
        job.insert("opts".into(), v);
    }
    Ok(Value::Object(job))
}

/// A form's JSON field (`what`: how the error names it); `None` when left empty.
pub fn json_field(what: &str, text: Option<&str>) -> Result<Option<Value>, AppError> {
    let text = text.unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    crate::strict_json::parse(text.as_bytes())
        .map(Some)
        .map_err(|e| AppError::BadRequest(format!("{what} is not valid JSON: {e}")))
}

/// The page a job action goes back to: `return_to` when it is a path of this dashboard
/// (the rule of [`safe_next`]: no open redirects), else `default`.
fn back_to(return_to: Option<&str>, default: String) -> String {
    match return_to {
        Some(r) if safe_next(Some(r)) == r => r.to_string(),
        _ => default,
    }
}

/// `path` with `notice=` added to its query.
pub fn with_notice(path: &str, notice: &str) -> String {
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}notice={}", url_component(notice))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_become_a_job() {
        let form = AddJobForm {
            name: Some(" diag.echo ".into()),
            data: Some(r#"{"a": 1}"#.into()),
            opts: Some(r#"{"attempts": 2}"#.into()),
        };
        let job = parse_job_value(form_job(&form).unwrap()).unwrap();
        assert_eq!(
            (job.name.as_str(), job.opts.attempts),
            ("diag.echo", Some(2))
        );
        let bad = AddJobForm {
            name: Some("x".into()),
            data: Some("{oops".into()),
            opts: None,
        };
        assert!(form_job(&bad)
            .unwrap_err()
            .to_string()
            .contains("data is not valid JSON"));
        assert_eq!(
            with_notice("/q?state=a", "ok done"),
            "/q?state=a&notice=ok%20done"
        );
    }

    #[test]
    fn a_job_action_goes_back_only_to_a_page_of_this_dashboard() {
        let default = || "/queues/a/jobs/1".to_string();
        assert_eq!(
            back_to(Some("/queues/a?state=failed"), default()),
            "/queues/a?state=failed"
        );
        for bad in ["/\t/evil.example", "//evil", "/\\evil", "https://evil", ""] {
            assert_eq!(back_to(Some(bad), default()), default(), "{bad:?}");
        }
        assert_eq!(back_to(None, default()), default());
    }
}
