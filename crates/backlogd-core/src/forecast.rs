//! The what-if forecast: a week-by-week fluid projection of the backlog from the current state and
//! the observed productivity (docs/forecast.md has the equations, assumptions and limits).
//!
//! Pure arithmetic on a handful of figures ([`ForecastInputs`], taken from the state) and the
//! what-if parameters ([`ForecastParams`], parsed from query pairs); no IO, no clock.

use super::time::{EpochNanos, NANOS_PER_DAY};

/// The longest projection, in weeks.
pub const MAX_WEEKS: u32 = 104;
/// The most hiring waves one forecast takes.
pub const MAX_HIRES: usize = 32;

/// What the forecast starts from: the state at `start`, and rates observed over the forecast
/// window (decisions per employee-week).
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastInputs {
    pub start: EpochNanos,
    pub open: f64,
    pub overdue: f64,
    /// Active experienced employees who mentor nobody / who mentor at least one mentee.
    pub experienced: f64,
    pub mentors: f64,
    pub inexperienced: f64,
    /// Decisions per employee-week of experienced non-mentors, of mentors and of inexperienced
    /// staff over the forecast window (0 when there was no presence).
    pub rate_experienced: f64,
    pub rate_mentor: f64,
    pub rate_inexperienced: f64,
    /// Registrations and reopenings less closures without a decision, per week, over the window.
    pub net_inflow_per_week: f64,
    /// The statutory decision period, in weeks (weighted by open cases over the tracks).
    pub decision_period_weeks: f64,
}

/// One hiring wave: `count` inexperienced employees join at the start of `week` (0 = now).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hire {
    pub count: f64,
    pub week: u32,
}

/// The what-if parameters; `None` takes the observed value.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastParams {
    pub weeks: u32,
    pub hires: Vec<Hire>,
    /// Weeks over which a new hire's productivity rises from the inexperienced rate to the
    /// experienced rate.
    pub ramp_up_weeks: f64,
    /// Mentees per mentor while they ramp up; `None`: the observed ratio (inexperienced staff per
    /// mentor), 0: nobody mentors.
    pub mentor_ratio: Option<f64>,
    pub leavers_per_week: f64,
    pub inflow_per_week: Option<f64>,
}

impl Default for ForecastParams {
    fn default() -> Self {
        ForecastParams {
            weeks: 52,
            hires: Vec::new(),
            ramp_up_weeks: 26.0,
            mentor_ratio: None,
            leavers_per_week: 0.0,
            inflow_per_week: None,
        }
    }
}

/// A what-if parameter that cannot be used, naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{name}`: {reason}")]
pub struct ParamError {
    pub name: String,
    pub reason: String,
}

fn param_error(name: &str, reason: impl Into<String>) -> ParamError {
    ParamError {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

fn number(name: &str, value: &str, max: f64) -> Result<f64, ParamError> {
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && (0.0..=max).contains(&n) => Ok(n),
        _ => Err(param_error(
            name,
            format!("\"{value}\" is not a number from 0 to {max}"),
        )),
    }
}

/// Weeks of a duration: an ISO 8601 duration without months and years ("P26W", "P180D",
/// "PT5000000M": every unit counts) or a number of weeks.
fn weeks_of(name: &str, value: &str) -> Result<f64, ParamError> {
    if let Ok(n) = value.trim().parse::<f64>() {
        return if n.is_finite() && (0.0..=520.0).contains(&n) {
            Ok(n)
        } else {
            Err(param_error(
                name,
                format!("\"{value}\" is not 0 to 520 weeks"),
            ))
        };
    }
    let span: jiff::Span = value.parse().map_err(|_| {
        param_error(
            name,
            format!("\"{value}\" is neither a number of weeks nor a duration such as \"P26W\""),
        )
    })?;
    if span.get_years() != 0 || span.get_months() != 0 || span.is_negative() {
        return Err(param_error(
            name,
            format!(
                "\"{value}\" must be in weeks and days (months and years have no fixed length)"
            ),
        ));
    }
    // Every unit counts, down to nanoseconds; weeks are 7 days of 24 hours.
    let too_long = || param_error(name, format!("\"{value}\" is more than 520 weeks"));
    let length = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|_| too_long())?;
    let weeks = length.as_secs_f64() / (7.0 * 86_400.0);
    if weeks > 520.0 {
        return Err(too_long());
    }
    Ok(weeks)
}

