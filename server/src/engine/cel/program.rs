//! Compiled rules: each expression text is compiled once per process and shared, with what the
//! evaluator needs to know about it ahead of time (whether it reads `oldSelf`, how deeply it
//! loops, how large it is).

use super::env;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::Program;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

/// One compiled expression (a rule or a messageExpression).
#[derive(Debug)]
pub struct Compiled {
    /// The program, or why it does not compile (cel-go's wording where it has one).
    pub program: Result<Program, String>,
    /// Whether the expression reads `oldSelf` (a transition rule).
    pub uses_old_self: bool,
    /// AST nodes: the cost of one evaluation over small data.
    pub nodes: u64,
    /// How deeply comprehensions (`all`, `exists`, `map`, …) nest.
    pub loop_depth: u32,
    /// Whether its cost grows with every byte of string data: it makes lists out of strings
    /// (`split`, `findAll`, …), which loops may walk character by character, or builds strings
    /// inside a loop (`+`, `replace`, `join`, …), which may copy the data once per iteration.
    pub per_byte: bool,
}

/// Functions that make lists out of strings: a loop over their result may run once per
/// character of the input.
const STRING_TO_LIST: &[&str] = &["split", "findAll", "lists.range", "charAt"];

/// Functions that build strings (or lists, or bytes) as large as their input: inside a loop,
/// each iteration may copy the data.
const BUILDERS: &[&str] = &[
    "_+_",
    "replace",
    "join",
    "format",
    "upperAscii",
    "lowerAscii",
    "trim",
    "substring",
    "reverse",
    "string",
    "bytes",
    "strings.quote",
    "base64.encode",
    "base64.decode",
    "flatten",
    "sort",
    "distinct",
    "slice",
];

/// The compiled form of `source`, compiled on first use.
pub fn compiled(source: &str) -> Arc<Compiled> {
    static CACHE: OnceLock<RwLock<HashMap<String, Arc<Compiled>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.read().unwrap_or_else(|e| e.into_inner()).get(source) {
        return Arc::clone(found);
    }
    let compiled = Arc::new(compile(source));
    cache.write().unwrap_or_else(|e| e.into_inner()).entry(source.to_string()).or_insert(compiled).clone()
}

fn compile(source: &str) -> Compiled {
    let program = match env::env().compile(source) {
        Ok(p) => p,
        Err(e) => {
            let error = format!("compilation failed: {}", e.to_string().trim_end());
            return Compiled { program: Err(error), uses_old_self: false, nodes: 0, loop_depth: 0, per_byte: false };
        }
    };
    let uses_old_self = program.references().has_variable("oldSelf");
    let mut shape = Shape::default();
    shape.visit(program.expression(), 0);
    if let Some(name) = shape.unknown.first() {
        let error = format!("compilation failed: ERROR: <input>: undeclared reference to '{name}' (in container '')");
        return Compiled { program: Err(error), uses_old_self, nodes: shape.nodes, loop_depth: shape.depth, per_byte: shape.per_byte };
    }
    Compiled { program: Ok(program), uses_old_self, nodes: shape.nodes, loop_depth: shape.depth, per_byte: shape.per_byte }
}

/// Size and loop nesting of an expression, and the functions it calls that the environment
/// does not declare.
#[derive(Default)]
struct Shape {
    nodes: u64,
    depth: u32,
    per_byte: bool,
    unknown: Vec<String>,
}

impl Shape {
    fn visit(&mut self, expr: &IdedExpr, depth: u32) {
        self.nodes += 1;
        self.depth = self.depth.max(depth);
        match &expr.expr {
            Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
            Expr::Call(call) => {
                let name = call.func_name.as_str();
                // `@result + [x]` and `@result + 1` are how macros accumulate, not copies.
                let accumulates = name == "_+_" && matches!(call.args.first().map(|a| &a.expr), Some(Expr::Ident(v)) if v.starts_with('@'));
                self.per_byte |= STRING_TO_LIST.contains(&name) || (depth > 0 && BUILDERS.contains(&name) && !accumulates);
                // `sets.contains(..)` parses as `contains` called on `sets`.
                let namespaced =
                    || call.target.as_deref().and_then(qualified_name).is_some_and(|ns| env::declares(&format!("{ns}.{name}")));
                if !is_operator(name) && !env::declares(name) && !namespaced() {
                    self.unknown.push(name.to_string());
                }
                if let Some(target) = &call.target {
                    self.visit(target, depth);
                }
                for arg in &call.args {
                    self.visit(arg, depth);
                }
            }
            Expr::Comprehension(c) => {
                // `cel.bind` is a comprehension over an empty list: not a loop.
                let is_loop = !matches!(&c.iter_range.expr, Expr::List(l) if l.elements.is_empty());
                let inner = depth + u32::from(is_loop);
                self.visit(&c.iter_range, depth);
                self.visit(&c.accu_init, depth);
                self.visit(&c.loop_cond, inner);
                self.visit(&c.loop_step, inner);
                self.visit(&c.result, depth);
            }
            Expr::List(list) => {
                for e in &list.elements {
                    self.visit(e, depth);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    self.visit_entry(&entry.expr, depth);
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    self.visit_entry(&entry.expr, depth);
                }
            }
            Expr::Select(select) => self.visit(&select.operand, depth),
        }
    }

    fn visit_entry(&mut self, entry: &EntryExpr, depth: u32) {
        match entry {
            EntryExpr::StructField(f) => self.visit(&f.value, depth),
            EntryExpr::MapEntry(e) => {
                self.visit(&e.key, depth);
                self.visit(&e.value, depth);
            }
        }
    }
}

/// Splits a `fieldPath` (`.spec.foo['bar.baz']`) into names, each either dotted or a quoted
/// key in brackets, as kube's `ValidFieldPath` scans it.
pub fn split_field_path(path: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[', ']']).unwrap_or(after.len());
            if end == 0 {
                return Err("unexpected end of JSON path".into());
            }
            names.push(after[..end].to_string());
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(quoted) = after.strip_prefix('\'') else {
                return Err(format!("expected single quoted string but got {}", after.split(['.', '[', ']']).next().unwrap_or_default()));
            };
            let mut end = None;
            let bytes = quoted.as_bytes();
            for i in 0..bytes.len() {
                if bytes[i] == b'\'' && (i == 0 || bytes[i - 1] != b'\\') {
                    end = Some(i);
                    break;
                }
            }
            let end = end.ok_or("unexpected end of JSON path")?;
            names.push(unescape(&quoted[..end])?);
            rest = quoted[end + 1..].strip_prefix(']').ok_or("expected ] after the quoted key")?;
        } else {
            return Err(format!("expected [ or . but got: {}", rest.chars().next().unwrap_or_default()));
        }
    }
    Ok(names)
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('a') => '\u{7}',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('v') => '\u{b}',
            Some('\'') => '\'',
            Some('\\') => '\\',
            other => return Err(format!("invalid string literal: invalid escape char \\{}", other.map(String::from).unwrap_or_default())),
        });
    }
    Ok(out)
}

/// Operators (`_+_`, `!_`, `@in`, …) are the interpreter's own, not functions of the environment.
fn is_operator(name: &str) -> bool {
    name.starts_with(['_', '@']) || name.ends_with('_')
}

/// `a.b.c` for an identifier or a chain of field selections on one.
fn qualified_name(expr: &IdedExpr) -> Option<String> {
    match &expr.expr {
        Expr::Ident(name) => Some(name.clone()),
        Expr::Select(select) if !select.test => Some(format!("{}.{}", qualified_name(&select.operand)?, select.field)),
        _ => None,
    }
}
