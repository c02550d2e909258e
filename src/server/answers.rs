//! The planning endpoints, `GET /v1/targets` and `GET /v1/forecast` (docs/http.md): their handlers
//! and the JSON bodies built from what the engine answers.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use tokio::sync::oneshot;

use super::{
    App, HttpResponse, authenticate, error_response, form_pairs, json_response, shutting_down,
};
use crate::api;
use crate::engine::{self, Command};

/// `GET /v1/targets`: every target in effect with its announcement history (docs/http.md).
pub(super) async fn targets(app: &App, request: Request<Incoming>) -> HttpResponse {
    if let Some(denied) = authenticate(app, &request) {
        return denied;
    }
    let mut newest = None;
    for (key, value) in form_pairs(request.uri().query().unwrap_or("")) {
        match key.as_str() {
            "announcements" => match value.parse::<usize>() {
                Ok(n) if n <= 10_000 => newest = Some(n),
                _ => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        &format!(
                            "query parameter `announcements`: {value:?} is not a number from 0 to 10000"
                        ),
                    );
                }
            },
            other => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("query parameter `{other}`: unknown; expected `announcements`"),
                );
            }
        }
    }
    let Some(mut reports) = ask_targets(app).await else {
        return shutting_down();
    };
    if let Some(newest) = newest {
        for report in &mut reports {
            let excess = report.announcements.len().saturating_sub(newest);
            report.announcements.drain(..excess);
        }
    }
    json_response(StatusCode::OK, &targets_body(&reports))
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
        Some(answer) => json_response(StatusCode::OK, &history_body(&answer)),
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
    let body = history_body(&history);
    // A range without rows says how many days the whole history holds.
    let held = if body.days.is_empty() {
        let Some(all) = ask_history(app, None, None).await else {
            return shutting_down();
        };
        crate::report::Held::of(&history_body(&all))
    } else {
        crate::report::Held::default()
    };
    let Some(view) = app.engine.view.latest() else {
        return shutting_down();
    };
    let threshold = |name: &str| {
        view.edge
            .thresholds
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| *value)
    };
    let context = crate::report::Context {
        max_audit_gap: jiff::SignedDuration::from_secs_f64(
            threshold("max_audit_gap_seconds").unwrap_or(14.0 * 86_400.0),
        ),
        min_decisions: threshold("min_weekly_decisions")
            .map_or(crate::report::DEFAULT_MIN_DECISIONS, |n| n.max(0.0) as u64),
        held,
    };
    let page = crate::report::render(lang, &body, &targets_body(&reports), &context);
    super::html_response(page)
}

/// The body of `GET /v1/history`.
pub fn history_body(answer: &engine::HistoryAnswer) -> api::History {
    // JSON has no infinity: a clearance time that is not finite is null.
    let seconds = |s: f64| s.is_finite().then_some(s);
    let days = answer
        .rows
        .iter()
        .map(|row| {
            let tracks = answer
                .tracks
                .iter()
                .zip(&row.tracks)
                .map(|(name, t)| {
                    // The windows the row counted over, not today's (a reload may reorder them).
                    let due_soon = row
                        .basis
                        .due_soon_windows
                        .iter()
                        .zip(&t.due_soon)
                        .map(|(w, &n)| (w.clone(), n))
                        .collect();
                    let track = api::HistoryTrack {
                        open: t.open,
                        overdue: t.overdue,
                        due_soon,
                        inflow_total: t.inflow_total,
                        outflow_total: t.outflow_total,
                        penalty_exposure_euros: t.penalty_exposure_cents as f64 / 100.0,
                        penalty_incurred_euros: t.penalty_incurred_cents as f64 / 100.0,
                        clearance_seconds: seconds(t.clearance_seconds),
                    };
                    (name.clone(), track)
                })
                .collect();
            let mentor_ratio = (row.mentors > 0).then(|| row.mentees as f64 / row.mentors as f64);
            api::HistoryDay {
                // The core writes the day as `YYYY-MM-DD` of a valid date.
                day: row.day.parse().unwrap_or_default(),
                at: jiff::Timestamp::from_nanosecond(i128::from(row.at)).unwrap_or_default(),
                // What the row counted over, not today's settings.
                decision_window: row.basis.decision_window.clone(),
                new_staff_weeks: row.basis.new_staff_weeks,
                tracks,
                employees: api::HistoryEmployees {
                    experienced: row.employees_experienced,
                    inexperienced: row.employees_inexperienced,
                    mentors: row.mentors,
                    mentees: row.mentees,
                    unmentored: row.unmentored,
                    mentees_per_mentor: mentor_ratio,
                },
                audits: api::HistoryAudits {
                    passed_total: row.audits_passed,
                    failed_total: row.audits_failed,
                },
                decisions: api::HistoryDecisions {
                    in_window: row.decisions_in_window,
                    by_new_staff_in_window: row.decisions_by_new_staff_in_window,
                },
            }
        })
        .collect();
    api::History {
        decision_window: answer.decision_window.clone(),
        new_staff_weeks: answer.new_staff_weeks,
        days,
    }
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
    json_response(StatusCode::OK, &forecast_body(&answer))
}

