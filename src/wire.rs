//! The wire format of events: request bodies (NDJSON, JSON array, one CloudEvent) and the CloudEvents
//! 1.0 envelope, converted into core events.
//!
//! Parsing never fails as a whole except for a body that cannot be split into events at all (a JSON
//! array that does not parse): every event yields either a core `Event` or a `Rejection` naming the
//! field and the reason. The raw JSON text of each event is kept, because that is what the event log
//! stores.

use jiff::{Span, Timestamp};
use std::borrow::Cow;

use crate::core::event::{
    CloseReason, Contract, Event, EventKind, EventType, Extension, MAX_NOTE_BYTES, MAX_TEXT_BYTES,
    Outcome, RejectReason, Rejection,
};

/// How a request body holds its events, from the `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-ndjson`: one event a line, blank lines ignored.
    Ndjson,
    /// `application/json` or `application/cloudevents-batch+json`: a JSON array of events.
    Array,
    /// `application/cloudevents+json`: one event.
    Single,
}

impl BodyFormat {
    /// The format for a `Content-Type` header value (parameters such as `charset` are ignored), or
    /// `None` for an unsupported type.
    pub fn from_content_type(content_type: &str) -> Option<BodyFormat> {
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/x-ndjson" | "application/ndjson" => Some(BodyFormat::Ndjson),
            "application/json" | "application/cloudevents-batch+json" => Some(BodyFormat::Array),
            "application/cloudevents+json" => Some(BodyFormat::Single),
            _ => None,
        }
    }
}

/// One event of a body: its raw JSON text, and the parsed event or why it was rejected.
#[derive(Debug)]
pub struct BodyItem<'a> {
    pub raw: &'a str,
    pub parsed: Result<Event, ItemRejection>,
}

/// A rejection with the event id when one could be read.
#[derive(Debug, Clone)]
pub struct ItemRejection {
    pub id: Option<String>,
    pub rejection: Rejection,
}

/// A body that cannot be split into events at all (answered with 400), or holds more events than
/// one request may carry (answered with 413).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Malformed(String),
    #[error(
        "the body holds more than {limit} events (server.max_events_per_request); send smaller batches"
    )]
    TooManyEvents { limit: usize },
}

/// Splits a body into events and parses each. A body with more than `max_events` events is refused
/// before any of them is parsed, so a hostile body costs one scan, not one allocation per line.
pub fn parse_body(
    format: BodyFormat,
    body: &[u8],
    max_events: usize,
) -> Result<Vec<BodyItem<'_>>, BodyError> {
    let too_many = BodyError::TooManyEvents { limit: max_events };
    if format == BodyFormat::Ndjson {
        // Line by line, so that a line that is not UTF-8 is one rejected event, not a refused body.
        let lines = || {
            let mut start = 0;
            body.split(|&b| b == b'\n').filter_map(move |line| {
                let at = start;
                start += line.len() + 1;
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                (!line.iter().all(u8::is_ascii_whitespace)).then_some((at, line))
            })
        };
        if lines().nth(max_events).is_some() {
            return Err(too_many);
        }
        return Ok(lines()
            .map(|(at, line)| match std::str::from_utf8(line) {
                Ok(raw) => BodyItem {
                    raw,
                    parsed: parse_event(raw),
                },
                Err(e) => BodyItem {
                    // An empty slice at the line's start: the item keeps its place in the body,
                    // and nothing of it is ever logged (it is rejected).
                    raw: std::str::from_utf8(&body[at..at]).unwrap_or_default(),
                    parsed: Err(ItemRejection {
                        id: None,
                        rejection: Rejection::new(
                            RejectReason::InvalidJson,
                            format!("the line is not valid UTF-8: {e}"),
                        ),
                    }),
                },
            })
            .collect());
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| BodyError::Malformed(format!("the body is not valid UTF-8: {e}")))?;
    match format {
        BodyFormat::Ndjson => unreachable!("NDJSON bodies are split by line above"),
        BodyFormat::Array => {
            use serde::de::DeserializeSeed;
            let mut deserializer = serde_json::Deserializer::from_str(text);
            let elements = BoundedArray { max: max_events }
                .deserialize(&mut deserializer)
                .and_then(|elements| deserializer.end().map(|()| elements))
                .map_err(|e| {
                    if e.to_string().starts_with(TOO_MANY_ELEMENTS) {
                        too_many.clone()
                    } else {
                        BodyError::Malformed(format!("the body is not a JSON array of events: {e}"))
                    }
                })?;
            Ok(elements
                .into_iter()
                .map(|element| {
                    let raw = element.get();
                    BodyItem {
                        raw,
                        parsed: parse_event(raw),
                    }
                })
                .collect())
        }
        BodyFormat::Single => {
            let raw = text.trim();
            serde_json::from_str::<&serde_json::value::RawValue>(raw).map_err(|e| {
                BodyError::Malformed(format!("the body is not one JSON event: {e}"))
            })?;
            Ok(vec![BodyItem {
                raw,
                parsed: parse_event(raw),
            }])
        }
    }
}

