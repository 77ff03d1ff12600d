//! `meta.k8s.io/v1` Table output, built from the generated printer-column cells, the way
//! kube-apiserver prints custom resources.

use generated::Endpoint;
use serde_json::{json, Map, Value};

/// The description kube-apiserver gives the Name column.
const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => {
                Err(format!("includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""))
            }
        }
    }
}

/// The column definitions: Name, then the spec's columns (or Age when it declares none).
pub fn column_definitions(endpoint: &Endpoint) -> Vec<Value> {
    let mut columns = vec![json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0})];
    let printer_columns = &endpoint.version().printer_columns;
    if printer_columns.is_empty() {
        columns.push(json!({"name": "Age", "type": "date", "format": "", "description": "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp", "priority": 0}));
    }
    for c in printer_columns {
        let description = if c.description.is_empty() {
            format!("Custom resource definition column (in JSONPath format): {}", c.json_path)
        } else {
            c.description.clone()
        };
        columns
            .push(json!({"name": c.name, "type": c.column_type, "format": c.format, "description": description, "priority": c.priority}));
    }
    columns
}

/// The cells of an object's row: its name, then each column's value (or its age, when the
/// spec declares no columns).
pub fn cells(endpoint: &Endpoint, object: &Value, now: chrono::DateTime<chrono::Utc>) -> Vec<Value> {
    cell_parts(endpoint, object).into_iter().map(|cell| cell.at(now)).collect()
}

/// A cell before the time of the answer is known.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A value that does not depend on the time.
    Ready(Value),
    /// A date column's value: printed as the age of this instant when the answer is written.
    Age(chrono::DateTime<chrono::Utc>),
}

impl Cell {
    /// The cell as printed at `now`.
    pub fn at(self, now: chrono::DateTime<chrono::Utc>) -> Value {
        match self {
            Cell::Ready(value) => value,
            Cell::Age(instant) => Value::String(human_duration(now.signed_duration_since(instant))),
        }
    }
}

/// The cells of an object's row, ages not yet printed.
pub fn cell_parts(endpoint: &Endpoint, object: &Value) -> Vec<Cell> {
    let name = object.get("metadata").and_then(|m| m.get("name")).cloned().unwrap_or(Value::Null);
    let mut cells = vec![Cell::Ready(name)];
    let printer_columns = &endpoint.version().printer_columns;
    if printer_columns.is_empty() {
        let created = object.get("metadata").and_then(|m| m.get("creationTimestamp")).cloned().unwrap_or(Value::Null);
        cells.push(cell("date", created));
    }
    for (column, value) in printer_columns.iter().zip((endpoint.table_cells)(object)) {
        cells.push(cell(&column.column_type, value));
    }
    cells
}

/// Table rows written ahead of time but for their ages: the bytes of the rows, and where each
/// age goes. Ages are printed when an answer is written ([`Rows::pieces`]), so rows can be kept
/// and written again later (`engine::list_cache`).
#[derive(Debug, Default)]
pub struct Rows {
    text: Vec<u8>,
    ages: Vec<(usize, chrono::DateTime<chrono::Utc>)>,
}

impl Rows {
    /// The bytes written so far, to append to.
    pub fn text(&mut self) -> &mut Vec<u8> {
        &mut self.text
    }

    /// Appends a cell: its JSON, or a place for its age.
    pub fn cell(&mut self, cell: &Cell) -> serde_json::Result<()> {
        match cell {
            Cell::Ready(value) => serde_json::to_writer(&mut self.text, value),
            Cell::Age(instant) => {
                self.ages.push((self.text.len(), *instant));
                Ok(())
            }
        }
    }

