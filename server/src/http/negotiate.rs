//! Content negotiation: parsing `Accept` and `Content-Type` headers into what we can produce or
//! consume. Every media range of `Accept` is considered, with its parameters and q-value.

/// One parsed media range, e.g. `application/json;as=Table;v=v1;g=meta.k8s.io;q=0.9`.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `application`, or `*`.
    pub kind: String,
    /// `json`, or `*`.
    pub subtype: String,
    /// Parameters other than `q`, lower-cased names.
    pub params: Vec<(String, String)>,
    /// Quality, 0.0 to 1.0.
    pub q: f32,
}

impl MediaRange {
    /// A parameter's value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// `type/subtype`.
    pub fn essence(&self) -> String {
        format!("{}/{}", self.kind, self.subtype)
    }
}

/// Parses a header value with comma-separated media ranges. Malformed entries are skipped.
pub fn parse_media_ranges(header: &str) -> Vec<MediaRange> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let essence = pieces.next()?.trim().to_ascii_lowercase();
            let (kind, subtype) = essence.split_once('/')?;
            if kind.is_empty() || subtype.is_empty() {
                return None;
            }
            let mut params = Vec::new();
            let mut q = 1.0;
            for p in pieces {
                let Some((k, v)) = p.split_once('=') else { continue };
                let k = k.trim().to_ascii_lowercase();
                let v = v.trim().trim_matches('"').to_string();
                if k == "q" {
                    q = v.parse::<f32>().unwrap_or(0.0).clamp(0.0, 1.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(MediaRange { kind: kind.to_string(), subtype: subtype.to_string(), params, q })
        })
        .collect()
}

/// The media ranges of an Accept header, best first (stable for equal q-values). An absent or
/// empty header means `*/*`.
pub fn accept_preferences(header: Option<&str>) -> Vec<MediaRange> {
    let mut ranges = parse_media_ranges(header.unwrap_or(""));
    if ranges.is_empty() {
        ranges.push(MediaRange { kind: "*".into(), subtype: "*".into(), params: vec![], q: 1.0 });
    }
    ranges.retain(|r| r.q > 0.0);
    ranges.sort_by(|a, b| b.q.partial_cmp(&a.q).unwrap_or(std::cmp::Ordering::Equal));
    ranges
}

/// Serialization formats the API can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`.
    Json,
    /// `application/yaml`.
    Yaml,
}

/// What shape the client asked the object in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The object itself.
    Object,
    /// A `meta.k8s.io` Table (v1 or v1beta1 requested; v1 is always returned for v1beta1 too,
    /// apart from the apiVersion).
    Table {
        /// `v1` or `v1beta1`.
        beta: bool,
    },
    /// `PartialObjectMetadata` / `PartialObjectMetadataList`.
    Metadata {
        /// `v1` or `v1beta1`.
        beta: bool,
    },
}

/// The chosen response form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// JSON or YAML.
    pub encoding: Encoding,
    /// Object, Table, or metadata only.
    pub shape: Shape,
}

/// Chooses the best response form for an object (or list) endpoint. `None` means 406.
pub fn negotiate_object(accept: Option<&str>) -> Option<Negotiated> {
    for range in accept_preferences(accept) {
        let encoding = match (range.kind.as_str(), range.subtype.as_str()) {
            ("application", "json") | ("application", "*") | ("*", "*") => Encoding::Json,
            ("application", "yaml") => Encoding::Yaml,
            _ => continue,
        };
        let shape = match (range.param("as"), range.param("g"), range.param("v")) {
            (None, _, _) => Shape::Object,
            (Some("Table"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) => Shape::Table { beta: v == "v1beta1" },
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io"), Some(v @ ("v1" | "v1beta1"))) => {
                Shape::Metadata { beta: v == "v1beta1" }
            }
            // Conversions we do not offer: try the next range.
            _ => continue,
        };
        return Some(Negotiated { encoding, shape });
    }
    None
}

/// Media types listed in 406 errors for object endpoints.
pub const OBJECT_MEDIA_TYPES: &[&str] = &["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"];

/// The essence (`type/subtype`) of a Content-Type, lower-cased; empty when absent.
pub fn content_type_essence(header: Option<&str>) -> String {
    header.and_then(|h| h.split(';').next()).map(|s| s.trim().to_ascii_lowercase()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(accept: &str) -> Option<Negotiated> {
        negotiate_object(Some(accept))
    }

    #[test]
    fn chooses_like_kube_apiserver() {
        let table = Negotiated { encoding: Encoding::Json, shape: Shape::Table { beta: false } };
        let json = Negotiated { encoding: Encoding::Json, shape: Shape::Object };
        let cases = [
            (
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
                Some(table),
            ),
            (
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
                Some(Negotiated { encoding: Encoding::Json, shape: Shape::Table { beta: true } }),
            ),
            ("application/json", Some(json)),
            ("application/vnd.kubernetes.protobuf,application/json", Some(json)),
            ("application/vnd.kubernetes.protobuf", None),
            ("application/xml", None),
            ("application/yaml", Some(Negotiated { encoding: Encoding::Yaml, shape: Shape::Object })),
            ("*/*", Some(json)),
            ("application/json;as=Other;g=x;v=v1, application/json", Some(json)),
            ("application/yaml;q=0.5, application/json", Some(json)),
            ("application/json;q=0, application/yaml", Some(Negotiated { encoding: Encoding::Yaml, shape: Shape::Object })),
        ];
        for (accept, want) in cases {
            assert_eq!(neg(accept), want, "{accept}");
        }
        assert_eq!(negotiate_object(None), Some(json));
    }

    #[test]
    fn parses_parameters_and_q() {
        let r = &parse_media_ranges("Application/JSON; g=apidiscovery.k8s.io; v=v2; as=APIGroupDiscoveryList; q=0.5")[0];
        assert_eq!(r.essence(), "application/json");
        assert_eq!(r.param("as"), Some("APIGroupDiscoveryList"));
        assert_eq!(r.q, 0.5);
    }
}