const TOO_MANY_ELEMENTS: &str = "backlogd: too many array elements";

/// A JSON array of raw values that stops reading at `max + 1` elements.
struct BoundedArray {
    max: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for BoundedArray {
    type Value = Vec<&'de serde_json::value::RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for BoundedArray {
    type Value = Vec<&'de serde_json::value::RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of events")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element()? {
            if elements.len() == self.max {
                return Err(serde::de::Error::custom(TOO_MANY_ELEMENTS));
            }
            elements.push(element);
        }
        Ok(elements)
    }
}

/// Parses one CloudEvents JSON object into a core event.
pub fn parse_event(raw: &str) -> Result<Event, ItemRejection> {
    let value = strict_value(raw).map_err(|e| ItemRejection {
        id: None,
        rejection: Rejection::new(RejectReason::InvalidJson, format!("not valid JSON: {e}")),
    })?;
    let Json::Object(envelope) = value else {
        return Err(ItemRejection {
            id: None,
            rejection: Rejection::new(
                RejectReason::InvalidJson,
                format!("an event must be a JSON object, got {}", value.type_name()),
            ),
        });
    };
    let id = match envelope.get("id") {
        Some(Json::Str(id)) => Some(id.clone().into_owned()),
        _ => None,
    };
    parse_envelope(&envelope).map_err(|rejection| ItemRejection { id, rejection })
}

/// `raw` as a JSON value, refusing an object that repeats a key (serde_json keeps the last one
/// silently), with the key's path (`data.case`, `x[0].a`) in the error.
fn strict_value(raw: &str) -> serde_json::Result<Json<'_>> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let value = Strict { path: None }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Where a value sits in the event, built on the stack as the parser descends (no allocation
/// unless a duplicate is reported).
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