impl ForecastParams {
    /// Parameters from query pairs (`weeks`, `hires` as `COUNT@WEEK` separated by commas, also
    /// repeated, `ramp_up`, `mentor_ratio`, `leavers_per_week`, `inflow_per_week`). Unknown keys
    /// are an error, so that a misspelt parameter is not silently ignored.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<ForecastParams, ParamError> {
        let mut params = ForecastParams::default();
        for (key, value) in pairs {
            match key {
                "weeks" => {
                    params.weeks = match value.trim().parse::<u32>() {
                        Ok(n) if (1..=MAX_WEEKS).contains(&n) => n,
                        _ => {
                            return Err(param_error(
                                key,
                                format!("\"{value}\" is not a whole number from 1 to {MAX_WEEKS}"),
                            ));
                        }
                    }
                }
                "hires" => {
                    for wave in value.split(',').filter(|w| !w.trim().is_empty()) {
                        let (count, week) = wave.split_once('@').ok_or_else(|| {
                            param_error(
                                key,
                                format!("\"{wave}\" is not COUNT@WEEK, e.g. \"250@2\""),
                            )
                        })?;
                        let count = number(key, count, 1e6)?;
                        let week = match week.trim().parse::<u32>() {
                            Ok(w) if w < MAX_WEEKS => w,
                            _ => {
                                return Err(param_error(
                                    key,
                                    format!(
                                        "week \"{week}\" is not a whole number from 0 to {}",
                                        MAX_WEEKS - 1
                                    ),
                                ));
                            }
                        };
                        if params.hires.len() >= MAX_HIRES {
                            return Err(param_error(
                                key,
                                format!("at most {MAX_HIRES} hiring waves"),
                            ));
                        }
                        params.hires.push(Hire { count, week });
                    }
                }
                "ramp_up" => params.ramp_up_weeks = weeks_of(key, value)?,
                "mentor_ratio" => params.mentor_ratio = Some(number(key, value, 1000.0)?),
                "leavers_per_week" => params.leavers_per_week = number(key, value, 1e6)?,
                "inflow_per_week" => params.inflow_per_week = Some(number(key, value, 1e9)?),
                other => {
                    return Err(param_error(
                        other,
                        "unknown; expected weeks, hires, ramp_up, mentor_ratio, leavers_per_week or inflow_per_week",
                    ));
                }
            }
        }
        Ok(params)
    }
}

/// One projected week: the state at its end and the flows during it.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastWeek {
    /// 1 for the first week after the start.
    pub week: u32,
    /// The end of the week.
    pub end: EpochNanos,
    pub open: f64,
    /// Open cases past their deadline (FIFO estimate).
    pub overdue: f64,
    pub decisions: f64,
    pub inflow: f64,
    pub experienced: f64,
    /// Staff still ramping up (hired or inexperienced at the start, younger than `ramp_up`).
    pub inexperienced: f64,
    /// Experienced staff taken up by mentoring.
    pub mentors: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub inputs: ForecastInputs,
    pub params: ForecastParams,
    /// The mentor ratio and inflow actually used.
    pub mentor_ratio: f64,
    pub inflow_per_week: f64,
    pub weeks: Vec<ForecastWeek>,
    /// When the open cases reach zero within the horizon (interpolated within the week).
    pub clearance: Option<EpochNanos>,
    pub outlook: Outlook,
}

/// What the projection says of the clearance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlook {
    /// At `clearance`.
    WithinHorizon,
    /// Not within the horizon: a longer one may show it.
    NotWithinHorizon,
    /// Never: the inflow outpaces every employee (hires after the horizon included) at the best
    /// observed rate.
    Never,
}

const NANOS_PER_WEEK: i64 = 7 * NANOS_PER_DAY;

