//! Writes prometheus `MetricFamily`s as OpenMetrics text with an explicit sample timestamp, the
//! input of `promtool tsdb create-blocks-from openmetrics`. The prometheus crate has no OpenMetrics
//! encoder (its text encoder writes the 0.0.4 format, whose millisecond timestamps promtool's
//! OpenMetrics importer does not read), so this is written by hand.
//!
//! The mapping, for each family type:
//! - counter: `# TYPE` names the family without `_total`; every sample is `<family>_total`;
//! - gauge: as is;
//! - histogram: `_bucket` samples (cumulative, with `le`, ending in `le="+Inf"` = the count),
//!   `_count` and `_sum`;
//! - summary: quantile samples, `_count` and `_sum`;
//! - untyped: `# TYPE … unknown`.

use std::io::{self, Write};

use prometheus::proto::{LabelPair, MetricFamily, MetricType};

/// Writes `families` with every sample at `timestamp_ms` (milliseconds since the epoch; written in
/// seconds, as OpenMetrics wants) and `target` labels (e.g. `job`, `instance`) before each sample's
/// own. Returns the number of sample lines written.
pub fn write_families(
    out: &mut impl Write,
    families: &[MetricFamily],
    timestamp_ms: i64,
    target: &[LabelPair],
) -> io::Result<u64> {
    let timestamp = format_timestamp(timestamp_ms);
    let mut samples = 0u64;
    for family in families {
        let name = family.name();
        let kind = family.get_field_type();
        let (family_name, type_name) = match kind {
            MetricType::COUNTER => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            MetricType::GAUGE => (name, "gauge"),
            MetricType::HISTOGRAM => (name, "histogram"),
            MetricType::SUMMARY => (name, "summary"),
            MetricType::UNTYPED => (name, "unknown"),
        };
        out.write_all(b"# HELP ")?;
        out.write_all(family_name.as_bytes())?;
        out.write_all(b" ")?;
        write_escaped(out, family.help())?;
        writeln!(out, "\n# TYPE {family_name} {type_name}")?;
        for metric in family.get_metric() {
            let own = metric.get_label();
            let mut all;
            let labels = if target.is_empty() {
                own
            } else {
                all = target.to_vec();
                all.extend_from_slice(own);
                all.as_slice()
            };
            match kind {
                MetricType::COUNTER => {
                    let sample = format!("{family_name}_total");
                    write_sample(
                        out,
                        &sample,
                        labels,
                        None,
                        metric.get_counter().get_value(),
                        &timestamp,
                    )?;
                    samples += 1;
                }
                MetricType::GAUGE => {
                    let value = metric.get_gauge().get_value();
                    write_sample(out, name, labels, None, value, &timestamp)?;
                    samples += 1;
                }
                MetricType::UNTYPED => {
                    // No collector of ours makes an untyped metric, but a family is written
                    // whatever its type; the crate marks the accessor as a protobuf leftover.
                    #[allow(deprecated)]
                    let value = metric.get_untyped().get_value();
                    write_sample(out, name, labels, None, value, &timestamp)?;
                    samples += 1;
                }
                MetricType::HISTOGRAM => {
                    let histogram = metric.get_histogram();
                    let bucket = format!("{name}_bucket");
                    let mut has_inf = false;
                    for b in histogram.get_bucket() {
                        let upper = b.upper_bound();
                        has_inf |= upper == f64::INFINITY;
                        let le = format_value(upper);
                        let count = b.cumulative_count() as f64;
                        write_sample(out, &bucket, labels, Some(("le", &le)), count, &timestamp)?;
                        samples += 1;
                    }
                    let count = histogram.get_sample_count() as f64;
                    if !has_inf {
                        write_sample(
                            out,
                            &bucket,
                            labels,
                            Some(("le", "+Inf")),
                            count,
                            &timestamp,
                        )?;
                        samples += 1;
                    }
                    write_sample(
                        out,
                        &format!("{name}_count"),
                        labels,
                        None,
                        count,
                        &timestamp,
                    )?;
                    let sum = histogram.get_sample_sum();
                    write_sample(out, &format!("{name}_sum"), labels, None, sum, &timestamp)?;
                    samples += 2;
                }
                MetricType::SUMMARY => {
                    let summary = metric.get_summary();
                    for q in summary.get_quantile() {
                        let quantile = format_value(q.quantile());
                        write_sample(
                            out,
                            name,
                            labels,
                            Some(("quantile", &quantile)),
                            q.value(),
                            &timestamp,
                        )?;
                        samples += 1;
                    }
                    let count = summary.sample_count() as f64;
                    write_sample(
                        out,
                        &format!("{name}_count"),
                        labels,
                        None,
                        count,
                        &timestamp,
                    )?;
                    let sum = summary.sample_sum();
                    write_sample(out, &format!("{name}_sum"), labels, None, sum, &timestamp)?;
                    samples += 2;
                }
            }
        }
    }
    Ok(samples)
}

/// A label pair.
pub fn label_pair(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

/// The closing line OpenMetrics requires.
pub fn write_eof(out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"# EOF\n")
}