struct Path<'a> {
    step: Step<'a>,
    parent: Option<&'a Path<'a>>,
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(parent) = self.parent {
            write!(f, "{parent}")?;
        }
        match self.step {
            Step::Key(key) if self.parent.is_some() => write!(f, ".{key}"),
            Step::Key(key) => write!(f, "{key}"),
            Step::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A JSON value that borrows its texts from the event where it can (a text with an escape is
/// copied): the parser allocates one vector per object and array, not one string per key and text.
#[derive(Debug)]
enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members in their order; keys are unique (`Strict` refuses a repeated one).
#[derive(Debug, Default)]
struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Object<'a> {
    /// Members are few (an event has at most a dozen known keys), so a scan beats a table.
    fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Json<'_> {
    fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::Str(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

/// The value as JSON text (for messages that quote it).
impl std::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |s: &str| serde_json::to_string(s).map_err(|_| std::fmt::Error);
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Number(n) => write!(f, "{n}"),
            Json::Str(s) => f.write_str(&text(s)?),
            Json::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Object(object) => {
                f.write_str("{")?;
                for (i, (key, value)) in object.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{value}", text(key)?)?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A [`Json`] value that refuses repeated keys.
struct Strict<'a> {
    path: Option<&'a Path<'a>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = Json<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// An object key or text, borrowed from the input unless it holds an escape.
struct Text;

impl<'de> serde::de::DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Text {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

/// Above this many members an object's repeated keys are found with a set, so that a hostile
/// object of many keys costs O(n), not O(n²).
const KEYS_SCANNED: usize = 16;

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        // JSON has no NaN or infinity, so `from_f64` always gives a number here.
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = Path {
                step: Step::Index(items.len()),
                parent: self.path,
            };
            match seq.next_element_seed(Strict { path: Some(&path) })? {
                Some(item) => items.push(item),
                None => return Ok(Json::Array(items)),
            }
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut access: A) -> Result<Json<'de>, A::Error> {
        let mut object = Object::default();
        let mut many: Option<std::collections::HashSet<Cow<'de, str>>> = None;
        while let Some(key) = access.next_key_seed(Text)? {
            let path = Path {
                step: Step::Key(&key),
                parent: self.path,
            };
            let repeated = match &mut many {
                Some(seen) => !seen.insert(key.clone()),
                None => object.get(&key).is_some(),
            };
            if repeated {
                return Err(serde::de::Error::custom(format!("duplicate key `{path}`")));
            }
            let value = access.next_value_seed(Strict { path: Some(&path) })?;
            object.0.push((key, value));
            if many.is_none() && object.0.len() == KEYS_SCANNED {
                many = Some(object.0.iter().map(|(k, _)| k.clone()).collect());
            }
        }
        Ok(Json::Object(object))
    }
}

fn parse_envelope(envelope: &Object<'_>) -> Result<Event, Rejection> {
    let fields = Fields {
        object: envelope,
        prefix: "",
    };
    let id = fields.text("id")?;
    if let Some(version) = envelope.get("specversion")
        && !matches!(version, Json::Str(v) if v == "1.0")
    {
        return Err(Rejection::new(
            RejectReason::InvalidField,
            format!("field `specversion`: must be \"1.0\" when present, got {version}"),
        ));
    }
    let type_name = fields.str("type")?;
    let event_type = EventType::parse(type_name).ok_or_else(|| {
        Rejection::new(
            RejectReason::UnknownType,
            format!("field `type`: \"{type_name}\" is not a known event type"),
        )
    })?;
    let time = fields.timestamp("time")?;
    let data = match envelope.get("data") {
        Some(Json::Object(data)) => data,
        Some(other) => {
            return Err(Rejection::new(
                RejectReason::InvalidField,
                format!("field `data`: must be an object, got {}", other.type_name()),
            ));
        }
        None => {
            return Err(Rejection::new(
                RejectReason::MissingField,
                "field `data` is required",
            ));
        }
    };
    let data = Fields {
        object: data,
        prefix: "data.",
    };
    let kind = parse_data(event_type, &data)?;
    Ok(Event { id, time, kind })
}

fn parse_data(event_type: EventType, d: &Fields<'_>) -> Result<EventKind, Rejection> {
    Ok(match event_type {
        EventType::CaseRegistered => EventKind::CaseRegistered {
            case: d.text("case")?,
            track: d.text("track")?,
            received_at: d.optional("received_at", Fields::timestamp)?,
            location: d.optional("location", Fields::text)?,
            deadline: d.optional("deadline", Fields::timestamp)?,
        },
        EventType::CaseAssigned => EventKind::CaseAssigned {
            case: d.text("case")?,
            employee: d.text("employee")?,
        },
        EventType::CaseUnassigned => EventKind::CaseUnassigned {
            case: d.text("case")?,
        },
        EventType::CasePhaseChanged => EventKind::CasePhaseChanged {
            case: d.text("case")?,
            phase: d.text("phase")?,
        },
        EventType::CaseHearingHeld => EventKind::CaseHearingHeld {
            case: d.text("case")?,
        },
        EventType::CaseHearingCancelled => EventKind::CaseHearingCancelled {
            case: d.text("case")?,
            reason: d.optional("reason", Fields::string)?,
        },
        EventType::CaseDeadlineExtended => {
            let case = d.text("case")?;
            let extension = match (d.present("by"), d.present("deadline")) {
                (true, false) => Extension::By(d.positive_span("by")?),
                (false, true) => Extension::To(d.timestamp("deadline")?),
                (true, true) => {
                    return Err(Rejection::new(
                        RejectReason::InvalidField,
                        "fields `data.by` and `data.deadline`: give exactly one, not both",
                    ));
                }
                (false, false) => {
                    return Err(Rejection::new(
                        RejectReason::MissingField,
                        "field `data.by` (a duration such as \"P9M\") or `data.deadline` (RFC 3339) is required",
                    ));
                }
            };
            EventKind::CaseDeadlineExtended { case, extension }
        }
        EventType::CaseSuspended => EventKind::CaseSuspended {
            case: d.text("case")?,
        },
        EventType::CaseResumed => EventKind::CaseResumed {
            case: d.text("case")?,
        },
        EventType::CaseTransferred => EventKind::CaseTransferred {
            case: d.text("case")?,
            location: d.text("location")?,
        },
        EventType::CaseDecided => EventKind::CaseDecided {
            case: d.text("case")?,
            outcome: d.choice("outcome", Outcome::parse, &Outcome::NAMES)?,
            decided_by: d.text("decided_by")?,
            basis: d.optional("basis", Fields::string)?,
            additional_investigation: d.optional("additional_investigation", Fields::bool)?,
        },
        EventType::CaseClosed => EventKind::CaseClosed {
            case: d.text("case")?,
            reason: d.choice("reason", CloseReason::parse, &CloseReason::NAMES)?,
        },
        EventType::CaseReopened => EventKind::CaseReopened {
            case: d.text("case")?,
            deadline: d.optional("deadline", Fields::timestamp)?,
            track: d.optional("track", Fields::text)?,
        },
        EventType::EmployeeJoined => EventKind::EmployeeJoined {
            employee: d.text("employee")?,
            role: d.text("role")?,
            experienced: d.bool("experienced")?,
            contract: if d.present("contract") {
                d.choice("contract", Contract::parse, &Contract::NAMES)?
            } else {
                Contract::Permanent
            },
            location: d.optional("location", Fields::text)?,
            since: d.optional("since", Fields::timestamp)?,
        },
        EventType::EmployeeUpdated => EventKind::EmployeeUpdated {
            employee: d.text("employee")?,
            role: d.optional("role", Fields::text)?,
            experienced: d.optional("experienced", Fields::bool)?,
            contract: if d.present("contract") {
                Some(d.choice("contract", Contract::parse, &Contract::NAMES)?)
            } else {
                None
            },
            location: d.optional("location", Fields::text)?,
        },
        EventType::EmployeeLeft => EventKind::EmployeeLeft {
            employee: d.text("employee")?,
        },
        EventType::MentorAssigned => EventKind::MentorAssigned {
            mentor: d.text("mentor")?,
            mentee: d.text("mentee")?,
        },
        EventType::MentorUnassigned => EventKind::MentorUnassigned {
            mentee: d.text("mentee")?,
        },
        EventType::QualityAudit => EventKind::QualityAudit {
            passed: d.bool("passed")?,
            case: d.optional("case", Fields::string)?,
        },
        EventType::TargetAnnounced => EventKind::TargetAnnounced {
            target: d.text("target")?,
            track: d.optional("track", Fields::text)?,
            clear_by: d.timestamp("clear_by")?,
            announced_by: d.optional("announced_by", Fields::text)?,
            note: d.optional("note", Fields::note)?,
        },
    })
}

/// Typed access to the fields of one JSON object, with errors that name the full field path.
struct Fields<'a> {
    object: &'a Object<'a>,
    prefix: &'static str,
}

