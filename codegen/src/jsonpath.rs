//! The JSONPath subset CRDs use in `additionalPrinterColumns` (kube's client-go jsonpath, as
//! kubectl and kube-apiserver evaluate it): `.field`, `['field']`, `[n]` (negative counts from
//! the end), `[*]` and `.*`, `..field`, and filters `[?(@.a.b == "x")]` with `==`, `!=`, `<`,
//! `<=`, `>`, `>=` or a bare `[?(@.a)]` existence test.
//!
//! Paths are parsed here, when the spec is checked, and compiled into Rust iterator chains in the
//! generated printers, so nothing is parsed at request time.

use proc_macro2::TokenStream;
use quote::quote;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A named member of an object.
    Field(String),
    /// An array element; negative indexes count from the end.
    Index(i64),
    /// Every element of an array or every value of an object.
    Wildcard,
    /// The named member at any depth (`..name`).
    Descendant(String),
    /// Array elements for which the condition holds.
    Filter(Filter),
}

/// `?(@.path op literal)` or `?(@.path)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// Member names below the element.
    pub path: Vec<String>,
    /// The comparison, if any (else: the member exists).
    pub comparison: Option<(Op, Literal)>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A quoted string.
    String(String),
    /// A number.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// Parses a path such as `.status.conditions[?(@.type=="Ready")].status` (optionally wrapped in
/// `{}` as kubectl writes them).
pub fn parse(path: &str) -> Result<Vec<Step>, String> {
    let text = path.trim();
    let text = text.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(text);
    let chars: Vec<char> = text.chars().collect();
    if chars.first() != Some(&'.') && chars.first() != Some(&'[') {
        return Err("must start with '.' or '['".into());
    }
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' if chars.get(i + 1) == Some(&'.') => {
                let (name, next) = identifier(&chars, i + 2)?;
                steps.push(Step::Descendant(name));
                i = next;
            }
            '.' if chars.get(i + 1) == Some(&'*') => {
                steps.push(Step::Wildcard);
                i += 2;
            }
            '.' => {
                if i + 1 == chars.len() && steps.is_empty() {
                    // `.` alone is the whole object.
                    i += 1;
                    continue;
                }
                let (name, next) = identifier(&chars, i + 1)?;
                steps.push(Step::Field(name));
                i = next;
            }
            '[' => {
                let close = matching_bracket(&chars, i)?;
                let inner: String = chars[i + 1..close].iter().collect();
                steps.push(bracket(inner.trim())?);
                i = close + 1;
            }
            c => return Err(format!("unexpected {c:?} at position {i}")),
        }
    }
    Ok(steps)
}

fn identifier(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let mut end = start;
    while end < chars.len() && (chars[end].is_alphanumeric() || matches!(chars[end], '_' | '-' | '/')) {
        end += 1;
    }
    if end == start {
        return Err(format!("expected a field name at position {start}"));
    }
    Ok((chars[start..end].iter().collect(), end))
}

fn matching_bracket(chars: &[char], open: usize) -> Result<usize, String> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (j, &c) in chars.iter().enumerate().skip(open) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Ok(j);
                }
            }
            _ => {}
        }
    }
    Err("unclosed '['".into())
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return Some(inner.to_string());
        }
    }
    None
}

fn bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    let filter = inner.strip_prefix("?(").and_then(|r| r.strip_suffix(')')).ok_or_else(|| format!("unsupported subscript [{inner}]"))?;
    let filter = filter.trim();
    let ops = [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)];
    let (lhs, comparison) = match ops.iter().find_map(|(s, op)| filter.split_once(s).map(|(l, r)| (l, *op, r))) {
        Some((lhs, op, rhs)) => (lhs.trim(), Some((op, literal(rhs.trim())?))),
        None => (filter, None),
    };
    let member = lhs.strip_prefix('@').ok_or_else(|| format!("filter must test '@': [{inner}]"))?;
    let path: Vec<String> = member.split('.').filter(|p| !p.is_empty()).map(str::to_string).collect();
    if path.is_empty() || path.iter().any(|p| !p.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '/'))) {
        return Err(format!("unsupported filter [{inner}]"));
    }
    Ok(Step::Filter(Filter { path, comparison }))
}

