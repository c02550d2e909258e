//! backlogd / Workforce: employees, workload against workforce.max_open_cases and mentoring against
//! mentoring.max_mentees.

use serde_json::json;

use super::grafana::*;

pub fn dashboard() -> Dashboard {
    Dashboard {
        uid: "backlogd-workforce",
        title: "backlogd / Workforce",
        description: "Employees by role, contract and experience, workload per employee against workforce.max_open_cases, and the mentoring of new (temporary, inexperienced) staff against mentoring.max_mentees, from one backlogd daemon (job and instance).",
        refresh: "5m",
        from: "now-30d",
        filters: Filters::None,
        links: Vec::new(),
        annotations: vec![],
        rows: vec![
            row("Workforce now", now()),
            row("Workload", workload()),
            row("Staff", staff()),
            row("Mentoring", mentoring()),
            row("Per employee", per_employee()).collapsed(),
        ],
    }
}

fn now() -> Vec<Panel> {
    vec![
        stat("Active employees", "short")
            .desc("Active employees (all roles and contracts). A sudden drop means employees left; their open cases become unassigned (see Backlog overview).")
            .query(q("sum(backlogd_employees)", "employees"))
            .color_mode("none"),
        stat("Inexperienced share", "percentunit")
            .desc("Share of active employees who are not yet experienced (e.g. new hires of the task force). A high share needs enough mentors and lowers quality and throughput until they are trained.")
            .query(q(r#"sum(backlogd_employees{experienced="false"}) / (sum(backlogd_employees) > 0)"#, "inexperienced"))
            .colours(fixed("green", &[("orange", 0.3), ("red", 0.6)], "orange from 30% and red from 60% of the staff: rules of thumb for the mentoring load. No alert reads this share; DecisionsByInexperiencedStaff reads the share of decisions (Quality dashboard).")),
        stat("Overloaded employees", "short")
            .desc("Active employees with more open cases than workforce.max_open_cases (see the threshold stat). Should be 0; overloaded employees cannot decide their cases in time.")
            .query(q("sum(backlogd_employees_overloaded)", "overloaded"))
            .colours(fixed("green", &[("red", 1.0)], "red from 1: EmployeesOverloaded raises a ticket for any overloaded employee after an hour (the norm itself, max_open_cases, is applied by the daemon)."))
            .runbook("EmployeesOverloaded"),
        stat("max_open_cases", "short")
            .desc(r#"The configured workload norm workforce.max_open_cases (backlogd_threshold{name="max_open_cases"}): an employee with more open cases than this counts as overloaded. Changes only with a configuration reload."#)
            .query(q(r#"max(backlogd_threshold{name="max_open_cases"})"#, "max_open_cases"))
            .color_mode("none")
            .graph("none"),
        stat("Overloaded mentors", "short")
            .desc("Mentors with more mentees than mentoring.max_mentees. Should be 0; an overloaded mentor cannot coach their mentees properly, which shows up later in quality (see the Quality dashboard).")
            .query(q("max(backlogd_mentors_overloaded)", "overloaded mentors"))
            .colours(fixed("green", &[("red", 1.0)], "red from 1: MentorOverloaded raises a ticket when a mentor has had more than max_mentees mentees for an hour."))
            .runbook("MentorOverloaded"),
        stat("Unmentored newcomers", "short")
            .desc("Active employees who are not experienced and have no mentor. Should be 0: they decide cases without guidance.")
            .query(q("max(backlogd_mentees_unmentored)", "unmentored"))
            .colours(fixed("green", &[("red", 1.0)], "red from 1: NewStaffUnmentored raises a ticket when one has had no mentor for a day."))
            .runbook("NewStaffUnmentored"),
    ]
}

fn workload() -> Vec<Panel> {
    vec![
        bar_gauge("Workload distribution (now)", "short")
            .desc("Number of active employees per open-cases bucket right now (backlogd_employees_by_open_cases, all roles; bucket label = upper bound of open cases). Bars in the buckets above workforce.max_open_cases are overloaded employees; many employees in the 0-1 buckets while cases are unassigned means work is not being distributed.")
            .size(8, 8)
            .query(q("sum by (at_most) (backlogd_employees_by_open_cases)", "{{at_most}}").instant().heatmap())
            .palette("continuous-BlPu"),
        heatmap("Workload distribution over time", "short")
            .desc("Employees per open-cases bucket over time (all roles; y = bucket upper bound in open cases; the histogram is observed from the current state at each scrape, so no rate is applied). Mass moving up towards and beyond workforce.max_open_cases means the workforce is overloaded.")
            .size(16, 8)
            .query(q("sum by (at_most) (backlogd_employees_by_open_cases)", "{{at_most}}").heatmap())
            .scheme("Blues"),
        table("Workload by role", "short")
            .desc("Per role, now: active employees, mean open cases, median and 90th percentile of open cases (interpolated from the workload histogram buckets) and overloaded employees (more than workforce.max_open_cases open cases). A p90 close to the norm means the role is near overload; an uneven spread between roles means work is misallocated.")
            .query(q("sum by (role) (backlogd_employees_by_open_cases{at_most=\"+Inf\"})", "").table())
            .query(q("sum by (role) (backlogd_employees_assigned_open_cases) / (sum by (role) (backlogd_employees_by_open_cases{at_most=\"+Inf\"}) > 0)", "").table())
            .query(q("histogram_quantile(0.5, sum by (role, le) (label_replace(backlogd_employees_by_open_cases, \"le\", \"$1\", \"at_most\", \"(.*)\")))", "").table())
            .query(q("histogram_quantile(0.9, sum by (role, le) (label_replace(backlogd_employees_by_open_cases, \"le\", \"$1\", \"at_most\", \"(.*)\")))", "").table())
            .query(q("sum by (role) (backlogd_employees_overloaded)", "").table())
            .override_fields("byName", "Mean open cases", json!([{"id": "decimals", "value": 1}]))
            .override_fields("byName", "Median open cases", json!([{"id": "decimals", "value": 1}]))
            .override_fields("byName", "p90 open cases", json!([{"id": "decimals", "value": 1}]))
            .override_fields("byName", "Overloaded", json!([{"id": "custom.cellOptions", "value": {"type": "color-text"}}, {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "red", "value": 1}]}}]))
            .colour_note("the Overloaded column is red from 1: EmployeesOverloaded raises a ticket for any overloaded employee after an hour.")
            .transform(json!({"id": "merge", "options": {}}))
            .transform(json!({"id": "organize", "options": {"excludeByName": {"Time": true}, "renameByName": {"role": "Role", "Value #A": "Employees", "Value #B": "Mean open cases", "Value #C": "Median open cases", "Value #D": "p90 open cases", "Value #E": "Overloaded"}, "indexByName": {"role": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3, "Value #D": 4, "Value #E": 5}}}))
            .sort_by("Employees")
            .runbook("EmployeesOverloaded"),
        timeseries("Highest workload vs max_open_cases", "short")
            .desc("Open cases of the busiest employee and the 90th percentile per role, with workforce.max_open_cases as a dashed red line. Lines above the threshold are overloaded employees; the gap between the max and p90 shows how unevenly work is spread.")
            .query(q("max(backlogd_employee_open_cases)", "busiest employee"))
            .query(q("histogram_quantile(0.9, sum by (role, le) (label_replace(backlogd_employees_by_open_cases, \"le\", \"$1\", \"at_most\", \"(.*)\")))", "p90 {{role}}"))
            .query(q(r#"max(backlogd_threshold{name="max_open_cases"})"#, "threshold max_open_cases"))
            .runbook("EmployeesOverloaded"),
        timeseries("Overloaded employees by role", "short")
            .desc("Active employees with more open cases than workforce.max_open_cases, per role. Should be 0; a persistent value means cases must be redistributed or more staff is needed.")
            .query(q("sum by (role) (backlogd_employees_overloaded)", "{{role}}"))
            .stacked()
            .runbook("EmployeesOverloaded"),
        bar_gauge("Top 10 employees by open cases", "short")
            .desc("The ten active employees with the most open cases now (label per workforce.employee_label: id or pseudonym; empty when employee_label = none). Compare with the max_open_cases stat: those above it are overloaded and need cases taken off them.")
            .query(q("topk(10, backlogd_employee_open_cases)", "{{employee}}").instant())
            .palette("continuous-GrYlRd")
            .no_value("no per-employee series (employee_label = none?)"),
    ]
}

fn staff() -> Vec<Panel> {
    vec![
        bar_gauge("Employees by role, contract and experience (now)", "short")
            .desc("Active employees per role, contract (permanent/temporary) and experience, now; combinations with nobody are left out. Many temporary inexperienced employees per experienced one means heavy mentoring load.")
            .query(q("sum by (role, contract, experienced) (backlogd_employees) > 0", "{{role}} / {{contract}} / experienced={{experienced}}").instant()),
        timeseries("Employees by contract and experience", "short")
            .desc("Active employees over time per contract and experience (stacked). Shows the task force of temporary new hires growing and becoming experienced; a drop means people left.")
            .query(q("sum by (contract, experienced) (backlogd_employees)", "{{contract}}, experienced={{experienced}}"))
            .stacked(),
    ]
}

fn mentoring() -> Vec<Panel> {
    vec![
        gauge("Largest mentee count vs max_mentees", "percentunit")
            .desc("Mentees of the busiest mentor as a share of mentoring.max_mentees (100% = at the norm). Above 100% (red) that mentor is overloaded and their mentees get too little guidance.")
            .size(6, 8)
            .query(q(r#"max(backlogd_mentor_max_mentees) / (max(backlogd_threshold{name="max_mentees"}) > 0)"#, "busiest mentor"))
            .colours(fixed("green", &[("orange", 0.8), ("red", 1.0001)], "the value is relative to backlogd_threshold max_mentees: orange from 80% of it, red above 100%, where MentorOverloaded raises a ticket after an hour."))
            .max(2.0)
            .runbook("MentorOverloaded"),
        gauge("Mentees per mentor vs max_mentees", "percentunit")
            .desc("Active inexperienced employees per active mentor (employee with at least one mentee), as a share of mentoring.max_mentees. Above 100% there are too few mentors for the newcomers even if evenly spread.")
            .size(6, 8)
            .query(q(r#"max(backlogd_mentees_per_mentor) / (max(backlogd_threshold{name="max_mentees"}) > 0)"#, "mentees per mentor"))
            .colours(fixed("green", &[("orange", 0.8), ("red", 1.0001)], "the value is relative to backlogd_threshold max_mentees: orange from 80% of it, red above 100% (no alert reads the average; MentorOverloaded reads the busiest mentor)."))
            .max(2.0)
            .runbook("MentorOverloaded"),
        timeseries("Mentor load", "short")
            .desc("Largest mentee count of one mentor and inexperienced employees per mentor, with mentoring.max_mentees as a dashed red line. Lines above the threshold mean overloaded mentors: add mentors or redistribute mentees.")
            .query(q("max(backlogd_mentor_max_mentees)", "largest mentee count"))
            .query(q("max(backlogd_mentees_per_mentor)", "inexperienced per mentor"))
            .query(q(r#"max(backlogd_threshold{name="max_mentees"})"#, "threshold max_mentees"))
            .runbook("MentorOverloaded"),
        timeseries("Overloaded mentors and unmentored newcomers", "short")
            .desc("Mentors with more mentees than mentoring.max_mentees, and active inexperienced employees without a mentor. Both should be 0; unmentored newcomers decide cases without guidance.")
            .query(q("max(backlogd_mentors_overloaded)", "overloaded mentors"))
            .query(q("max(backlogd_mentees_unmentored)", "unmentored newcomers"))
            .runbook("MentorOverloaded")
            .runbook("NewStaffUnmentored"),
        bar_gauge("Mentees per mentor", "short")
            .desc("Current mentees of each mentor (label per workforce.employee_label). Mentors with more than mentoring.max_mentees mentees are overloaded.")
            .query(q("sort_desc(backlogd_mentor_mentees)", "{{mentor}}").instant())
            .palette("continuous-GrYlRd")
            .no_value("no mentors (or employee_label = none)"),
    ]
}

fn per_employee() -> Vec<Panel> {
    vec![
        table("Per employee", "short")
            .desc("Every active employee (label per workforce.employee_label) with open cases and load relative to workforce.max_open_cases, and for mentors their mentees relative to mentoring.max_mentees. Loads above 100% are overloaded. Empty when employee_label = none; employees beyond limits.max_employee_series are missing (see backlogd internals, series dropped).")
            .size(24, 12)
            .query(q("sum by (employee) (backlogd_employee_open_cases)", "").table())
            .query(q(r#"sum by (employee) (backlogd_employee_open_cases) / on () group_left () (max(backlogd_threshold{name="max_open_cases"}) > 0)"#, "").table())
            .query(q("sum by (mentor) (backlogd_mentor_mentees)", "").table())
            .query(q(r#"sum by (mentor) (backlogd_mentor_mentees) / on () group_left () (max(backlogd_threshold{name="max_mentees"}) > 0)"#, "").table())
            .no_value("no per-employee series (employee_label = none?)")
            .override_fields("byName", "Load vs max_open_cases", json!([{"id": "unit", "value": "percentunit"}, {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "gradient"}}, {"id": "min", "value": 0}, {"id": "max", "value": 1.5}, {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "orange", "value": 0.8}, {"color": "red", "value": 1.0001}]}}]))
            .override_fields("byName", "Mentees vs max_mentees", json!([{"id": "unit", "value": "percentunit"}, {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "gradient"}}, {"id": "min", "value": 0}, {"id": "max", "value": 1.5}, {"id": "thresholds", "value": {"mode": "absolute", "steps": [{"color": "green", "value": null}, {"color": "orange", "value": 0.8}, {"color": "red", "value": 1.0001}]}}]))
            .colour_note("the two load columns are relative to backlogd_threshold (max_open_cases, max_mentees): orange from 80%, red above 100%, where EmployeesOverloaded and MentorOverloaded raise tickets after an hour.")
            .transform(json!({"id": "organize", "options": {"excludeByName": {}, "renameByName": {"mentor": "employee"}, "indexByName": {}}}))
            .transform(json!({"id": "merge", "options": {}}))
            .transform(json!({"id": "organize", "options": {"excludeByName": {"Time": true}, "renameByName": {"employee": "Employee", "Value #A": "Open cases", "Value #B": "Load vs max_open_cases", "Value #C": "Mentees", "Value #D": "Mentees vs max_mentees"}, "indexByName": {"employee": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3, "Value #D": 4}}}))
            .transform(json!({"id": "sortBy", "options": {"fields": {}, "sort": [{"field": "Open cases", "desc": true}]}}))
            .sort_by("Open cases")
            .runbook("EmployeesOverloaded")
            .runbook("MentorOverloaded"),
    ]
}