impl<'a> Fields<'a> {
    /// `read` of `key` when the key is present (and not null), else `None`.
    fn optional<T>(
        &self,
        key: &str,
        read: fn(&Self, &str) -> Result<T, Rejection>,
    ) -> Result<Option<T>, Rejection> {
        if self.present(key) {
            read(self, key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Present and not `null`.
    fn present(&self, key: &str) -> bool {
        !matches!(self.object.get(key), None | Some(Json::Null))
    }

    fn missing(&self, key: &str) -> Rejection {
        Rejection::new(
            RejectReason::MissingField,
            format!("field `{}{key}` is required", self.prefix),
        )
    }

    fn invalid(&self, key: &str, problem: impl std::fmt::Display) -> Rejection {
        Rejection::new(
            RejectReason::InvalidField,
            format!("field `{}{key}`: {problem}", self.prefix),
        )
    }

    /// A string, borrowed from the event.
    fn str(&self, key: &str) -> Result<&'a str, Rejection> {
        match self.object.get(key) {
            None | Some(Json::Null) => Err(self.missing(key)),
            Some(Json::Str(s)) => Ok(s),
            Some(other) => Err(self.invalid(
                key,
                format_args!("must be a string, got {}", other.type_name()),
            )),
        }
    }

    fn string(&self, key: &str) -> Result<String, Rejection> {
        self.str(key).map(str::to_owned)
    }

    /// An identifier-like string of 1 to [`MAX_TEXT_BYTES`] bytes.
    fn text(&self, key: &str) -> Result<String, Rejection> {
        let value = self.str(key)?;
        if value.is_empty() || value.len() > MAX_TEXT_BYTES {
            return Err(self.invalid(
                key,
                format_args!(
                    "must be 1 to {MAX_TEXT_BYTES} bytes, got {} bytes",
                    value.len()
                ),
            ));
        }
        Ok(value.to_owned())
    }

    /// A free-text remark of at most [`MAX_NOTE_BYTES`] bytes.
    fn note(&self, key: &str) -> Result<String, Rejection> {
        let value = self.str(key)?;
        if value.len() > MAX_NOTE_BYTES {
            return Err(self.invalid(
                key,
                format_args!(
                    "must be at most {MAX_NOTE_BYTES} bytes, got {} bytes",
                    value.len()
                ),
            ));
        }
        Ok(value.to_owned())
    }

    fn bool(&self, key: &str) -> Result<bool, Rejection> {
        match self.object.get(key) {
            None | Some(Json::Null) => Err(self.missing(key)),
            Some(Json::Bool(b)) => Ok(*b),
            Some(other) => Err(self.invalid(
                key,
                format_args!("must be true or false, got {}", other.type_name()),
            )),
        }
    }

    fn timestamp(&self, key: &str) -> Result<Timestamp, Rejection> {
        let value = self.str(key)?;
        // RFC 3339 exactly: jiff alone also takes the basic format, missing seconds, a six-digit
        // year, a comma fraction, an offset of +24:00 or with seconds, and annotations.
        crate::instant::parse_rfc3339(value).map_err(|_| {
            self.invalid(
                key,
                format_args!(
                    "\"{value}\" is not an RFC 3339 timestamp with offset (e.g. \"2025-01-31T09:00:00+01:00\")"
                ),
            )
        })
    }

    fn positive_span(&self, key: &str) -> Result<Span, Rejection> {
        let value = self.str(key)?;
        let span = value.parse::<Span>().map_err(|_| {
            self.invalid(
                key,
                format_args!("\"{value}\" is not an ISO 8601 duration (e.g. \"P9M\", \"P14D\")"),
            )
        })?;
        if !span.is_positive() {
            return Err(self.invalid(key, format_args!("\"{value}\" must be a positive duration")));
        }
        Ok(span)
    }

    fn choice<T>(
        &self,
        key: &str,
        parse: fn(&str) -> Option<T>,
        allowed: &[&str],
    ) -> Result<T, Rejection> {
        let value = self.str(key)?;
        parse(value).ok_or_else(|| {
            self.invalid(
                key,
                format_args!("\"{value}\" is not one of {}", allowed.join(", ")),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(raw: &str) -> String {
        let rejection = parse_event(raw).unwrap_err();
        format!("{}", rejection.rejection)
    }

    #[test]
    fn parses_a_full_registration() {
        let event = parse_event(
            r#"{"specversion":"1.0","id":"e1","type":"case.registered","source":"x","time":"2025-01-31T09:00:00+01:00",
                "data":{"case":"c1","track":"asylum","location":"Ter Apel","unknown":1}}"#,
        )
        .unwrap();
        assert_eq!(event.id, "e1");
        assert_eq!(
            event.time,
            "2025-01-31T08:00:00Z".parse::<Timestamp>().unwrap()
        );
        let EventKind::CaseRegistered { case, location, .. } = event.kind else {
            panic!("wrong kind")
        };
        assert_eq!(
            (case.as_str(), location.as_deref()),
            ("c1", Some("Ter Apel"))
        );
    }

    #[test]
    fn rejections_name_the_field_and_reason() {
        assert_eq!(
            reject(
                r#"{"id":"e1","type":"case.registered","time":"2025-01-01T00:00:00Z","data":{"track":"asylum"}}"#
            ),
            "missing_field: field `data.case` is required"
        );
        assert_eq!(
            reject(
                r#"{"id":"e1","type":"case.registered","time":"2025-01-01T00:00:00Z","data":{"case":7,"track":"asylum"}}"#
            ),
            "invalid_field: field `data.case`: must be a string, got a number"
        );
        assert_eq!(
            reject(r#"{"id":"e1","type":"case.exploded","time":"2025-01-01T00:00:00Z","data":{}}"#),
            "unknown_type: field `type`: \"case.exploded\" is not a known event type"
        );
        assert_eq!(
            reject(
                r#"{"id":"e1","type":"case.hearing_held","time":"yesterday","data":{"case":"c"}}"#
            ),
            "invalid_field: field `time`: \"yesterday\" is not an RFC 3339 timestamp with offset (e.g. \"2025-01-31T09:00:00+01:00\")"
        );
        assert_eq!(
            reject(
                r#"{"id":"","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"c"}}"#
            ),
            "invalid_field: field `id`: must be 1 to 128 bytes, got 0 bytes"
        );
        assert_eq!(
            reject(
                r#"{"id":"e","specversion":"0.3","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"c"}}"#
            ),
            "invalid_field: field `specversion`: must be \"1.0\" when present, got \"0.3\""
        );
        assert_eq!(
            reject(
                r#"{"id":"e","type":"case.deadline_extended","time":"2025-01-01T00:00:00Z","data":{"case":"c","by":"P1M","deadline":"2025-01-01T00:00:00Z"}}"#
            ),
            "invalid_field: fields `data.by` and `data.deadline`: give exactly one, not both"
        );
        assert_eq!(
            reject(
                r#"{"id":"e","type":"case.decided","time":"2025-01-01T00:00:00Z","data":{"case":"c","outcome":"maybe","decided_by":"x"}}"#
            ),
            "invalid_field: field `data.outcome`: \"maybe\" is not one of granted, rejected, other"
        );
        assert_eq!(
            reject(r#"{"id":"e","type":"case.hearing_held","time":"2025-01-01T00:00:00Z"}"#),
            "missing_field: field `data` is required"
        );
        assert_eq!(
            reject(
                r#"{"id":"e","type":"employee.joined","time":"2025-01-01T00:00:00Z","data":{"employee":"x","role":"caseworker","experienced":true,"since":"2019"}}"#
            ),
            "invalid_field: field `data.since`: \"2019\" is not an RFC 3339 timestamp with offset (e.g. \"2025-01-31T09:00:00+01:00\")"
        );
        assert_eq!(
            reject("[1]"),
            "invalid_json: an event must be a JSON object, got an array"
        );
        assert!(reject("{nope").starts_with("invalid_json: not valid JSON"));
    }

    /// The parser borrows texts from the event; one with an escape is decoded into its own copy,
    /// and a value quoted in a message is shown as JSON whatever its type.
    #[test]
    fn escaped_texts_decode_and_quoted_values_show_as_json() {
        let event = parse_event(
            r#"{"id":"e\u002d1","type":"case.assigned","time":"2025-01-01T00:00:00Z","data":{"case":"Z\"1\"","employee":"caf\u00e9"}}"#,
        )
        .expect("valid");
        assert_eq!(event.id, "e-1");
        let EventKind::CaseAssigned { case, employee } = event.kind else {
            panic!("a case.assigned event");
        };
        assert_eq!((case.as_str(), employee.as_str()), ("Z\"1\"", "café"));
        for (version, shown) in [
            ("2", "2"),
            ("1.5", "1.5"),
            ("null", "null"),
            (r#"["1.0"]"#, r#"["1.0"]"#),
            (r#"{"v":"1\n0"}"#, r#"{"v":"1\n0"}"#),
        ] {
            let raw = format!(
                r#"{{"id":"e","specversion":{version},"type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{{"case":"c"}}}}"#
            );
            assert_eq!(
                reject(&raw),
                format!(
                    "invalid_field: field `specversion`: must be \"1.0\" when present, got {shown}"
                )
            );
        }
    }

    /// Repeated keys are found in objects of any size: by a scan in small ones, by a set past
    /// `KEYS_SCANNED` members (so that an object of many keys costs linear time).
    #[test]
    fn repeated_keys_are_found_in_large_objects() {
        for (members, repeat_of) in [
            (5, 2),
            (KEYS_SCANNED, 0),
            (KEYS_SCANNED + 1, 3),
            (5000, 4321),
        ] {
            let mut extra: Vec<String> = (0..members).map(|i| format!(r#""x{i}":{i}"#)).collect();
            extra.push(format!(r#""x{repeat_of}":true"#));
            let raw = format!(
                r#"{{"id":"e","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{{"case":"c",{}}}}}"#,
                extra.join(",")
            );
            let message = reject(&raw);
            assert!(
                message.contains(&format!("duplicate key `data.x{repeat_of}`")),
                "{members} members: {message}"
            );
            // Without the repeat the same object is an event (unknown keys are ignored).
            extra.pop();
            let raw = format!(
                r#"{{"id":"e","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{{"case":"c",{}}}}}"#,
                extra.join(",")
            );
            assert!(parse_event(&raw).is_ok(), "{members} members");
        }
    }

    /// Issue 24: with duplicate keys the last one won silently (a second `id` made the event
    /// another one). Refused as invalid JSON naming the key, at any depth; no id is reported,
    /// since which one is meant is unknown.
    #[test]
    fn duplicate_keys_are_refused_naming_the_key() {
        let cases = [
            (
                r#"{"id":"e1","id":"e2","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"c"}}"#,
                "`id`",
            ),
            (
                r#"{"id":"e1","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"c","case":"d"}}"#,
                "`data.case`",
            ),
            (
                r#"{"id":"e1","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"c"},"x":[{"a":1,"a":2}]}"#,
                "`x[0].a`",
            ),
        ];
        for (raw, key) in cases {
            let rejection = parse_event(raw).unwrap_err();
            assert_eq!(rejection.id, None, "{raw}");
            let text = rejection.rejection.to_string();
            assert!(
                text.starts_with(&format!(
                    "invalid_json: not valid JSON: duplicate key {key} at line 1 column "
                )),
                "{text}"
            );
        }
        // The same key in sibling objects is no duplicate.
        assert!(
            parse_event(
                r#"{"id":"e1","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"c"},"x":[{"a":1},{"a":2}]}"#
            )
            .is_ok()
        );
    }

    /// docs/events.md says RFC 3339: what jiff's parser also takes is refused, naming the field.
    #[test]
    fn timestamps_are_rfc_3339_exactly() {
        let event = |time: &str| {
            format!(
                r#"{{"id":"e","type":"case.hearing_held","time":"{time}","data":{{"case":"c"}}}}"#
            )
        };
        for time in [
            "2026-12-01T10:00Z",
            "20261201T100000Z",
            "+002026-12-01T10:00:00Z",
            "2026-12-01T10:00:00,5Z",
            "2026-12-01T10:00:00+24:00",
            "2026-12-01T10:00:00+01:00:30",
            "2026-12-01T10:00:00Z[u-ca=hebrew]",
        ] {
            assert_eq!(
                reject(&event(time)),
                format!(
                    "invalid_field: field `time`: \"{time}\" is not an RFC 3339 timestamp with offset (e.g. \"2025-01-31T09:00:00+01:00\")"
                )
            );
        }
        for time in [
            "2026-12-01T10:00:00Z",
            "2026-12-01t10:00:00.123456789z",
            "2026-12-01T11:00:00+01:00",
        ] {
            assert!(parse_event(&event(time)).is_ok(), "{time}");
        }
    }

    /// Each id field of `data` is found by name when it is the one with a non-ASCII character;
    /// free text (an audit's `case`, a hearing's `reason`) and labels are not ids.
    #[test]
    fn non_ascii_ids_are_named_by_field() {
        let field = |data: &str, event_type: &str| {
            parse_event(&format!(
                r#"{{"id":"e","type":"{event_type}","time":"2025-01-01T00:00:00Z","data":{data}}}"#
            ))
            .unwrap_or_else(|r| panic!("{data}: {r:?}"))
            .non_ascii_id_field()
        };
        let cases = [
            (
                r#"{"case":"ç","track":"asylum"}"#,
                "case.registered",
                Some("data.case"),
            ),
            (
                r#"{"case":"c","track":"asylum","location":"Zoë"}"#,
                "case.registered",
                None,
            ),
            (
                r#"{"case":"c","employee":"ë"}"#,
                "case.assigned",
                Some("data.employee"),
            ),
            (
                r#"{"case":"c","outcome":"granted","decided_by":"ë"}"#,
                "case.decided",
                Some("data.decided_by"),
            ),
            (
                r#"{"mentor":"m","mentee":"ë"}"#,
                "mentor.assigned",
                Some("data.mentee"),
            ),
            (
                r#"{"mentor":"ë","mentee":"ë"}"#,
                "mentor.assigned",
                Some("data.mentor"),
            ),
            (
                r#"{"case":"c","reason":"tolk ziek ë"}"#,
                "case.hearing_cancelled",
                None,
            ),
            (r#"{"passed":true,"case":"ë"}"#, "quality.audit", None),
            (r#"{"case":"c"}"#, "case.hearing_held", None),
        ];
        for (data, event_type, expected) in cases {
            assert_eq!(field(data, event_type), expected, "{event_type} {data}");
        }
        let event = parse_event(
            r#"{"id":"é","type":"case.hearing_held","time":"2025-01-01T00:00:00Z","data":{"case":"ç"}}"#,
        )
        .unwrap();
        assert_eq!(event.non_ascii_id_field(), Some("id"));
    }

    #[test]
    fn rejection_keeps_the_id_when_readable() {
        let rejection =
            parse_event(r#"{"id":"e9","type":"nope","time":"x","data":{}}"#).unwrap_err();
        assert_eq!(rejection.id.as_deref(), Some("e9"));
    }

    #[test]
    fn ndjson_skips_blank_lines_and_counts_the_rest() {
        let body = b"{\"a\":1}\n\n  \r\nnot json\r\n{\"b\":2}";
        let items = parse_body(BodyFormat::Ndjson, body, 100).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].raw, "not json");
        assert_eq!(
            items[1].parsed.as_ref().unwrap_err().rejection.reason,
            RejectReason::InvalidJson
        );
    }

    #[test]
    fn array_body_keeps_raw_elements_and_rejects_a_broken_array_whole() {
        let items = parse_body(BodyFormat::Array, br#"[{"x":1}, 5]"#, 100).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].raw, r#"{"x":1}"#);
        assert!(parse_body(BodyFormat::Array, b"[{", 100).is_err());
        assert!(parse_body(BodyFormat::Single, b"{", 100).is_err());
    }

    #[test]
    fn bodies_with_more_events_than_the_limit_are_refused_before_parsing() {
        let too_many = Err(BodyError::TooManyEvents { limit: 3 });
        // Blank lines are not events.
        let ndjson = b"1\n\n2\n3\n\n";
        assert_eq!(
            parse_body(BodyFormat::Ndjson, ndjson, 3).map(|v| v.len()),
            Ok(3)
        );
        assert_eq!(
            parse_body(BodyFormat::Ndjson, b"1\n2\n3\n4", 3).map(|v| v.len()),
            too_many
        );
        assert_eq!(
            parse_body(BodyFormat::Array, b"[1,2,3]", 3).map(|v| v.len()),
            Ok(3)
        );
        // A line that is not UTF-8 is one rejected event; the others are parsed.
        let items = parse_body(BodyFormat::Ndjson, b"{}\n\xff\xfe\n{}", 3).unwrap();
        assert_eq!(items.len(), 3);
        let rejection = &items[1].parsed.as_ref().unwrap_err().rejection;
        assert_eq!(rejection.reason, RejectReason::InvalidJson);
        assert!(
            rejection.message.contains("not valid UTF-8"),
            "{}",
            rejection.message
        );
        assert_eq!(items[1].raw, "");
        assert_eq!(
            parse_body(BodyFormat::Array, b"[1,2,3,4]", 3).map(|v| v.len()),
            too_many
        );
        // A malformed array within the limit is still a 400, not a 413.
        assert!(matches!(
            parse_body(BodyFormat::Array, b"[1,2] x", 3),
            Err(BodyError::Malformed(_))
        ));
    }

    #[test]
    fn target_announcements_parse_with_their_optional_fields_and_a_bounded_note() {
        let event = parse_event(
            r#"{"specversion":"1.0","id":"t1","type":"target.announced","source":"x","time":"2026-10-07T10:00:00+02:00",
                "data":{"target":"backlog","clear_by":"2027-06-30T00:00:00+02:00","note":"mid 2027"}}"#,
        )
        .unwrap();
        let EventKind::TargetAnnounced {
            target,
            track,
            clear_by,
            announced_by,
            note,
        } = event.kind
        else {
            panic!("wrong kind")
        };
        assert_eq!(
            (target.as_str(), track, announced_by, note.as_deref()),
            ("backlog", None, None, Some("mid 2027"))
        );
        assert_eq!(
            clear_by,
            "2027-06-29T22:00:00Z".parse::<Timestamp>().unwrap()
        );
        let envelope = |data: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"t2","type":"target.announced","source":"x","time":"2026-10-07T10:00:00Z","data":{data}}}"#
            )
        };
        assert_eq!(
            reject(&envelope(r#"{"target":"backlog"}"#)),
            "missing_field: field `data.clear_by` is required"
        );
        assert_eq!(
            reject(&envelope(
                r#"{"target":"backlog","clear_by":"autumn 2020"}"#
            )),
            "invalid_field: field `data.clear_by`: \"autumn 2020\" is not an RFC 3339 timestamp with offset (e.g. \"2025-01-31T09:00:00+01:00\")"
        );
        let long = "x".repeat(MAX_NOTE_BYTES + 1);
        assert_eq!(
            reject(&envelope(&format!(
                r#"{{"target":"backlog","clear_by":"2027-01-01T00:00:00Z","note":"{long}"}}"#
            ))),
            "invalid_field: field `data.note`: must be at most 1024 bytes, got 1025 bytes"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type("application/x-ndjson; charset=utf-8"),
            Some(BodyFormat::Ndjson)
        );
        assert_eq!(
            BodyFormat::from_content_type("application/cloudevents-batch+json"),
            Some(BodyFormat::Array)
        );
        assert_eq!(BodyFormat::from_content_type("text/plain"), None);
    }
}