/// Projects week by week (docs/forecast.md, "The model").
pub fn project(inputs: &ForecastInputs, params: &ForecastParams) -> Forecast {
    let mentor_ratio = params.mentor_ratio.unwrap_or(if inputs.mentors > 0.0 {
        inputs.inexperienced / inputs.mentors
    } else {
        0.0
    });
    let inflow = params
        .inflow_per_week
        .unwrap_or(inputs.net_inflow_per_week.max(0.0));
    let ramp = params.ramp_up_weeks;
    // Productivity of a cohort `age` weeks after it started ramping.
    let productivity = |age: f64| {
        if ramp <= 0.0 || age >= ramp {
            inputs.rate_experienced
        } else {
            inputs.rate_inexperienced
                + (inputs.rate_experienced - inputs.rate_inexperienced) * age / ramp
        }
    };
    // Experienced staff (mentors included), and cohorts (start week, count) still ramping up. The
    // inexperienced staff of now start their ramp now.
    let mut experienced = inputs.experienced + inputs.mentors;
    let mut cohorts: Vec<(f64, f64)> = vec![(0.0, inputs.inexperienced)];
    // FIFO of open cases by deadline (in weeks from the start): the overdue ones at 0, the rest
    // spread evenly over the decision period.
    let period = inputs.decision_period_weeks.max(1.0);
    let mut queue: std::collections::VecDeque<(f64, f64)> = std::collections::VecDeque::new();
    queue.push_back((0.0, inputs.overdue.min(inputs.open)));
    let not_overdue = (inputs.open - inputs.overdue).max(0.0);
    let slices = period.ceil().max(1.0) as usize;
    for i in 0..slices {
        queue.push_back((
            (i + 1) as f64 * period / slices as f64,
            not_overdue / slices as f64,
        ));
    }
    let mut open = inputs.open;
    let mut weeks = Vec::with_capacity(params.weeks as usize);
    let mut clearance = (open <= 0.0).then_some(inputs.start);
    for week in 0..params.weeks {
        let w = f64::from(week);
        for hire in params.hires.iter().filter(|h| h.week == week) {
            cohorts.push((w, hire.count));
        }
        // Cohorts past their ramp-up become experienced.
        cohorts.retain(|&(start, count)| {
            if ramp <= 0.0 || w - start >= ramp {
                experienced += count;
                false
            } else {
                true
            }
        });
        // Leavers, in proportion to headcount.
        let ramping: f64 = cohorts.iter().map(|c| c.1).sum();
        let staff = experienced + ramping;
        if staff > 0.0 && params.leavers_per_week > 0.0 {
            let keep = (1.0 - params.leavers_per_week / staff).max(0.0);
            experienced *= keep;
            for cohort in &mut cohorts {
                cohort.1 *= keep;
            }
        }
        let ramping: f64 = cohorts.iter().map(|c| c.1).sum();
        let mentors = if mentor_ratio > 0.0 {
            (ramping / mentor_ratio).min(experienced)
        } else {
            0.0
        };
        // Capacity during the week: each cohort at its age in the middle of the week.
        let capacity = (experienced - mentors) * inputs.rate_experienced
            + mentors * inputs.rate_mentor
            + cohorts
                .iter()
                .map(|&(start, count)| count * productivity(w + 0.5 - start))
                .sum::<f64>();
        let decisions = capacity.max(0.0).min(open + inflow);
        // Arrivals join the back of the queue with the deadline one period after their week.
        queue.push_back((w + 0.5 + period, inflow));
        let mut to_take = decisions;
        while to_take > 0.0 {
            let Some(front) = queue.front_mut() else {
                break;
            };
            if front.1 <= to_take {
                to_take -= front.1;
                queue.pop_front();
            } else {
                front.1 -= to_take;
                to_take = 0.0;
            }
        }
        let before = open;
        open = (open + inflow - decisions).max(0.0);
        if clearance.is_none() && open <= 0.0 {
            // Within the week the backlog falls at capacity − inflow.
            let fraction = if before > 0.0 && capacity > inflow {
                (before / (capacity - inflow)).min(1.0)
            } else {
                1.0
            };
            clearance = Some(inputs.start + ((w + fraction) * NANOS_PER_WEEK as f64) as i64);
        }
        let end_week = w + 1.0;
        let overdue: f64 = queue
            .iter()
            .filter(|(deadline, _)| *deadline <= end_week)
            .map(|q| q.1)
            .sum();
        weeks.push(ForecastWeek {
            week: week + 1,
            end: inputs
                .start
                .saturating_add(i64::from(week + 1).saturating_mul(NANOS_PER_WEEK)),
            open,
            overdue: overdue.min(open),
            decisions,
            inflow,
            experienced: experienced - mentors,
            inexperienced: ramping,
            mentors,
        });
    }
    // Never: even if every employee there will be (hires after the horizon included) decided at
    // the best observed rate, the decisions could not outpace the inflow.
    let staff_at_end = experienced
        + cohorts.iter().map(|c| c.1).sum::<f64>()
        + params
            .hires
            .iter()
            .filter(|h| h.week >= params.weeks)
            .map(|h| h.count)
            .sum::<f64>();
    let best_rate = inputs
        .rate_experienced
        .max(inputs.rate_mentor)
        .max(inputs.rate_inexperienced);
    let outlook = if clearance.is_some() {
        Outlook::WithinHorizon
    } else if staff_at_end * best_rate <= inflow {
        Outlook::Never
    } else {
        Outlook::NotWithinHorizon
    };
    Forecast {
        inputs: inputs.clone(),
        params: params.clone(),
        mentor_ratio,
        inflow_per_week: inflow,
        weeks,
        clearance,
        outlook,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> ForecastInputs {
        ForecastInputs {
            start: 0,
            open: 1000.0,
            overdue: 400.0,
            experienced: 40.0,
            mentors: 10.0,
            inexperienced: 50.0,
            rate_experienced: 2.0,
            rate_mentor: 0.5,
            rate_inexperienced: 0.5,
            net_inflow_per_week: 100.0,
            decision_period_weeks: 26.0,
        }
    }

    #[test]
    fn a_steady_agency_clears_at_capacity_minus_inflow() {
        let mut inputs = inputs();
        inputs.inexperienced = 0.0;
        inputs.mentors = 0.0;
        // 40 × 2 = 80 a week against 100 in: never clears; with 50 a week in, 1000 / 30 weeks.
        let growing = project(&inputs, &ForecastParams::default());
        assert_eq!(growing.clearance, None);
        assert!((growing.weeks[51].open - (1000.0 + 52.0 * 20.0)).abs() < 1e-6);
        let params = ForecastParams {
            inflow_per_week: Some(50.0),
            ..ForecastParams::default()
        };
        let shrinking = project(&inputs, &params);
        let weeks = shrinking.clearance.unwrap() as f64 / NANOS_PER_WEEK as f64;
        assert!((weeks - 1000.0 / 30.0).abs() < 1e-6, "{weeks}");
        assert_eq!(shrinking.weeks[40].open, 0.0);
        assert_eq!(shrinking.weeks[40].decisions, 50.0);
    }

    #[test]
    fn hires_ramp_up_and_take_mentors_from_production() {
        let params = ForecastParams::from_pairs([
            ("weeks", "30"),
            ("hires", "20@2"),
            ("ramp_up", "P10W"),
            ("mentor_ratio", "5"),
        ])
        .unwrap();
        let forecast = project(&inputs(), &params);
        let week = |n: usize| &forecast.weeks[n - 1];
        // Week 1: 50 ramping need 10 mentors; 50 experienced: 40 × 2 + 10 × 0.5 + 50 × 0.5 × ...
        assert_eq!(week(1).mentors, 10.0);
        assert_eq!(week(1).inexperienced, 50.0);
        let ramp = |age: f64| 0.5 + 1.5 * age / 10.0;
        assert!((week(1).decisions - (80.0 + 5.0 + 50.0 * ramp(0.5))).abs() < 1e-9);
        // Week 3: the hires joined, 70 ramping, 14 mentors.
        assert_eq!(week(3).inexperienced, 70.0);
        assert!((week(3).mentors - 14.0).abs() < 1e-9);
        // Week 11: the first cohort is experienced, the hires still ramp (age 8).
        assert_eq!(week(11).inexperienced, 20.0);
        assert_eq!(week(11).experienced + week(11).mentors, 100.0);
        // Week 13: everyone is experienced: 120 × 2 a week.
        assert_eq!(week(13).mentors, 0.0);
        assert!(week(13).decisions == 240.0 || week(13).open == 0.0);
        // The overdue estimate never exceeds the open cases and starts from the observed.
        assert!(forecast.weeks.iter().all(|w| w.overdue <= w.open + 1e-9));
        assert!(week(1).overdue <= 400.0 + 100.0);
    }

    /// A backlog that clears after the horizon is not one that never clears: `never` only when
    /// even every employee at the best observed rate cannot outpace the inflow.
    #[test]
    fn beyond_the_horizon_is_not_never() {
        let mut inputs = inputs();
        inputs.inexperienced = 0.0;
        inputs.mentors = 0.0;
        // 80 decisions a week against 50 in: 1000 / 30 weeks, beyond a horizon of 2.
        let params = |weeks: u32, inflow: f64| ForecastParams {
            weeks,
            inflow_per_week: Some(inflow),
            ..ForecastParams::default()
        };
        let short = project(&inputs, &params(2, 50.0));
        assert_eq!(short.clearance, None);
        assert_eq!(short.outlook, Outlook::NotWithinHorizon);
        assert_eq!(
            project(&inputs, &params(52, 50.0)).outlook,
            Outlook::WithinHorizon
        );
        // 80 a week against 100 in: never, at any horizon.
        assert_eq!(project(&inputs, &params(2, 100.0)).outlook, Outlook::Never);
        // Hires make it possible even though the first weeks grow: not never.
        let mut hiring = params(2, 100.0);
        hiring.hires.push(Hire {
            count: 20.0,
            week: 1,
        });
        assert_eq!(project(&inputs, &hiring).outlook, Outlook::NotWithinHorizon);
        // A hire after the horizon counts too.
        hiring.hires[0].week = 10;
        assert_eq!(project(&inputs, &hiring).outlook, Outlook::NotWithinHorizon);
    }

    #[test]
    fn parameters_name_what_is_wrong() {
        let error = |pairs: &[(&str, &str)]| {
            ForecastParams::from_pairs(pairs.iter().copied())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            error(&[("weeks", "105")]),
            "parameter `weeks`: \"105\" is not a whole number from 1 to 104"
        );
        assert_eq!(
            error(&[("hires", "20")]),
            "parameter `hires`: \"20\" is not COUNT@WEEK, e.g. \"250@2\""
        );
        assert_eq!(
            error(&[("ramp_up", "P6M")]),
            "parameter `ramp_up`: \"P6M\" must be in weeks and days (months and years have no fixed length)"
        );
        assert_eq!(
            error(&[("leavers_per_week", "-1")]),
            "parameter `leavers_per_week`: \"-1\" is not a number from 0 to 1000000"
        );
        assert!(error(&[("colour", "red")]).starts_with("parameter `colour`: unknown"));
        // Minutes and seconds count (PT5000000M is 496 weeks, not 0); beyond 520 weeks is refused.
        let weeks = |text: &str| {
            ForecastParams::from_pairs([("ramp_up", text)])
                .unwrap()
                .ramp_up_weeks
        };
        assert!((weeks("PT5000000M") - 5e6 / 60.0 / 24.0 / 7.0).abs() < 1e-9);
        assert!((weeks("P1DT12H30M") - (1.5 + 0.5 / 24.0) / 7.0).abs() < 1e-12);
        assert!((weeks("PT604800S") - 1.0).abs() < 1e-12);
        assert_eq!(
            error(&[("ramp_up", "PT6000000M")]),
            "parameter `ramp_up`: \"PT6000000M\" is more than 520 weeks"
        );
        let ok = ForecastParams::from_pairs([("ramp_up", "P180D"), ("hires", "10@0,5@3")]).unwrap();
        assert!((ok.ramp_up_weeks - 180.0 / 7.0).abs() < 1e-12);
        assert_eq!(ok.hires.len(), 2);
    }
}
