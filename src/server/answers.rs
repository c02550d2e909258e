//! The planning endpoints, `GET /v1/targets` and `GET /v1/forecast` (docs/http.md): their handlers
//! and the JSON bodies built from what the engine answers.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::oneshot;

use super::{
    App, HttpResponse, authenticate, error_response, form_pairs, json_response, shutting_down,
};
use crate::engine::{self, Command};

/// `GET /v1/targets`: every target in effect with its announcement history (docs/http.md).
pub(super) async fn targets(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    let Some(reports) = ask_targets(app).await else {
        return shutting_down();
    };
    json_response(StatusCode::OK, &targets_json(&reports))
}

/// The `from` and `to` days of a history query, and the report's `lang` when given.
type HistoryQuery = (
    Option<jiff::civil::Date>,
    Option<jiff::civil::Date>,
    Option<crate::report::Lang>,
);

/// The `from`, `to` and (for the report) `lang` of a history query, or the 400 naming the problem.
fn history_query(
    request: &Request<Incoming>,
    with_lang: bool,
) -> Result<HistoryQuery, Box<HttpResponse>> {
    let (mut from, mut to, mut lang) = (None, None, None);
    for (key, value) in form_pairs(request.uri().query().unwrap_or("")) {
        let slot = match key.as_str() {
            "from" => &mut from,
            "to" => &mut to,
            "lang" if with_lang => {
                lang = Some(crate::report::Lang::parse(&value).ok_or_else(|| {
                    Box::new(error_response(
                        StatusCode::BAD_REQUEST,
                        &format!("query parameter `lang`: {value:?}; expected `en` or `nl`"),
                    ))
                })?);
                continue;
            }
            other => {
                let expected = if with_lang {
                    "`from`, `to` or `lang`"
                } else {
                    "`from` or `to`"
                };
                return Err(Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("query parameter `{other}`: unknown; expected {expected}"),
                )));
            }
        };
        match crate::instant::parse_day(&value) {
            Ok(day) => *slot = Some(day),
            Err(e) => {
                return Err(Box::new(error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("query parameter `{key}`: {e}"),
                )));
            }
        }
    }
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(Box::new(error_response(
            StatusCode::BAD_REQUEST,
            &format!("query parameters `from` and `to`: {from} is after {to}"),
        )));
    }
    Ok((from, to, lang))
}

/// Asks the engine for the targets in effect with their histories.
async fn ask_targets(app: &App) -> Option<Vec<engine::TargetReport>> {
    let (reply, answer) = oneshot::channel();
    app.engine
        .commands
        .send(Command::Targets { reply })
        .await
        .ok()?;
    answer.await.ok()
}

/// Asks the engine for the history rows in a range.
async fn ask_history(
    app: &App,
    from: Option<jiff::civil::Date>,
    to: Option<jiff::civil::Date>,
) -> Option<engine::HistoryAnswer> {
    let (reply, answer) = oneshot::channel();
    app.engine
        .commands
        .send(Command::History { from, to, reply })
        .await
        .ok()?;
    answer.await.ok()
}

/// `GET /v1/history?from=YYYY-MM-DD&to=YYYY-MM-DD`: the daily history rows (docs/http.md).
pub(super) async fn history(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    let (from, to, _) = match history_query(&request, false) {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    match ask_history(app, from, to).await {
        Some(answer) => json_response(StatusCode::OK, &history_json(&answer)),
        None => shutting_down(),
    }
}

/// `GET /report?from=&to=&lang=`: the HTML report of the history and the targets (`crate::report`).
pub(super) async fn report(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    let (from, to, lang) = match history_query(&request, true) {
        Ok(query) => query,
        Err(refused) => return *refused,
    };
    let Some(history) = ask_history(app, from, to).await else {
        return shutting_down();
    };
    let Some(reports) = ask_targets(app).await else {
        return shutting_down();
    };
    let lang = lang.unwrap_or(history.report_language.into());
    let page = crate::report::render(lang, &history_json(&history), &targets_json(&reports));
    super::html_response(page)
}

/// The body of `GET /v1/history`.
pub fn history_json(answer: &engine::HistoryAnswer) -> serde_json::Value {
    // JSON has no infinity: a clearance time that is not finite is null.
    let seconds = |s: f64| s.is_finite().then_some(s);
    let rows: Vec<_> = answer
        .rows
        .iter()
        .map(|row| {
            let tracks: serde_json::Map<String, serde_json::Value> = answer
                .tracks
                .iter()
                .zip(&row.tracks)
                .map(|(name, t)| {
                    // The windows the row counted over, not today's (a reload may reorder them).
                    let due_soon: serde_json::Map<String, serde_json::Value> = row
                        .basis
                        .due_soon_windows
                        .iter()
                        .zip(&t.due_soon)
                        .map(|(w, &n)| (w.clone(), json!(n)))
                        .collect();
                    (
                        name.clone(),
                        json!({
                            "open": t.open,
                            "overdue": t.overdue,
                            "due_soon": due_soon,
                            "inflow_total": t.inflow_total,
                            "outflow_total": t.outflow_total,
                            "penalty_exposure_euros": t.penalty_exposure_cents as f64 / 100.0,
                            "penalty_incurred_euros": t.penalty_incurred_cents as f64 / 100.0,
                            "clearance_seconds": seconds(t.clearance_seconds),
                        }),
                    )
                })
                .collect();
            let mentor_ratio = (row.mentors > 0).then(|| row.mentees as f64 / row.mentors as f64);
            json!({
                "day": row.day,
                "at": jiff::Timestamp::from_nanosecond(i128::from(row.at))
                    .map_or_else(|_| row.at.to_string(), |t| t.to_string()),
                "tracks": tracks,
                "employees": {
                    "experienced": row.employees_experienced,
                    "inexperienced": row.employees_inexperienced,
                    "mentors": row.mentors,
                    "mentees": row.mentees,
                    "unmentored": row.unmentored,
                    "mentees_per_mentor": mentor_ratio,
                },
                "decision_window": row.basis.decision_window,
                "new_staff_weeks": row.basis.new_staff_weeks,
                "audits": {"passed_total": row.audits_passed, "failed_total": row.audits_failed},
                "decisions": {
                    "in_window": row.decisions_in_window,
                    "by_new_staff_in_window": row.decisions_by_new_staff_in_window,
                },
            })
        })
        .collect();
    json!({
        "decision_window": answer.decision_window,
        "new_staff_weeks": answer.new_staff_weeks,
        "days": rows,
    })
}

/// `GET /v1/forecast`: the what-if projection (docs/forecast.md); the query gives the parameters.
pub(super) async fn forecast(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    let pairs = form_pairs(request.uri().query().unwrap_or(""));
    let params = match engine::ForecastParams::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(params) => params,
        Err(problem) => return error_response(StatusCode::BAD_REQUEST, &problem.to_string()),
    };
    let (reply, answer) = oneshot::channel();
    if app
        .engine
        .commands
        .send(Command::Forecast { params, reply })
        .await
        .is_err()
    {
        return shutting_down();
    }
    let Ok(answer) = answer.await else {
        return shutting_down();
    };
    json_response(StatusCode::OK, &forecast_json(&answer))
}

