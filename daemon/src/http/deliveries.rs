//! `/api/v1/deliveries`: the loaded deliveries, their errors, and their
//! KPIs summed over runs and per aggregation period.

use super::AppState;
use super::auth::{Caller, Right};
use super::error::{ApiError, ApiResult};
use super::views::{
    DefinitionSummary, DeliveryDetail, DeliveryList, DeliverySummary, FileErrorView, PeriodKpi,
};
use crate::definitions::{Delivery, When};
use crate::kpi::{self, Kpi};
use crate::store::{Counters, Run, RunFilter};
use axum::Json;
use axum::extract::{Path, State};
use std::collections::BTreeMap;

/// Runs read per page while summing a delivery.
const PAGE: usize = 500;

/// `GET /api/v1/deliveries`.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DeliveryList>> {
    caller.require(Right::Read, "read deliveries")?;
    let now = state.engine.clock.now();
    let deliveries = state
        .deliveries
        .borrow()
        .values()
        .map(|d| summary(d, now))
        .collect();
    let errors = state
        .errors
        .borrow()
        .iter()
        .map(|e| FileErrorView {
            file: e.file.display().to_string(),
            line: e.line,
            column: e.column,
            message: e.message.clone(),
        })
        .collect();
    Ok(Json(DeliveryList { deliveries, errors }))
}

/// `GET /api/v1/deliveries/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    caller.require(Right::Read, "read deliveries")?;
    Ok(Json(detail(&state, &id).await?))
}

/// `POST /api/v1/deliveries/{id}/statistics`: writes the buffered tracking
/// events, recounts every run of the delivery from its recorded outcomes
/// and tracking records, then answers as `show`.
pub async fn statistics(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    caller.require(Right::Start, "compute statistics")?;
    // The opens and clicks this instance still buffers become tracking
    // records first, so the recount includes what was tracked until now
    // (kpis.md: the recount uses the recorded outcomes and tracking records).
    if let Some(tracking) = &state.engine.tracking {
        tracking.buffer().flush(&state.engine.store).await;
    }
    let runs = all_runs(&state, &id).await?;
    for run in &runs {
        state.engine.store.recount(&run.id).await?;
    }
    tracing::info!(delivery_id = ?id, runs = runs.len(), "Statistics recomputed.");
    Ok(Json(detail(&state, &id).await?))
}

/// The summary of a loaded delivery.
pub fn summary(d: &Delivery, now: chrono::DateTime<chrono::Utc>) -> DeliverySummary {
    DeliverySummary {
        id: d.id().to_owned(),
        definition: definition(d),
        next_run_at: d.schedule().next_after(now),
    }
}

/// What the file of a loaded delivery says.
fn definition(d: &Delivery) -> DefinitionSummary {
    let schedule = d.schedule();
    let (kind, cron) = match schedule.when() {
        When::Once => ("once", None),
        When::At { .. } => ("at", None),
        When::Cron { cron } => ("cron", Some(cron.clone())),
    };
    DefinitionSummary {
        label: d.label().map(str::to_owned),
        channel: d.channel().to_owned(),
        file: d.source().display().to_string(),
        schedule: kind.to_owned(),
        cron,
        confirm: schedule.confirm(),
        aggregation: serde_json::to_value(schedule.aggregation())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        definition_hash: d.definition_hash(),
    }
}

async fn detail(state: &AppState, id: &str) -> ApiResult<DeliveryDetail> {
    let now = state.engine.clock.now();
    let delivery = state.deliveries.borrow().get(id).cloned();
    let runs = all_runs(state, id).await?;
    if delivery.is_none() && runs.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no delivery `{id}` is loaded and none has runs: list them with GET /api/v1/deliveries"
        )));
    }
    let tracking = match &delivery {
        Some(d) => state.tracking(d.channel()),
        None => runs.first().is_some_and(|r| state.tracking(&r.channel)),
    };
    let mut total = Counters::default();
    let mut periods: BTreeMap<String, Counters> = BTreeMap::new();
    for run in &runs {
        kpi::add(&mut total, &run.counters);
        if let Some(period) = &run.aggregation_period {
            kpi::add(periods.entry(period.clone()).or_default(), &run.counters);
        }
    }
    Ok(DeliveryDetail {
        id: id.to_owned(),
        next_run_at: delivery.as_ref().and_then(|d| d.schedule().next_after(now)),
        definition: delivery.as_deref().map(definition),
        kpi: Kpi::from_counters(&total, tracking),
        runs: runs.len() as u64,
        periods: periods
            .into_iter()
            .rev()
            .map(|(period, counters)| PeriodKpi {
                period,
                kpi: Kpi::from_counters(&counters, tracking),
            })
            .collect(),
    })
}

async fn all_runs(state: &AppState, delivery_id: &str) -> ApiResult<Vec<Run>> {
    let filter = RunFilter {
        state: None,
        delivery_id: Some(delivery_id.to_owned()),
    };
    let mut runs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = state
            .engine
            .store
            .list_runs(&filter, cursor.as_deref(), PAGE)
            .await?;
        runs.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(runs),
        }
    }
}