    /// Appends `{"cells":[…]` for `cells` (the row stays open for its object and `}`).
    pub fn open_row(&mut self, cells: &[Cell]) -> serde_json::Result<()> {
        self.text.extend_from_slice(br#"{"cells":["#);
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                self.text.push(b',');
            }
            self.cell(cell)?;
        }
        self.text.push(b']');
        Ok(())
    }

    /// The rows with their ages at `now`, in pieces of about `piece` bytes, written as they
    /// are taken (a large Table is never whole in memory).
    pub fn pieces(self: std::sync::Arc<Self>, now: chrono::DateTime<chrono::Utc>, piece: usize) -> impl Iterator<Item = bytes::Bytes> {
        let (mut at, mut age) = (0, 0);
        std::iter::from_fn(move || {
            if at == self.text.len() && age == self.ages.len() {
                return None;
            }
            let mut out = Vec::with_capacity(piece + 32);
            while out.len() < piece && (at < self.text.len() || age < self.ages.len()) {
                let boundary = self.ages.get(age).map_or(self.text.len(), |(position, _)| *position);
                let end = boundary.min(at + (piece - out.len()));
                out.extend_from_slice(&self.text[at..end]);
                at = end;
                if let Some((position, instant)) = self.ages.get(age).filter(|(position, _)| *position == at) {
                    debug_assert_eq!(*position, at);
                    out.push(b'"');
                    out.extend_from_slice(human_duration(now.signed_duration_since(*instant)).as_bytes());
                    out.push(b'"');
                    age += 1;
                }
            }
            Some(bytes::Bytes::from(out))
        })
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.text.len() + self.ages.len() * std::mem::size_of::<(usize, chrono::DateTime<chrono::Utc>)>()
    }
}

/// One row for an object; the object (or its metadata) moves into the row.
pub fn row(endpoint: &Endpoint, object: Value, include: IncludeObject, beta: bool, now: chrono::DateTime<chrono::Utc>) -> Value {
    let cells = cells(endpoint, &object, now);
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert("object".into(), partial_object_metadata(object, beta));
        }
        IncludeObject::Object => {
            row.insert("object".into(), object);
        }
    }
    Value::Object(row)
}

/// A Table of the given rows.
pub fn table(endpoint: &Endpoint, rows: Vec<Value>, list_meta: Value, beta: bool) -> Value {
    json!({"kind": "Table", "apiVersion": api_version(beta), "metadata": list_meta, "columnDefinitions": column_definitions(endpoint), "rows": rows})
}

