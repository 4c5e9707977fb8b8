//! Jinja2's meaning of the `~` and `%` operators, by a rewrite of the template source.
//!
//! minijinja evaluates both operators in its VM with Rust's spelling of values (`~` of
//! `1e-05` gives `0.00001`) and without Python's `%` formatting (`'%.3f' % x` is refused), and
//! it offers no hook to change them. So before a template is added, each `a ~ b` becomes
//! `(a )|__concat( b)` and each `a % b` becomes `(a )|__percent( b)`: filters, which bind tighter
//! than any operator, so the rewritten text means what the original did. Only parentheses and
//! the operator character change, so line numbers stay; [`Rewritten::original_offset`] maps an
//! error's position back to the source the user wrote.
//!
//! The AST comes from minijinja's `unstable_machinery`; the crate is pinned by Cargo.lock and
//! the unit tests below check the shapes this module relies on.

use minijinja::machinery::ast::{BinOpKind, CallArg, Expr, Stmt};
use minijinja::machinery::parse;
use minijinja::syntax::SyntaxConfig;

/// The filter that `~` becomes.
pub const CONCAT_FILTER: &str = "__concat";
/// The filter that `%` becomes.
pub const PERCENT_FILTER: &str = "__percent";
/// The filter that `%` followed by a tuple written in the template becomes: Python spreads a
/// tuple over the format, and only the source tells a tuple from a list.
pub const PERCENT_TUPLE_FILTER: &str = "__percent_tuple";

/// A template source with its operators rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    pub source: String,
    /// (offset in the original, bytes inserted there, bytes of the original replaced), in order.
    edits: Vec<(usize, usize, usize)>,
}

impl Rewritten {
    /// The offset in the original source of `offset` in the rewritten one.
    pub fn original_offset(&self, offset: usize) -> usize {
        let mut shift: isize = 0;
        for &(at, inserted, replaced) in &self.edits {
            let rewritten_at = (at as isize + shift) as usize;
            if offset < rewritten_at {
                break;
            }
            if offset < rewritten_at + inserted {
                return at;
            }
            shift += inserted as isize - replaced as isize;
        }
        (offset as isize - shift).max(0) as usize
    }
}

/// One change: `text` in place of `replaced` bytes at `at`. `order` sorts changes at one
/// offset: closing parentheses (an operand that ends there) before the operator, before
/// opening ones (an operand that starts there).
struct Edit {
    at: usize,
    order: u8,
    text: &'static str,
    replaced: usize,
}

/// Rewrites the `~` and `%` operators of `source`. A source that does not parse is returned
/// unchanged: adding it reports the syntax error against the user's own text.
pub fn rewrite(source: &str) -> Rewritten {
    let unchanged = || Rewritten {
        source: source.to_string(),
        edits: Vec::new(),
    };
    if !source.contains('~') && !source.contains('%') {
        return unchanged();
    }
    let Ok(ast) = parse(source, "template", SyntaxConfig::default()) else {
        return unchanged();
    };
    let mut edits = Vec::new();
    walk_stmt(&ast, source, &mut edits);
    if edits.is_empty() {
        return unchanged();
    }
    edits.sort_by_key(|e| (e.at, e.order));
    let mut out = String::with_capacity(source.len() + edits.len() * 8);
    let mut applied = Vec::with_capacity(edits.len());
    let mut from = 0;
    for edit in &edits {
        // Edits never overlap; one that would is dropped rather than trusted.
        let Some(between) = source.get(from..edit.at) else {
            return unchanged();
        };
        out.push_str(between);
        out.push_str(edit.text);
        from = edit.at + edit.replaced;
        applied.push((edit.at, edit.text.len(), edit.replaced));
    }
    out.push_str(&source[from..]);
    Rewritten {
        source: out,
        edits: applied,
    }
}