fn write_sample(
    out: &mut impl Write,
    name: &str,
    labels: &[LabelPair],
    extra: Option<(&str, &str)>,
    value: f64,
    timestamp: &str,
) -> io::Result<()> {
    out.write_all(name.as_bytes())?;
    let pairs = labels
        .iter()
        .map(|pair| (pair.name(), pair.value()))
        .chain(extra);
    let mut first = true;
    for (label, label_value) in pairs {
        out.write_all(if first { b"{" } else { b"," })?;
        first = false;
        out.write_all(label.as_bytes())?;
        out.write_all(b"=\"")?;
        write_escaped(out, label_value)?;
        out.write_all(b"\"")?;
    }
    if !first {
        out.write_all(b"}")?;
    }
    out.write_all(b" ")?;
    out.write_all(format_value(value).as_bytes())?;
    out.write_all(b" ")?;
    out.write_all(timestamp.as_bytes())?;
    out.write_all(b"\n")
}

/// Label values and help text: backslash, double quote and line feed escaped.
fn write_escaped(out: &mut impl Write, text: &str) -> io::Result<()> {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.write_all(&rest.as_bytes()[..at])?;
        out.write_all(match rest.as_bytes()[at] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        })?;
        rest = &rest[at + 1..];
    }
    out.write_all(rest.as_bytes())
}

/// A sample value or bound: `NaN`, `+Inf`, `-Inf`, or the shortest decimal that reads back as the
/// same number (Rust's `Display`, never in exponent form, which Go's `ParseFloat` reads).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        value.to_string()
    }
}

/// Milliseconds as OpenMetrics seconds: `1700000000` or `1700000000.25`.
fn format_timestamp(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    if millis == 0 {
        seconds.to_string()
    } else {
        format!("{seconds}.{millis:03}")
            .trim_end_matches('0')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::proto::{Bucket, Counter, Gauge, Histogram, Metric};

    fn label(name: &str, value: &str) -> LabelPair {
        label_pair(name, value)
    }

    #[test]
    fn writes_each_type_with_timestamps_and_escapes() {
        let mut counter = MetricFamily::default();
        counter.set_name("x_events_total".to_owned());
        counter.set_help("Events \"seen\"\\ here.".to_owned());
        counter.set_field_type(MetricType::COUNTER);
        let mut metric = Metric::default();
        metric.set_label(vec![label("who", "a\"b\\c\nd")]);
        let mut value = Counter::default();
        value.set_value(3.0);
        metric.set_counter(value);
        counter.mut_metric().push(metric);

        let mut gauge = MetricFamily::default();
        gauge.set_name("x_clearance_seconds".to_owned());
        gauge.set_help("Forecast.".to_owned());
        gauge.set_field_type(MetricType::GAUGE);
        let mut metric = Metric::default();
        let mut value = Gauge::default();
        value.set_value(f64::INFINITY);
        metric.set_gauge(value);
        gauge.mut_metric().push(metric);

        let mut histogram = MetricFamily::default();
        histogram.set_name("x_lead_seconds".to_owned());
        histogram.set_help("Lead.".to_owned());
        histogram.set_field_type(MetricType::HISTOGRAM);
        let mut metric = Metric::default();
        metric.set_label(vec![label("track", "t")]);
        let mut h = Histogram::default();
        let mut bucket = Bucket::default();
        bucket.set_upper_bound(2592000.0);
        bucket.set_cumulative_count(1);
        h.set_bucket(vec![bucket]);
        h.set_sample_count(2);
        h.set_sample_sum(0.5);
        metric.set_histogram(h);
        histogram.mut_metric().push(metric);

        let mut out = Vec::new();
        let written = write_families(
            &mut out,
            &[counter, gauge, histogram],
            1_700_000_000_250,
            &[],
        )
        .unwrap();
        write_eof(&mut out).unwrap();
        assert_eq!(written, 6);
        expect_test::expect![[r#"
            # HELP x_events Events \"seen\"\\ here.
            # TYPE x_events counter
            x_events_total{who="a\"b\\c\nd"} 3 1700000000.25
            # HELP x_clearance_seconds Forecast.
            # TYPE x_clearance_seconds gauge
            x_clearance_seconds +Inf 1700000000.25
            # HELP x_lead_seconds Lead.
            # TYPE x_lead_seconds histogram
            x_lead_seconds_bucket{track="t",le="2592000"} 1 1700000000.25
            x_lead_seconds_bucket{track="t",le="+Inf"} 2 1700000000.25
            x_lead_seconds_count{track="t"} 2 1700000000.25
            x_lead_seconds_sum{track="t"} 0.5 1700000000.25
            # EOF
        "#]]
        .assert_eq(&String::from_utf8(out).unwrap());
    }

    #[test]
    fn timestamps_in_seconds() {
        assert_eq!(format_timestamp(1_700_000_000_000), "1700000000");
        assert_eq!(format_timestamp(1_700_000_000_100), "1700000000.1");
        assert_eq!(format_timestamp(-1), "-1.999");
    }
}