fn literal(s: &str) -> Result<Literal, String> {
    if let Some(text) = unquote(s) {
        return Ok(Literal::String(text));
    }
    match s {
        "true" => Ok(Literal::Bool(true)),
        "false" => Ok(Literal::Bool(false)),
        _ => s.parse::<f64>().map(Literal::Number).map_err(|_| format!("unsupported literal {s}")),
    }
}

/// Rust code for an expression that yields the path's first result as `Option<&Value>`, with
/// `object` (a `&serde_json::Value`) in scope. Results come in document order, as client-go
/// returns them; printers use the first.
pub fn first_result(steps: &[Step]) -> TokenStream {
    let mut chain = quote!(::std::iter::once(object));
    for step in steps {
        chain = match step {
            Step::Field(name) => quote!(#chain.filter_map(|v| v.get(#name))),
            Step::Index(n) => quote!(#chain.filter_map(|v| crate::printing::index(v, #n))),
            Step::Wildcard => quote!(#chain.flat_map(crate::printing::children)),
            Step::Descendant(name) => quote!(#chain.flat_map(|v| crate::printing::descendants(v, #name))),
            Step::Filter(filter) => {
                let path = &filter.path;
                let test = match &filter.comparison {
                    None => quote!(member.is_some()),
                    Some((op, lit)) => {
                        let op = match op {
                            Op::Eq => quote!(crate::printing::Op::Eq),
                            Op::Ne => quote!(crate::printing::Op::Ne),
                            Op::Lt => quote!(crate::printing::Op::Lt),
                            Op::Le => quote!(crate::printing::Op::Le),
                            Op::Gt => quote!(crate::printing::Op::Gt),
                            Op::Ge => quote!(crate::printing::Op::Ge),
                        };
                        let lit = match lit {
                            Literal::String(s) => quote!(::serde_json::Value::from(#s)),
                            Literal::Number(n) => quote!(::serde_json::Value::from(#n)),
                            Literal::Bool(b) => quote!(::serde_json::Value::Bool(#b)),
                        };
                        quote!(crate::printing::compare(member, #op, &#lit))
                    }
                };
                quote!(#chain.flat_map(crate::printing::elements).filter(|item| {
                    let member = [#(#path),*].iter().try_fold(*item, |v, k| v.get(*k));
                    #test
                }))
            }
        };
    }
    quote!(#chain.next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_paths_real_crds_use() {
        assert_eq!(parse(".spec.msg").unwrap(), vec![Step::Field("spec".into()), Step::Field("msg".into())]);
        assert_eq!(
            parse(".status.conditions[?(@.type==\"Ready\")].status").unwrap(),
            vec![
                Step::Field("status".into()),
                Step::Field("conditions".into()),
                Step::Filter(Filter { path: vec!["type".into()], comparison: Some((Op::Eq, Literal::String("Ready".into()))) }),
                Step::Field("status".into()),
            ]
        );
        assert_eq!(
            parse(".status.conditions[?(@.type=='Established')].status").unwrap()[2],
            Step::Filter(Filter { path: vec!["type".into()], comparison: Some((Op::Eq, Literal::String("Established".into()))) })
        );
        assert_eq!(parse(".spec.env[*].name").unwrap()[2], Step::Wildcard);
        assert_eq!(parse(".items[-1]").unwrap()[1], Step::Index(-1));
        assert_eq!(parse("{.metadata['name']}").unwrap(), vec![Step::Field("metadata".into()), Step::Field("name".into())]);
        assert_eq!(parse("..name").unwrap(), vec![Step::Descendant("name".into())]);
        assert_eq!(parse(".a[?(@.b.c)]").unwrap()[1], Step::Filter(Filter { path: vec!["b".into(), "c".into()], comparison: None }));
        assert_eq!(
            parse(".a[?(@.n >= 2)]").unwrap()[1],
            Step::Filter(Filter { path: vec!["n".into()], comparison: Some((Op::Ge, Literal::Number(2.0))) })
        );
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        for bad in ["spec.msg", ".spec[", ".spec[?(x)]", ".a[1:2]", ".a b"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
