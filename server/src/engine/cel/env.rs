//! The CEL environment kube-apiserver gives CRD validation rules: the standard library, the
//! cel-go `strings`/`lists`/`math`/`encoders` extensions, `cel.bind`, and Kubernetes' own
//! libraries (lists, regex, URLs, sets, quantities, IPs and CIDRs) as custom overloads.

use super::library;
use cel::common::ast::{CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{extensions, Context, Env};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The shared environment, built once.
pub fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    ENV.get_or_init(|| Arc::new(build().expect("the CEL environment declares no overload twice")))
}

fn build() -> Result<Env, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(extensions::strings)?;
    env.add_extension(extensions::lists)?;
    env.add_extension(extensions::math)?;
    env.add_extension(extensions::encoders)?;
    env.add_macro(Macro::receiver("bind", 3, bind_macro))?;
    // `matches` compiles its pattern on every call in cel-rust; route it to the library's
    // cached patterns instead.
    env.add_macro(Macro::receiver("matches", 1, |helper, target, args| Ok(Some(cached_matches(helper, target.take(), args)))))?;
    env.add_macro(Macro::global("matches", 2, |helper, _, args| {
        let text = args.remove(0);
        Ok(Some(cached_matches(helper, Some(text), args)))
    }))?;
    library::register(&mut env)?;
    Ok(env)
}

/// Whether the environment declares a function or member function called `name` (operators and
/// macros aside). Answered once per name.
pub fn declares(name: &str) -> bool {
    static SEEN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    *seen.entry(name.to_string()).or_insert_with(|| {
        // A context refuses a function whose name the environment declares.
        let mut probe = Context::with_env(Arc::clone(env()));
        probe.add_function(name, || false).is_err()
    })
}

/// `cel.bind(name, init, body)`: `body` with `name` bound to `init`, evaluated once. Expanded, as
/// cel-go does, into a comprehension over an empty list whose accumulator is the binding.
fn bind_macro(
    helper: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    if !matches!(target.as_ref().map(|t| &t.expr), Some(Expr::Ident(name)) if name == "cel") {
        return Ok(None);
    }
    let name = match &args[0].expr {
        Expr::Ident(name) => name.clone(),
        _ => return Err(helper.new_error(args[0].id, "cel.bind() variable names must be simple identifiers")),
    };
    target.take();
    let body = args.pop().expect("three arguments");
    let init = args.pop().expect("three arguments");
    let bind = ComprehensionExpr {
        iter_range: helper.next_expr(Expr::List(ListExpr::new(Vec::new()))),
        iter_var: "#unused".to_owned(),
        iter_var2: None,
        accu_var: name.clone(),
        accu_init: init,
        loop_cond: helper.next_expr(Expr::Literal(LiteralValue::Boolean(false.into()))),
        loop_step: helper.next_expr(Expr::Ident(name)),
        result: body,
    };
    Ok(Some(helper.next_expr(Expr::Comprehension(Box::new(bind)))))
}

/// `text.matches(pattern)` as a call of [`library::MATCHES`].
fn cached_matches(helper: &mut MacroExprHelper<'_>, text: Option<IdedExpr>, args: &mut Vec<IdedExpr>) -> IdedExpr {
    let call = CallExpr { func_name: library::MATCHES.to_string(), target: text.map(Box::new), args: std::mem::take(args) };
    helper.next_expr(Expr::Call(call))
}
