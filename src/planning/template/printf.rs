//! Python's printf-style formatting, for the `%` operator and the `format` filter: `%s`, `%r`
//! and `%a` as Python's `str()`, `repr()` and `ascii()` give them, padded by characters,
//! `%(key)s` of a mapping, `*` widths, `%d` of a float, and Python's errors for too few or too
//! many arguments. Numbers are formatted by minijinja's printf, which charges fuel for wide
//! fields.

use std::sync::LazyLock;

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression, State, context, filters};

use super::MAX_INPUT_BYTES;
use crate::planning::pyfmt;

/// Refuses an undefined value where text or a number is needed (strict undefined).
pub(super) fn defined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "an undefined value cannot be turned into text",
        ));
    }
    Ok(())
}

/// Python's `int(x)` of a float: truncated; NaN is a ValueError (the default), infinity an
/// OverflowError.
pub(super) fn float_to_int(x: f64) -> Result<Option<Value>, Error> {
    if x.is_nan() {
        return Ok(None);
    }
    if x.is_infinite() || x.abs() >= 1.7e38 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot convert float {} to integer", pyfmt::float(x)),
        ));
    }
    Ok(Some(Value::from(x.trunc() as i128)))
}

/// minijinja's own `%`, kept for numbers: Python's floored remainder, refused on zero.
static REMAINDER: LazyLock<Expression<'static, 'static>> = LazyLock::new(|| {
    static ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);
    ENV.compile_expression("a % b")
        .expect("a constant expression parses")
});

/// `a % b`: Python's printf-style formatting when `a` is a string, the remainder otherwise.
/// Python spreads only a tuple over the format, and a template's values are lists: `b` is one
/// argument (see [`percent_tuple`] for a tuple written in the template), except a list that
/// has as many items, two or more, as the format wants (a pair of `dict.items()`, a tuple in
/// Python).
pub(super) fn percent(state: &mut State, left: Value, right: Value) -> Result<Value, Error> {
    if left.kind() != ValueKind::String {
        return REMAINDER.eval(context! { a => left, b => right });
    }
    // A pair from `dict.items()` or `dictsort` is a tuple in Python: spread it when the format
    // wants as many arguments as it has.
    let spread = right.kind() == ValueKind::Seq
        && right
            .len()
            .is_some_and(|n| n > 1 && Some(n) == count_arguments(&left));
    let args = if spread {
        right.try_iter()?.collect()
    } else {
        vec![right]
    };
    python_format(state, left, args, spread)
}

/// `a % (x, y)`: the tuple written in the template gives the arguments.
pub(super) fn percent_tuple(state: &mut State, left: Value, right: Value) -> Result<Value, Error> {
    if left.kind() != ValueKind::String {
        return REMAINDER.eval(context! { a => left, b => right });
    }
    let args = right.try_iter()?.collect();
    python_format(state, left, args, true)
}

/// The `format` filter: `format_string % args`.
pub(super) fn format(
    state: &mut State,
    format_string: Value,
    args: Rest<Value>,
) -> Result<Value, Error> {
    python_format(state, format_string, args.0, true)
}

/// How many arguments the printf-style `format` takes (`None` when it takes a mapping or is
/// not a string).
fn count_arguments(format: &Value) -> Option<usize> {
    let specs = parse_printf(format.as_str()?).ok()?;
    let mut count = 0;
    for spec in specs {
        if let Piece::Spec(spec) = spec {
            if spec.key.is_some() {
                return None;
            }
            count += 1 + spec.stars();
        }
    }
    Some(count)
}