/// The start of the bytes [`table`] encodes to, up to its first row: rows follow, separated by
/// commas, then `]}`.
pub fn table_head(endpoint: &Endpoint, list_meta: &Value, beta: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(br#"{"kind":"Table","apiVersion":""#);
    out.extend_from_slice(api_version(beta).as_bytes());
    out.extend_from_slice(br#"","metadata":"#);
    out.extend_from_slice(list_meta.to_string().as_bytes());
    out.extend_from_slice(br#","columnDefinitions":"#);
    out.extend_from_slice(Value::Array(column_definitions(endpoint)).to_string().as_bytes());
    out.extend_from_slice(br#","rows":["#);
    out
}

/// `meta.k8s.io`'s version for Table and PartialObjectMetadata.
pub fn api_version(beta: bool) -> &'static str {
    if beta {
        "meta.k8s.io/v1beta1"
    } else {
        "meta.k8s.io/v1"
    }
}

/// Fields of ObjectMeta in Go's struct order, which kube-apiserver uses when it writes typed
/// metadata (PartialObjectMetadata), unlike the sorted keys of the custom resource itself.
pub(crate) const META_ORDER: &[&str] = super::object::OBJECT_META_FIELDS;

/// Fields of a managedFields entry in Go's struct order.
pub(crate) const MANAGED_FIELDS_ORDER: &[&str] = &["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"];

/// The entries of `map` named in `order`, in that order; the others are dropped.
fn reorder(mut map: Map<String, Value>, order: &[&str]) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len());
    for key in order {
        if let Some((k, v)) = map.swap_remove_entry(*key) {
            out.insert(k, v);
        }
    }
    out
}

/// `PartialObjectMetadata` of an object (whose metadata moves into it).
pub fn partial_object_metadata(object: Value, beta: bool) -> Value {
    let meta = match object {
        Value::Object(mut map) => match map.swap_remove("metadata") {
            Some(Value::Object(meta)) => meta,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    let mut meta = reorder(meta, META_ORDER);
    if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
        for e in entries.iter_mut() {
            if let Value::Object(m) = e {
                *m = reorder(std::mem::take(m), MANAGED_FIELDS_ORDER);
            }
        }
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": api_version(beta), "metadata": meta})
}

/// A column's cell from the first JSONPath result, as kube-apiserver types it: strings print the
/// value as Go's jsonpath does, numbers and booleans must have the column's type (else the cell
/// is empty), dates become ages.
fn cell(column_type: &str, value: Value) -> Cell {
    Cell::Ready(match (column_type, value) {
        (_, Value::Null) => Value::Null,
        ("string", v) => Value::String(go_print(&v)),
        ("integer", Value::Number(n)) => {
            n.as_i64().map(Value::from).or_else(|| n.as_f64().map(|f| Value::from(f as i64))).unwrap_or(Value::Null)
        }
        ("number", Value::Number(n)) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        ("boolean", v @ Value::Bool(_)) => v,
        ("date", v) => return age_cell(&v),
        _ => Value::Null,
    })
}

/// How Go's jsonpath printer writes a value: strings bare, lists as `[a b]`, maps as
/// `map[k:v]` with sorted keys.
fn go_print(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            format!("map[{}]", entries.iter().map(|(k, v)| format!("{k}:{}", go_print(v))).collect::<Vec<_>>().join(" "))
        }
    }
}

/// A date column's cell: an age when the value is an RFC 3339 time, `<invalid>` for another
/// string, null otherwise.
fn age_cell(value: &Value) -> Cell {
    match value {
        Value::String(s) => match chrono::DateTime::parse_from_rfc3339(s) {
            Ok(t) => Cell::Age(t.with_timezone(&chrono::Utc)),
            Err(_) => Cell::Ready(Value::String("<invalid>".into())),
        },
        _ => Cell::Ready(Value::Null),
    }
}

/// A short human duration, as kubectl and kube-apiserver print ages (`5s`, `3m20s`, `2d5h`).
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{days}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn cells_typed_like_kube_apiserver() {
        let now = chrono::Utc::now();
        let cell = |column_type: &str, value: Value, now| super::cell(column_type, value).at(now);
        assert_eq!(cell("string", serde_json::json!({"b": [1, "x"], "a": true}), now), Value::String("map[a:true b:[1 x]]".into()));
        assert_eq!(cell("string", serde_json::json!(3), now), Value::String("3".into()));
        assert_eq!(cell("integer", serde_json::json!(3.0), now), serde_json::json!(3));
        assert_eq!(cell("integer", serde_json::json!("3"), now), Value::Null);
        assert_eq!(cell("boolean", serde_json::json!(true), now), serde_json::json!(true));
        assert_eq!(cell("date", serde_json::json!("yesterday"), now), Value::String("<invalid>".into()));
        assert_eq!(cell("date", Value::Null, now), Value::Null);
        let an_hour_ago = (now - TimeDelta::hours(1)).to_rfc3339();
        assert_eq!(cell("date", serde_json::json!(an_hour_ago), now), Value::String("60m".into()));
    }

    #[test]
    fn rows_print_their_ages_when_written() {
        let then = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let mut rows = Rows::default();
        rows.open_row(&[Cell::Ready(Value::String("a".into())), Cell::Age(then), Cell::Ready(serde_json::json!(7))]).unwrap();
        rows.text().push(b'}');
        rows.text().push(b',');
        rows.open_row(&[Cell::Age(then)]).unwrap();
        rows.text().push(b'}');
        let rows = std::sync::Arc::new(rows);
        let written = |now, piece| String::from_utf8(rows.clone().pieces(now, piece).flat_map(|b| b.to_vec()).collect()).unwrap();
        assert_eq!(written(then + TimeDelta::seconds(5), 1000), r#"{"cells":["a","5s",7]},{"cells":["5s"]}"#);
        // Pieces of any size join into the same bytes.
        for piece in [1, 2, 5, 1000] {
            assert_eq!(written(then + TimeDelta::minutes(3), piece), r#"{"cells":["a","3m",7]},{"cells":["3m"]}"#, "pieces of {piece}");
        }
    }

    #[test]
    fn durations_like_kubectl() {
        let cases = [
            (0, "0s"),
            (1, "1s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 120, "3h2m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (49 * 3600, "2d1h"),
            (8 * 86400, "8d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(TimeDelta::seconds(secs)), want, "{secs}s");
        }
        assert_eq!(human_duration(TimeDelta::seconds(-1)), "0s");
        assert_eq!(human_duration(TimeDelta::seconds(-5)), "<invalid>");
    }
}