fn walk_stmts(stmts: &[Stmt<'_>], source: &str, edits: &mut Vec<Edit>) {
    for stmt in stmts {
        walk_stmt(stmt, source, edits);
    }
}

fn walk_stmt(stmt: &Stmt<'_>, source: &str, edits: &mut Vec<Edit>) {
    let expr = |e: &Expr<'_>, edits: &mut Vec<Edit>| walk_expr(e, source, edits);
    match stmt {
        Stmt::Template(s) => walk_stmts(&s.children, source, edits),
        Stmt::EmitExpr(s) => expr(&s.expr, edits),
        Stmt::ForLoop(s) => {
            expr(&s.target, edits);
            expr(&s.iter, edits);
            if let Some(filter) = &s.filter_expr {
                expr(filter, edits);
            }
            walk_stmts(&s.body, source, edits);
            walk_stmts(&s.else_body, source, edits);
        }
        Stmt::IfCond(s) => {
            expr(&s.expr, edits);
            walk_stmts(&s.true_body, source, edits);
            walk_stmts(&s.false_body, source, edits);
        }
        Stmt::WithBlock(s) => {
            for (target, value) in &s.assignments {
                expr(target, edits);
                expr(value, edits);
            }
            walk_stmts(&s.body, source, edits);
        }
        Stmt::Set(s) => {
            expr(&s.target, edits);
            expr(&s.expr, edits);
        }
        Stmt::SetBlock(s) => {
            expr(&s.target, edits);
            if let Some(filter) = &s.filter {
                expr(filter, edits);
            }
            walk_stmts(&s.body, source, edits);
        }
        Stmt::AutoEscape(s) => {
            expr(&s.enabled, edits);
            walk_stmts(&s.body, source, edits);
        }
        Stmt::FilterBlock(s) => {
            expr(&s.filter, edits);
            walk_stmts(&s.body, source, edits);
        }
        Stmt::Block(s) => walk_stmts(&s.body, source, edits),
        Stmt::Import(s) => {
            expr(&s.expr, edits);
            expr(&s.name, edits);
        }
        Stmt::FromImport(s) => {
            expr(&s.expr, edits);
            for (name, alias) in &s.names {
                expr(name, edits);
                if let Some(alias) = alias {
                    expr(alias, edits);
                }
            }
        }
        Stmt::Extends(s) => expr(&s.name, edits),
        Stmt::Include(s) => expr(&s.name, edits),
        Stmt::Macro(s) => {
            for e in s.args.iter().chain(&s.defaults) {
                expr(e, edits);
            }
            walk_stmts(&s.body, source, edits);
        }
        Stmt::CallBlock(s) => {
            expr(&s.call.expr, edits);
            walk_args(&s.call.args, source, edits);
            for e in s.macro_decl.args.iter().chain(&s.macro_decl.defaults) {
                expr(e, edits);
            }
            walk_stmts(&s.macro_decl.body, source, edits);
        }
        Stmt::Do(s) => {
            expr(&s.call.expr, edits);
            walk_args(&s.call.args, source, edits);
        }
        // Raw text and loop controls hold no expression.
        _ => {}
    }
}

fn walk_args(args: &[CallArg<'_>], source: &str, edits: &mut Vec<Edit>) {
    for arg in args {
        match arg {
            CallArg::Pos(e)
            | CallArg::Kwarg(_, e)
            | CallArg::PosSplat(e)
            | CallArg::KwargSplat(e) => walk_expr(e, source, edits),
        }
    }
}

fn walk_expr(expr: &Expr<'_>, source: &str, edits: &mut Vec<Edit>) {
    match expr {
        Expr::Var(_) | Expr::Const(_) => {}
        Expr::Slice(s) => {
            walk_expr(&s.expr, source, edits);
            for part in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                walk_expr(part, source, edits);
            }
        }
        Expr::UnaryOp(s) => walk_expr(&s.expr, source, edits),
        Expr::BinOp(s) => {
            walk_expr(&s.left, source, edits);
            walk_expr(&s.right, source, edits);
            let filter = match s.op {
                BinOpKind::Concat => Some(('~', ")|__concat(")),
                BinOpKind::Rem if matches!(s.right, Expr::Tuple(_)) => {
                    Some(('%', ")|__percent_tuple("))
                }
                BinOpKind::Rem => Some(('%', ")|__percent(")),
                _ => None,
            };
            if let Some((operator, text)) = filter {
                let whole = s.span();
                let whole = (
                    (whole.start_offset as usize).min(start(&s.left)),
                    (whole.end_offset as usize).max(end(&s.right)),
                );
                let gap = (end(&s.left), start(&s.right));
                wrap(whole, gap, operator, text, source, edits);
            }
        }
        Expr::Compare(s) => {
            walk_expr(&s.expr, source, edits);
            for op in &s.ops {
                walk_expr(&op.expr, source, edits);
            }
        }
        Expr::IfExpr(s) => {
            walk_expr(&s.test_expr, source, edits);
            walk_expr(&s.true_expr, source, edits);
            if let Some(e) = &s.false_expr {
                walk_expr(e, source, edits);
            }
        }
        Expr::Filter(s) => {
            if let Some(e) = &s.expr {
                walk_expr(e, source, edits);
            }
            walk_args(&s.args, source, edits);
        }
        Expr::Test(s) => {
            walk_expr(&s.expr, source, edits);
            walk_args(&s.args, source, edits);
        }
        Expr::GetAttr(s) => walk_expr(&s.expr, source, edits),
        Expr::GetItem(s) => {
            walk_expr(&s.expr, source, edits);
            walk_expr(&s.subscript_expr, source, edits);
        }
        Expr::Call(s) => {
            walk_expr(&s.expr, source, edits);
            walk_args(&s.args, source, edits);
        }
        Expr::List(s) => s.items.iter().for_each(|e| walk_expr(e, source, edits)),
        Expr::Tuple(s) => s.items.iter().for_each(|e| walk_expr(e, source, edits)),
        Expr::Map(s) => s
            .keys
            .iter()
            .chain(&s.values)
            .for_each(|e| walk_expr(e, source, edits)),
    }
}

/// Where the text of `expr` starts. A postfix node (a filter, an attribute, a call) may
/// start its span at its own token, after the expression it applies to.
fn start(expr: &Expr<'_>) -> usize {
    let first = match expr {
        Expr::Slice(s) => Some(start(&s.expr)),
        Expr::BinOp(s) => Some(start(&s.left)),
        Expr::Compare(s) => Some(start(&s.expr)),
        Expr::IfExpr(s) => Some(start(&s.true_expr)),
        Expr::Filter(s) => s.expr.as_ref().map(start),
        Expr::Test(s) => Some(start(&s.expr)),
        Expr::GetAttr(s) => Some(start(&s.expr)),
        Expr::GetItem(s) => Some(start(&s.expr)),
        Expr::Call(s) => Some(start(&s.expr)),
        _ => None,
    };
    let own = expr.span().start_offset as usize;
    first.map_or(own, |first| first.min(own))
}

/// Where the text of `expr` ends.
fn end(expr: &Expr<'_>) -> usize {
    let last = match expr {
        Expr::UnaryOp(s) => Some(end(&s.expr)),
        Expr::BinOp(s) => Some(end(&s.right)),
        Expr::Compare(s) => s.ops.last().map(|op| end(&op.expr)),
        Expr::IfExpr(s) => Some(end(s.false_expr.as_ref().unwrap_or(&s.test_expr))),
        _ => None,
    };
    let own = expr.span().end_offset as usize;
    last.map_or(own, |last| last.max(own))
}

/// Turns the operation spanning `whole` into `(left )|filter( right)`: an opening parenthesis
/// where the operation starts, the operator in the `gap` between the operands replaced, a
/// closing one where it ends. Between the operands only blanks and parentheses may stand
/// beside the operator; anything else means the spans are not what this module expects, and
/// the operation is left as it is.
fn wrap(
    (start, end): (usize, usize),
    (gap_start, gap_end): (usize, usize),
    operator: char,
    text: &'static str,
    source: &str,
    edits: &mut Vec<Edit>,
) {
    let Some(gap) = source.get(gap_start..gap_end) else {
        return;
    };
    let mut operators = gap.match_indices(operator);
    let (Some((at, _)), None) = (operators.next(), operators.next()) else {
        return;
    };
    if !gap
        .chars()
        .all(|c| c == operator || c == '(' || c == ')' || c.is_whitespace())
        || start > gap_start
        || end < gap_end
    {
        return;
    }
    edits.push(Edit {
        at: start,
        order: 2,
        text: "(",
        replaced: 0,
    });
    edits.push(Edit {
        at: gap_start + at,
        order: 1,
        text,
        replaced: 1,
    });
    edits.push(Edit {
        at: end,
        order: 0,
        text: ")",
        replaced: 0,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(template: &str) -> String {
        rewrite(template).source
    }

    #[test]
    fn both_operators_become_filters_that_keep_precedence_and_nesting() {
        assert_eq!(source("{{ a ~ b }}"), "{{ (a )|__concat( b) }}");
        assert_eq!(source("{{ '%s' % x }}"), "{{ ('%s' )|__percent( x) }}");
        assert_eq!(
            source("{{ a ~ b ~ c }}"),
            "{{ ((a )|__concat( b) )|__concat( c) }}"
        );
        // `%` binds tighter than `~`, `+` looser: the operands are the parser's own.
        assert_eq!(
            source("{{ x + a ~ b % 2 }}"),
            "{{ x + (a )|__concat( (b )|__percent( 2)) }}"
        );
        assert_eq!(
            source("{{ (a + 1) % (b) }}"),
            "{{ ((a + 1) )|__percent( (b)) }}"
        );
        assert_eq!(source("{{a~b}}"), "{{(a)|__concat(b)}}");
        assert_eq!(
            source("{{ '%s-%.3f' % (a, b) }}"),
            "{{ ('%s-%.3f' )|__percent_tuple( (a, b)) }}"
        );
        assert_eq!(
            source("{{ -a ~ b|upper }}"),
            "{{ (-a )|__concat( b|upper) }}"
        );
    }

    #[test]
    fn operators_are_found_in_every_kind_of_statement_and_expression() {
        let template = "{% set s = a ~ b %}{% for x in l if x % 2 %}{{ f(x ~ 1, k=x % 3) }}\
                        {% endfor %}{% if a % 2 %}{{ [a ~ b] }}{% endif %}\
                        {% macro m(v=1 % 2) %}{{ v }}{% endmacro %}{{ d[a ~ b] }}";
        let rewritten = source(template);
        assert!(
            !rewritten.contains(" ~ ") && !rewritten.contains(" % "),
            "{rewritten}"
        );
        assert_eq!(rewritten.matches(CONCAT_FILTER).count(), 4);
        assert_eq!(rewritten.matches(PERCENT_FILTER).count(), 4);
    }

    #[test]
    fn text_that_only_looks_like_an_operator_is_left_alone() {
        for template in [
            "100% ~ done {{ a }}",
            "{{ '50% ~ half' }}",
            "{% raw %}{{ a ~ b }}{% endraw %}",
            "{# a ~ b #}",
            "{{ a ~ }}",
        ] {
            assert_eq!(source(template), template);
        }
    }

    #[test]
    fn offsets_of_the_rewritten_source_map_back_to_the_original() {
        let template = "{{ x ~ y }} {{ z }}";
        let rewritten = rewrite(template);
        for name in ['x', 'y', 'z'] {
            let at = rewritten.source.find(name).unwrap();
            assert_eq!(rewritten.original_offset(at), template.find(name).unwrap());
        }
        assert_eq!(rewritten.original_offset(0), 0);
    }
}