/// Python's `format % args` (`spread`: `args` is a tuple; else one argument). Text
/// conversions (`%s`, `%r`, `%a`) are done here, as Python's `str()` and `repr()` give them,
/// padded by characters; numbers go to minijinja's printf, which charges fuel for wide fields.
fn python_format(
    state: &mut State,
    format: Value,
    args: Vec<Value>,
    spread: bool,
) -> Result<Value, Error> {
    static BUILTIN: LazyLock<Value> = LazyLock::new(|| Value::from_function(filters::format));
    defined(&format)?;
    for arg in &args {
        defined(arg)?;
    }
    let Some(text) = format.as_str() else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "the format is not a string",
        ));
    };
    let pieces = parse_printf(text)?;
    let mapping = pieces
        .iter()
        .any(|p| matches!(p, Piece::Spec(spec) if spec.key.is_some()));
    let mut numeric_format = String::with_capacity(text.len());
    let mut numeric_args = vec![Value::from(())];
    let mut next = args.iter();
    let mut used = 0;
    let mut take = |next: &mut std::slice::Iter<'_, Value>| {
        used += 1;
        next.next().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "not enough arguments for format string",
            )
        })
    };
    for piece in pieces {
        let spec = match piece {
            Piece::Text(literal) => {
                numeric_format.push_str(&literal);
                continue;
            }
            Piece::Spec(spec) => spec,
        };
        let width = if spec.width == Some(Star) {
            Some(take(&mut next)?)
        } else {
            None
        };
        let precision = if spec.precision == Some(Star) {
            Some(take(&mut next)?)
        } else {
            None
        };
        let value = match &spec.key {
            Some(key) => {
                let map = args
                    .first()
                    .filter(|m| m.kind() == ValueKind::Map)
                    .ok_or_else(|| {
                        Error::new(ErrorKind::InvalidOperation, "format requires a mapping")
                    })?;
                let value = map.get_item(&Value::from(key.as_str()))?;
                if value.is_undefined() {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("the format's key {key:?} is not in the mapping"),
                    ));
                }
                value
            }
            None => take(&mut next)?,
        };
        match spec.conversion {
            's' | 'r' | 'a' => {
                let width = match width {
                    Some(w) => Some(i64::try_from(w)?),
                    None => spec.width_digits.map(|w| w as i64),
                };
                let precision = match precision {
                    Some(p) => Some(usize::try_from(p)?),
                    None => spec.precision_digits,
                };
                let mut converted = if spec.conversion == 's' {
                    pyfmt::str(&value)
                } else {
                    let mut out = String::new();
                    pyfmt::repr(&value, &mut out);
                    if spec.conversion == 'a' {
                        out = ascii(&out);
                    }
                    out
                };
                if let Some(precision) = precision {
                    converted = converted.chars().take(precision).collect();
                }
                let left = spec.flags.contains('-') || width.is_some_and(|w| w < 0);
                let width = width.map_or(0, |w| w.unsigned_abs() as usize);
                if width > MAX_INPUT_BYTES {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("a field of {width} is wider than an input may be"),
                    ));
                }
                let pad = " ".repeat(width.saturating_sub(converted.chars().count()));
                let field = if left {
                    converted + &pad
                } else {
                    pad + &converted
                };
                numeric_format.push_str(&field.replace('%', "%%"));
            }
            conversion => {
                let width = width.map(i64::try_from).transpose()?;
                let precision = precision.map(usize::try_from).transpose()?;
                numeric_format.push_str(&spec.resolved(width, precision));
                // `%d` of a float is the float's integer part in Python.
                let value = match (conversion, f64::try_from(value.clone())) {
                    ('d' | 'i' | 'u', Ok(x))
                        if !value.is_integer() && value.kind() == ValueKind::Number =>
                    {
                        float_to_int(x)?.ok_or_else(|| {
                            Error::new(
                                ErrorKind::InvalidOperation,
                                "cannot convert float NaN to integer",
                            )
                        })?
                    }
                    _ => value,
                };
                numeric_args.push(value);
            }
        }
    }
    if !mapping && used < args.len() {
        // Python keeps quiet only about one argument that is a container and is not used.
        let quiet =
            !spread && used == 0 && matches!(args[0].kind(), ValueKind::Map | ValueKind::Seq);
        if !quiet {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "not all arguments converted during string formatting",
            ));
        }
    }
    numeric_args[0] = Value::from(numeric_format);
    BUILTIN.call(state, &numeric_args)
}

/// A `*` width or precision: taken from the arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Star;

/// A part of a printf-style format.
#[derive(Debug, PartialEq, Eq)]
enum Piece {
    /// Literal text, `%%` kept as it is.
    Text(String),
    Spec(Spec),
}

/// One conversion: `%(key)-08.3f` and the like.
#[derive(Debug, PartialEq, Eq)]
struct Spec {
    key: Option<String>,
    flags: String,
    width: Option<Star>,
    width_digits: Option<usize>,
    precision: Option<Star>,
    precision_digits: Option<usize>,
    conversion: char,
}