/// The body of `GET /v1/forecast`: one row a week under `weeks`.
pub fn forecast_json(answer: &engine::ForecastAnswer) -> serde_json::Value {
    let f = &answer.forecast;
    let date = |nanos: i64| {
        jiff::Timestamp::from_nanosecond(i128::from(nanos))
            .map_or(serde_json::Value::Null, |t| json!(t.to_string()))
    };
    let round = |x: f64| (x * 10.0).round() / 10.0;
    let i = &f.inputs;
    let weeks: Vec<_> = f
        .weeks
        .iter()
        .map(|w| {
            json!({
                "week": w.week,
                "end": date(w.end),
                "open": round(w.open),
                "overdue_estimated": round(w.overdue),
                "decisions": round(w.decisions),
                "inflow": round(w.inflow),
                "staff_experienced": round(w.experienced),
                "staff_mentoring": round(w.mentors),
                "staff_inexperienced": round(w.inexperienced),
            })
        })
        .collect();
    let targets: Vec<_> = answer
        .targets
        .iter()
        .map(|t| json!({"target": t.name, "track": t.track, "clear_by": t.clear_by.to_string()}))
        .collect();
    let hires: Vec<_> = f
        .params
        .hires
        .iter()
        .map(|h| json!({"count": h.count, "week": h.week}))
        .collect();
    // JSON has no NaN or infinity: such a figure is null.
    let finite = |x: f64| {
        if x.is_finite() {
            json!(x)
        } else {
            serde_json::Value::Null
        }
    };
    json!({
        "start": date(i.start),
        "clearance": f.clearance.map_or(serde_json::Value::Null, date),
        "parameters": {
            "weeks": f.params.weeks,
            "hires": hires,
            "ramp_up_weeks": round(f.params.ramp_up_weeks),
            "mentor_ratio": finite(round(f.mentor_ratio)),
            "leavers_per_week": f.params.leavers_per_week,
            "inflow_per_week": finite(round(f.inflow_per_week)),
        },
        "observed": {
            "open": i.open,
            "overdue": i.overdue,
            "staff_experienced": i.experienced,
            "staff_mentoring": i.mentors,
            "staff_inexperienced": i.inexperienced,
            "decisions_per_employee_week_experienced": finite(i.rate_experienced),
            "decisions_per_employee_week_mentoring": finite(i.rate_mentor),
            "decisions_per_employee_week_inexperienced": finite(i.rate_inexperienced),
            "net_inflow_per_week": finite(i.net_inflow_per_week),
            "decision_period_weeks": finite(i.decision_period_weeks),
        },
        "targets": targets,
        "weeks": weeks,
    })
}

/// The body of `GET /v1/targets`.
pub fn targets_json(reports: &[engine::TargetReport]) -> serde_json::Value {
    let date = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string());
    let body: Vec<_> = reports
        .iter()
        .map(|t| {
            let history: Vec<_> = t
                .announcements
                .iter()
                .map(|a| {
                    let verdict = match (a.behind_projection, a.projected_clearance) {
                        (false, _) => "on or before the projected clearance at the time".to_owned(),
                        (true, None) => "announced while the projection said the backlog would never clear at the observed rate".to_owned(),
                        (true, Some(projected)) => format!(
                            "announced a date the projection already said would be missed: projected {projected}, {:.1} weeks later",
                            (projected.as_second() - a.clear_by.as_second()) as f64 / 604_800.0
                        ),
                    };
                    json!({
                        "announced_at": a.time.to_string(),
                        "track": a.track,
                        "clear_by": a.clear_by.to_string(),
                        "announced_by": a.announced_by,
                        "note": a.note,
                        "projected_clearance": date(a.projected_clearance),
                        "behind_projection": a.behind_projection,
                        "verdict": verdict,
                    })
                })
                .collect();
            json!({
                "target": t.name,
                "track": t.track,
                "configured_clear_by": date(t.configured_clear_by),
                "clear_by": t.clear_by.to_string(),
                "projected_clearance": date(t.projected_clearance),
                "announcements": history,
            })
        })
        .collect();
    serde_json::Value::Array(body)
}
