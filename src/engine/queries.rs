//! The read-only commands: `Overdue`, `History` and `Forecast` (and `Targets`, `StreamPosition`,
//! which are one call each in `Engine::handle`). They read the state as of the group's clock and
//! change nothing.

use super::{DailyRow, Engine, Forecast, ForecastParams, TargetReport};
use crate::core::{CoreSettings, OverdueCase};

/// The answer to `Command::History`: the rows with the names their columns refer to.
#[derive(Debug, Clone)]
pub struct HistoryAnswer {
    /// Track names, in the order of each row's tracks.
    pub tracks: Vec<String>,
    /// `forecast.window` as written, now (each row names the window it counted over: its basis).
    pub decision_window: String,
    /// `forecast.new_staff_weeks`, now (likewise).
    pub new_staff_weeks: u32,
    pub rows: Vec<DailyRow>,
    /// `report.language` (English in `new`).
    pub report_language: crate::config::ReportLanguage,
}

impl HistoryAnswer {
    /// `rows` with the track names and due-soon labels of `settings`.
    pub fn new(settings: &CoreSettings, rows: Vec<DailyRow>) -> HistoryAnswer {
        HistoryAnswer {
            tracks: settings.tracks.iter().map(|t| t.name.clone()).collect(),
            decision_window: settings.forecast_window.label.clone(),
            new_staff_weeks: settings.new_staff_weeks,
            rows,
            report_language: crate::config::ReportLanguage::En,
        }
    }
}

/// The answer to `Command::Forecast`: the projection and the targets it is drawn against.
#[derive(Debug, Clone)]
pub struct ForecastAnswer {
    pub forecast: Forecast,
    pub targets: Vec<TargetReport>,
}

impl Engine {
    /// `Command::Overdue`: the overdue cases, or why the query cannot be answered (an unknown
    /// track), for a 400.
    pub(super) fn overdue(
        &self,
        track: Option<&str>,
        location: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OverdueCase>, String> {
        let settings = self.state.settings();
        match track {
            Some(name) if settings.track_index(name).is_none() => Err(format!(
                "query parameter `track`: {name:?} is not a configured track (configured: {})",
                settings
                    .tracks
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => Ok(self.state.overdue_cases(track, location, limit)),
        }
    }

    /// `Command::History`: the daily rows with `from ≤ day ≤ to`.
    pub(super) fn history(
        &self,
        from: Option<jiff::civil::Date>,
        to: Option<jiff::civil::Date>,
    ) -> HistoryAnswer {
        // Rows name their day as `YYYY-MM-DD` with a four-digit year, as jiff writes a date of
        // years 0–9999: the text compares in date order.
        let (from, to) = (from.map(|d| d.to_string()), to.map(|d| d.to_string()));
        let rows = self
            .state
            .daily_history()
            .filter(|row| from.as_deref().is_none_or(|from| row.day.as_str() >= from))
            .filter(|row| to.as_deref().is_none_or(|to| row.day.as_str() <= to))
            .cloned()
            .collect();
        let mut answer = HistoryAnswer::new(self.state.settings(), rows);
        answer.report_language = self.edge.report_language;
        answer
    }

    /// `Command::Forecast`: the what-if projection from the current state.
    pub(super) fn forecast(&self, params: &ForecastParams) -> ForecastAnswer {
        ForecastAnswer {
            forecast: crate::core::forecast::project(&self.state.forecast_inputs(), params),
            targets: self.state.target_reports(),
        }
    }
}
