//! `[sources]`: the NATS JetStream source (docs/configuration.md, docs/scaling.md), validated like
//! every other section: typed values out, every problem named by its key.

use super::raw::{Integer, IntegerList, RawNats};
use super::validate::MAX_NAME_BYTES;
use super::values::{integer_in, optional_path};
use super::{ConfigError, NatsConfig, invalid};

/// The most messages `sources.nats.max_in_flight` may allow (each holds its body until committed).
const MAX_IN_FLIGHT: i64 = 1_000_000;

pub(super) fn validate_nats(raw: RawNats) -> Result<NatsConfig, ConfigError> {
    let required = |key: &str, value: Option<String>| -> Result<String, ConfigError> {
        match value.map(|value| value.trim().to_owned()) {
            Some(value) if !value.is_empty() => Ok(value),
            _ => Err(invalid("missing", format!("sources.nats.{key}"))),
        }
    };
    let url = required("url", raw.url)?;
    if !["nats://", "tls://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
        || url.contains(char::is_whitespace)
    {
        return Err(invalid(
            format!("{url:?} is not a NATS URL; write nats://HOST:PORT or tls://HOST:PORT"),
            "sources.nats.url",
        ));
    }
    let stream = required("stream", raw.stream)?;
    // JetStream stream and consumer names may not contain these (they become subject tokens).
    let name = |key: &str, value: &str| -> Result<(), ConfigError> {
        if value.len() > MAX_NAME_BYTES
            || value.chars().any(|c| {
                c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\')
            })
        {
            return Err(invalid(
                format!(
                    "{value:?} is not a JetStream name: at most {MAX_NAME_BYTES} bytes, no \
                     whitespace and none of . * > / \\"
                ),
                format!("sources.nats.{key}"),
            ));
        }
        Ok(())
    };
    name("stream", &stream)?;
    let durable = required("durable", raw.durable)?;
    name("durable", &durable)?;
    let subjects = raw
        .subjects
        .map(|list| list.into_items())
        .unwrap_or_default();
    if subjects.is_empty() {
        return Err(invalid(
            "missing; list the subjects to consume, e.g. [\"cases.>\"]",
            "sources.nats.subjects",
        ));
    }
    for (index, subject) in subjects.iter().enumerate() {
        subject_valid(&format!("sources.nats.subjects[{index}]"), subject, true)?;
    }
    let dead_letter_subject = raw
        .dead_letter_subject
        .map(|subject| subject.trim().to_owned())
        .filter(|subject| !subject.is_empty());
    if let Some(subject) = &dead_letter_subject {
        subject_valid("sources.nats.dead_letter_subject", subject, false)?;
        // A dead letter republished into the consumed subjects would come back forever.
        if subjects
            .iter()
            .any(|pattern| subject_matches(pattern, subject))
        {
            return Err(invalid(
                format!(
                    "{subject:?} is one of the consumed subjects; rejected events would be consumed again"
                ),
                "sources.nats.dead_letter_subject",
            ));
        }
    }
    let max_in_flight = integer_in(
        "sources.nats.max_in_flight",
        raw.max_in_flight,
        10_000,
        1,
        MAX_IN_FLIGHT,
    )?;
    let partitions = u32::try_from(integer_in(
        "sources.nats.partitions",
        raw.partitions,
        1,
        1,
        MAX_PARTITIONS,
    )?)
    .unwrap_or(1);
    let owned_partitions = owned_partitions(raw.owned_partitions, partitions)?;
    let start_after = match raw.start_after {
        None => None,
        Some(value) => {
            Some(integer_in("sources.nats.start_after", Some(value), 0, 0, i64::MAX)? as u64)
        }
    };
    Ok(NatsConfig {
        url,
        stream,
        subjects,
        durable,
        create_stream: raw.create_stream.unwrap_or(false),
        credentials_file: optional_path(raw.credentials_file),
        tls_ca_file: optional_path(raw.tls_ca_file),
        max_in_flight: usize::try_from(max_in_flight).unwrap_or(10_000),
        dead_letter_subject,
        partitions,
        owned_partitions,
        start_after,
    })
}

/// The most case partitions.
const MAX_PARTITIONS: i64 = 4096;

fn owned_partitions(raw: Option<IntegerList>, partitions: u32) -> Result<Vec<u32>, ConfigError> {
    const KEY: &str = "sources.nats.owned_partitions";
    let values: Vec<i64> = match raw {
        None => return Ok((0..partitions).collect()),
        Some(IntegerList::List(items)) => items.into_iter().map(|Integer(v)| v).collect(),
        Some(IntegerList::Text(text)) => text
            .split(',')
            .map(|item| {
                item.trim()
                    .parse::<i64>()
                    .map_err(|_| invalid(format!("{item:?} is not an integer"), KEY))
            })
            .collect::<Result<_, _>>()?,
    };
    if values.is_empty() {
        return Err(invalid("empty; list at least one partition", KEY));
    }
    let mut owned = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        match u32::try_from(value) {
            Ok(partition) if partition < partitions => owned.push(partition),
            _ => {
                return Err(invalid(
                    format!(
                        "{value} is not a partition; sources.nats.partitions = {partitions} numbers them 0 to {}",
                        partitions - 1
                    ),
                    format!("{KEY}[{index}]"),
                ));
            }
        }
    }
    owned.sort_unstable();
    if owned.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err(invalid("lists a partition twice", KEY));
    }
    Ok(owned)
}

/// A NATS subject: dot-separated non-empty tokens without whitespace; `*` and a final `>` only
/// where `wildcards` are allowed.
fn subject_valid(key: &str, subject: &str, wildcards: bool) -> Result<(), ConfigError> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let bad = subject.is_empty()
        || subject.contains(char::is_whitespace)
        || tokens.iter().enumerate().any(|(index, token)| {
            token.is_empty()
                || (token.contains(['*', '>'])
                    && !(wildcards
                        && (*token == "*" || (*token == ">" && index + 1 == tokens.len()))))
        });
    if bad {
        return Err(invalid(
            format!(
                "{subject:?} is not a NATS subject{}",
                if wildcards {
                    " (dot-separated tokens; `*` for one token, `>` only last)"
                } else {
                    " without wildcards"
                }
            ),
            key,
        ));
    }
    Ok(())
}

/// Whether the wildcard subject `pattern` matches the literal `subject`.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (token, Some(literal)) if token == literal => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}