impl Spec {
    /// How many `*` it has.
    fn stars(&self) -> usize {
        usize::from(self.width.is_some()) + usize::from(self.precision.is_some())
    }

    /// The spec as minijinja's printf reads it: positional, no length modifier, the `*`
    /// replaced by the `width` and `precision` taken from the arguments.
    fn resolved(&self, width: Option<i64>, precision: Option<usize>) -> String {
        let mut flags = self.flags.clone();
        if width.is_some_and(|w| w < 0) && !flags.contains('-') {
            flags.push('-');
        }
        let mut out = format!("%{flags}");
        match (width, self.width_digits) {
            (Some(w), _) => out.push_str(&w.unsigned_abs().to_string()),
            (None, Some(w)) => out.push_str(&w.to_string()),
            (None, None) => {}
        }
        match (precision, self.precision_digits) {
            (Some(p), _) | (None, Some(p)) => out.push_str(&format!(".{p}")),
            (None, None) => {}
        }
        out.push(self.conversion);
        out
    }
}

/// Splits a printf-style format into text and conversions, as Python reads it.
fn parse_printf(format: &str) -> Result<Vec<Piece>, Error> {
    let incomplete = || Error::new(ErrorKind::InvalidOperation, "incomplete format");
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            text.push_str("%%");
            continue;
        }
        let mut key = None;
        if chars.peek() == Some(&'(') {
            chars.next();
            let mut name = String::new();
            let mut depth = 1;
            for c in chars.by_ref() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                name.push(c);
            }
            if depth != 0 {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "incomplete format key",
                ));
            }
            key = Some(name);
        }
        let mut flags = String::new();
        while let Some(&c) = chars.peek().filter(|c| "-+ #0".contains(**c)) {
            flags.push(c);
            chars.next();
        }
        let number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
            if chars.peek() == Some(&'*') {
                chars.next();
                return Ok((Some(Star), None));
            }
            let mut digits = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
                digits.push(c);
                chars.next();
            }
            if digits.is_empty() {
                return Ok((None, None));
            }
            digits
                .parse::<usize>()
                .map(|n| (None, Some(n)))
                .map_err(|_| Error::new(ErrorKind::InvalidOperation, "width too big"))
        };
        let (width, width_digits) = number(&mut chars)?;
        let (mut precision, mut precision_digits) = (None, None);
        if chars.peek() == Some(&'.') {
            chars.next();
            (precision, precision_digits) = number(&mut chars)?;
            if precision.is_none() && precision_digits.is_none() {
                precision_digits = Some(0);
            }
        }
        while chars.peek().is_some_and(|c| "hlL".contains(*c)) {
            chars.next();
        }
        let conversion = chars.next().ok_or_else(incomplete)?;
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(Piece::Spec(Spec {
            key,
            flags,
            width,
            width_digits,
            precision,
            precision_digits,
            conversion,
        }));
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Python's `ascii()` of a `repr()`: characters past ASCII escaped.
fn ascii(repr: &str) -> String {
    let mut out = String::with_capacity(repr.len());
    for c in repr.chars() {
        match c as u32 {
            0..=0x7f => out.push(c),
            n @ 0x80..=0xff => out.push_str(&format!("\\x{n:02x}")),
            n @ 0x100..=0xffff => out.push_str(&format!("\\u{n:04x}")),
            n => out.push_str(&format!("\\U{n:08x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_formats_are_read_as_python_reads_them() {
        assert_eq!(count_arguments(&Value::from("%s-%.3f %%")), Some(2));
        assert_eq!(count_arguments(&Value::from("%*d|%.*f")), Some(4));
        assert_eq!(count_arguments(&Value::from("%(a)s")), None);
        let pieces = parse_printf("a%(k)-08.3lf%%").unwrap();
        assert_eq!(
            pieces,
            [
                Piece::Text("a".into()),
                Piece::Spec(Spec {
                    key: Some("k".into()),
                    flags: "-0".into(),
                    width: None,
                    width_digits: Some(8),
                    precision: None,
                    precision_digits: Some(3),
                    conversion: 'f',
                }),
                Piece::Text("%%".into()),
            ]
        );
        assert!(parse_printf("%").is_err());
        assert!(parse_printf("%(k").is_err());
    }
}
