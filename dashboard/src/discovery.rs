//! Discovery: `GET /api/workers`, the live workers (what `jobq workers --json` prints, as
//! an array: id, host, pid, version, queues, concurrency, running jobs, started, last seen),
//! and `GET /api/redis`, Redis at a glance: per node (every master of a cluster) memory,
//! ops/s, clients, keyspace, eviction policy, AOF, uptime and version, and a `warnings`
//! list that flags an evicting `maxmemory-policy` and AOF off. Both read through
//! queue-core within the backend's deadline; Redis unreachable is a 503.

use axum::extract::State;
use axum::Json;
use queue_core::{list_workers, RedisOverview, WorkerInfo};

use crate::backend::deadline;
use crate::error::ApiResult;
use crate::query::NoQuery;
use crate::state::AppState;

/// The live workers, sorted by host, pid and id (a corrupt record is listed with
/// `corrupt`, never an error).
pub async fn workers(backend: &crate::backend::Backend) -> ApiResult<Vec<WorkerInfo>> {
    deadline(list_workers(backend.redis()?, backend.prefix())).await
}

/// Redis at a glance.
pub async fn overview(backend: &crate::backend::Backend) -> ApiResult<RedisOverview> {
    deadline(backend.redis()?.overview()).await
}

/// `GET /api/workers`.
#[utoipa::path(get, path = "/api/workers", operation_id = "listWorkers", tag = "discovery",
    responses(
        (status = 200, description = "The live workers (what `jobq workers --json` prints)",
            body = Vec<WorkerInfo>),
    ))]
pub async fn list_workers_api(
    State(state): State<AppState>,
    _: NoQuery,
) -> ApiResult<Json<Vec<WorkerInfo>>> {
    Ok(Json(workers(state.backend()).await?))
}

/// `GET /api/redis`.
#[utoipa::path(get, path = "/api/redis", operation_id = "redisOverview", tag = "discovery",
    responses(
        (status = 200, description = "Redis at a glance, per node, with warnings",
            body = RedisOverview),
    ))]
pub async fn redis_api(
    State(state): State<AppState>,
    _: NoQuery,
) -> ApiResult<Json<RedisOverview>> {
    Ok(Json(overview(state.backend()).await?))
}