/// The body of `GET /v1/forecast`: one row a week under `weeks`.
pub fn forecast_body(answer: &engine::ForecastAnswer) -> api::Forecast {
    let f = &answer.forecast;
    // The core's instants are within jiff's range (the clock is a timestamp).
    let date = |nanos: i64| jiff::Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or_default();
    // One decimal; never -0 (adding +0 turns -0 into +0: sums of nothing are -0 in Rust).
    let round = |x: f64| (x * 10.0).round() / 10.0 + 0.0;
    // JSON has no NaN or infinity: such a figure is null.
    let finite = |x: f64| x.is_finite().then_some(x + 0.0);
    let i = &f.inputs;
    let weeks = f
        .weeks
        .iter()
        .map(|w| api::ForecastWeek {
            week: w.week,
            end: date(w.end),
            open: round(w.open),
            overdue_estimated: round(w.overdue),
            decisions: round(w.decisions),
            inflow: round(w.inflow),
            staff_experienced: round(w.experienced),
            staff_mentoring: round(w.mentors),
            staff_inexperienced: round(w.inexperienced),
        })
        .collect();
    let targets = answer
        .targets
        .iter()
        .map(|t| api::ForecastTarget {
            target: t.name.clone(),
            track: t.track.clone(),
            clear_by: t.clear_by,
        })
        .collect();
    let hires = f
        .params
        .hires
        .iter()
        .map(|h| api::ForecastHire {
            count: h.count,
            week: h.week,
        })
        .collect();
    api::Forecast {
        start: date(i.start),
        clearance: f.clearance.map(date),
        clearance_outlook: match f.outlook {
            engine::Outlook::WithinHorizon => api::ClearanceOutlook::WithinHorizon,
            engine::Outlook::NotWithinHorizon => api::ClearanceOutlook::NotWithinHorizon,
            engine::Outlook::Never => api::ClearanceOutlook::Never,
        },
        parameters: api::ForecastParameters {
            weeks: f.params.weeks,
            hires,
            ramp_up_weeks: round(f.params.ramp_up_weeks),
            mentor_ratio: finite(round(f.mentor_ratio)),
            leavers_per_week: f.params.leavers_per_week,
            inflow_per_week: finite(round(f.inflow_per_week)),
        },
        observed: api::ForecastObserved {
            open: i.open + 0.0,
            overdue: i.overdue + 0.0,
            staff_experienced: i.experienced + 0.0,
            staff_mentoring: i.mentors + 0.0,
            staff_inexperienced: i.inexperienced + 0.0,
            decisions_per_employee_week_experienced: finite(i.rate_experienced),
            decisions_per_employee_week_mentoring: finite(i.rate_mentor),
            decisions_per_employee_week_inexperienced: finite(i.rate_inexperienced),
            net_inflow_per_week: finite(i.net_inflow_per_week),
            decision_period_weeks: finite(i.decision_period_weeks),
        },
        targets,
        weeks,
    }
}

/// The body of `GET /v1/targets`.
pub fn targets_body(reports: &[engine::TargetReport]) -> Vec<api::Target> {
    reports
        .iter()
        .map(|t| {
            let announcements = t
                .announcements
                .iter()
                .map(|a| {
                    let verdict = match (a.behind_projection, a.projected_clearance) {
                        (false, Some(projected)) => format!(
                            "on or after the projected clearance at the time: projected {projected}, {:.1} weeks earlier",
                            (a.clear_by.as_second() - projected.as_second()) as f64 / 604_800.0
                        ),
                        // Not behind, yet no projection: cannot happen (never is behind every date).
                        (false, None) => "on or after the projected clearance at the time".to_owned(),
                        (true, None) => "announced while the projection said the backlog would never clear at the observed rate".to_owned(),
                        (true, Some(projected)) => format!(
                            "announced a date the projection already said would be missed: projected {projected}, {:.1} weeks later",
                            (projected.as_second() - a.clear_by.as_second()) as f64 / 604_800.0
                        ),
                    };
                    api::Announcement {
                        announced_at: a.time,
                        track: a.track.clone(),
                        clear_by: a.clear_by,
                        announced_by: a.announced_by.clone(),
                        note: a.note.clone(),
                        projected_clearance: a.projected_clearance,
                        behind_projection: a.behind_projection,
                        verdict,
                    }
                })
                .collect();
            api::Target {
                target: t.name.clone(),
                track: t.track.clone(),
                configured_clear_by: t.configured_clear_by,
                clear_by: t.clear_by,
                projected_clearance: t.projected_clearance,
                announcements,
                announcements_total: t.announcements_total,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict of an announcement says which side of the projection its date is on.
    #[test]
    fn a_date_after_the_projection_is_not_called_before_it() {
        let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap();
        let announcement = |clear_by: &str, projected: Option<&str>, behind: bool| {
            crate::core::state::AnnouncementReport {
                time: at("2026-10-01T00:00:00Z"),
                track: None,
                clear_by: at(clear_by),
                announced_by: None,
                note: None,
                projected_clearance: projected.map(at),
                behind_projection: behind,
            }
        };
        let report = engine::TargetReport {
            name: "backlog".to_owned(),
            track: None,
            configured_clear_by: None,
            clear_by: at("2028-01-01T00:00:00Z"),
            projected_clearance: Some(at("2026-12-26T00:00:00Z")),
            announcements: vec![
                announcement("2028-01-01T00:00:00Z", Some("2026-12-26T00:00:00Z"), false),
                announcement("2026-12-01T00:00:00Z", Some("2026-12-26T00:00:00Z"), true),
            ],
            announcements_total: 2,
        };
        let body = targets_body(&[report]);
        let verdicts: Vec<&str> = body[0]
            .announcements
            .iter()
            .map(|a| a.verdict.as_str())
            .collect();
        assert_eq!(
            verdicts,
            [
                "on or after the projected clearance at the time: projected 2026-12-26T00:00:00Z, 53.0 weeks earlier",
                "announced a date the projection already said would be missed: projected 2026-12-26T00:00:00Z, 3.6 weeks later",
            ]
        );
    }
}
