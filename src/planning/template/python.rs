//! Filters and tests that behave as Jinja2's do, where minijinja's builtins differ: values
//! turned into text as Python's `str()` does (`1e-05`, `True`, `None`), `%` formatting, the
//! operators of [`super::operators`], Jinja2's lenient `int` and `float`, and Python's JSON.
//! tests/jinja_differential.rs compares them with Jinja2 itself.

use std::borrow::Cow;
use std::sync::LazyLock;

use minijinja::value::{Kwargs, Rest, StringInput, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Expression, State, context, filters};

use super::MAX_INPUT_BYTES;
use super::operators::{CONCAT_FILTER, PERCENT_FILTER, PERCENT_TUPLE_FILTER};
use crate::planning::pyfmt;

/// Adds the filters and tests to `env`.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("string", |value: Value| pyfmt::str(&value));
    env.add_filter("center", center);
    env.add_filter(CONCAT_FILTER, concat);
    env.add_filter(PERCENT_FILTER, percent);
    env.add_filter(PERCENT_TUPLE_FILTER, percent_tuple);
    env.add_filter("format", format);
    env.add_filter("upper", |state: &State, v: Value| {
        Ok::<_, Error>(filters::upper(StringInput::new(state, &text(v))?))
    });
    env.add_filter("lower", |state: &State, v: Value| {
        Ok::<_, Error>(filters::lower(StringInput::new(state, &text(v))?))
    });
    env.add_filter("title", |state: &State, v: Value| {
        let v = text(v);
        Ok::<_, Error>(filters::title(Cow::Borrowed(
            StringInput::new(state, &v)?.as_str(),
        )))
    });
    env.add_filter("capitalize", |state: &State, v: Value| {
        Ok::<_, Error>(filters::capitalize(StringInput::new(state, &text(v))?))
    });
    env.add_filter(
        "trim",
        |state: &State, v: Value, chars: Option<Cow<'_, str>>| {
            Ok::<_, Error>(filters::trim(StringInput::new(state, &text(v))?, chars))
        },
    );
    env.add_filter(
        "replace",
        |state: &mut State, v: Value, from: Value, to: Value| {
            let (v, from, to) = (text(v), text(from), text(to));
            let (v, from, to) = (
                StringInput::new(state, &v)?,
                StringInput::new(state, &from)?,
                StringInput::new(state, &to)?,
            );
            filters::replace(state, v, from, to)
        },
    );
    env.add_filter("join", join);
    env.add_filter("indent", indent);
    env.add_filter("wordcount", wordcount);
    env.add_filter("tojson", tojson);
    env.add_filter("pprint", |value: Value| {
        let mut out = String::new();
        sorted_repr(&value, &mut out);
        out
    });
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("round", round);
    env.add_test("lower", |value: Value| {
        cased(&pyfmt::str(&value), char::is_lowercase, char::is_uppercase)
    });
    env.add_test("upper", |value: Value| {
        cased(&pyfmt::str(&value), char::is_uppercase, char::is_lowercase)
    });
    env.add_test("sequence", |value: Value| {
        matches!(
            value.kind(),
            ValueKind::String | ValueKind::Seq | ValueKind::Map
        )
    });
    env.add_test("iterable", |value: Value| {
        matches!(
            value.kind(),
            ValueKind::String | ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
        )
    });
}

/// `value` as Python's `str()` would give it to a string filter; undefined stays undefined,
/// so the strict check of the filter still fails on it.
fn text(value: Value) -> Value {
    if matches!(value.kind(), ValueKind::String | ValueKind::Undefined) {
        value
    } else {
        Value::from(pyfmt::str(&value))
    }
}

fn defined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "an undefined value cannot be turned into text",
        ));
    }
    Ok(())
}

/// `a ~ b`: `str(a) + str(b)`.
fn concat(left: Value, right: Value) -> Result<String, Error> {
    defined(&left)?;
    defined(&right)?;
    let mut out = pyfmt::str(&left);
    out.push_str(&pyfmt::str(&right));
    Ok(out)
}

/// minijinja's own `%`, kept for numbers: Python's floored remainder, refused on zero.
static REMAINDER: LazyLock<Expression<'static, 'static>> = LazyLock::new(|| {
    static ENV: LazyLock<Environment<'static>> = LazyLock::new(Environment::new);
    ENV.compile_expression("a % b")
        .expect("a constant expression parses")
});

/// `a % b`: Python's printf-style formatting when `a` is a string, the remainder otherwise.
/// `b` is one argument: only a tuple is spread over the format, and a template's values are
/// lists, never tuples (see [`percent_tuple`] for a tuple written in the template).
fn percent(state: &mut State, left: Value, right: Value) -> Result<Value, Error> {
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
fn percent_tuple(state: &mut State, left: Value, right: Value) -> Result<Value, Error> {
    if left.kind() != ValueKind::String {
        return REMAINDER.eval(context! { a => left, b => right });
    }
    let args = right.try_iter()?.collect();
    python_format(state, left, args, true)
}

/// The `format` filter: `format_string % args`.
fn format(state: &mut State, format_string: Value, args: Rest<Value>) -> Result<Value, Error> {
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

/// Jinja2's `indent(width=4, first=False, blank=False)`, of text only.
fn indent(
    value: Value,
    width: Option<Value>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    defined(&value)?;
    let width = match width {
        Some(width) => Some(width),
        None => kwargs.get("width")?,
    };
    let first = first.or(kwargs.get("first")?).unwrap_or(false);
    let blank = blank.or(kwargs.get("blank")?).unwrap_or(false);
    kwargs.assert_all_used()?;
    let Some(text) = value.as_str().filter(|_| value.kind() == ValueKind::String) else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("indent needs text, not {}", value.kind()),
        ));
    };
    let indention = match &width {
        Some(w) if w.kind() == ValueKind::String => w.as_str().unwrap_or_default().to_string(),
        Some(w) => {
            let n = usize::try_from(w.clone())?;
            if n > MAX_INPUT_BYTES {
                return Err(Error::new(ErrorKind::InvalidOperation, "indent too wide"));
            }
            " ".repeat(n)
        }
        None => "    ".to_string(),
    };
    // Jinja2 appends a newline before splitting, so that an empty text is one empty line.
    let text = format!("{text}\n");
    let lines: Vec<&str> = text
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches('\n').trim_end_matches('\r'))
        .collect();
    let mut out = if blank {
        lines.join(&format!("\n{indention}"))
    } else {
        let mut out = lines[0].to_string();
        for line in &lines[1..] {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&indention);
            }
            out.push_str(line);
        }
        out
    };
    if first {
        out.insert_str(0, &indention);
    }
    Ok(out)
}

/// Jinja2's `join(d='', attribute=None)`: each item as `str()` gives it, optionally an
/// attribute of each.
fn join(
    value: Value,
    joiner: Option<Value>,
    attribute: Option<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    defined(&value)?;
    let joiner = match joiner {
        Some(joiner) => Some(joiner),
        None => kwargs.get("d")?,
    };
    let attribute = match attribute {
        Some(attribute) => Some(attribute),
        None => kwargs.get("attribute")?,
    };
    kwargs.assert_all_used()?;
    if value.is_none() {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "None is not iterable",
        ));
    }
    let joiner = joiner.map(|j| pyfmt::str(&j)).unwrap_or_default();
    let mut out = String::new();
    for (i, item) in value.try_iter()?.enumerate() {
        if i > 0 {
            out.push_str(&joiner);
        }
        let item = match &attribute {
            Some(path) => attribute_of(&item, path)?,
            None => item,
        };
        out.push_str(&pyfmt::str(&item));
        if out.len() > MAX_INPUT_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("the joined text is larger than an input may be ({MAX_INPUT_BYTES} bytes)"),
            ));
        }
    }
    Ok(out)
}

/// `item[path]`, where a dotted path goes deeper and a number is an index.
fn attribute_of(item: &Value, path: &Value) -> Result<Value, Error> {
    if let Some(path) = path.as_str() {
        let mut value = item.clone();
        for part in path.split('.') {
            let key = part
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(part));
            value = value.get_item(&key)?;
        }
        Ok(value)
    } else {
        item.get_item(path)
    }
}

/// Jinja2's `wordcount`: runs of word characters (`\w+`) in `str(value)`.
fn wordcount(value: Value) -> Result<usize, Error> {
    defined(&value)?;
    let text = pyfmt::str(&value);
    Ok(text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .count())
}

/// Jinja2's `center`: Python's `str.center(width)`, which puts the odd space of the margin on
/// the left when `width` is odd.
fn center(value: Value, width: Option<usize>) -> Result<String, Error> {
    let text = pyfmt::str(&value);
    let width = width.unwrap_or(80);
    if width > MAX_INPUT_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("center({width}) is wider than an input may be ({MAX_INPUT_BYTES} bytes)"),
        ));
    }
    let length = text.chars().count();
    if length >= width {
        return Ok(text);
    }
    let margin = width - length;
    let left = margin / 2 + (margin & width & 1);
    Ok(format!(
        "{}{text}{}",
        " ".repeat(left),
        " ".repeat(margin - left)
    ))
}

/// Python's `str.islower()` (`wanted` lowercase) or `str.isupper()`: some cased character,
/// none of the other case.
fn cased(text: &str, wanted: fn(char) -> bool, other: fn(char) -> bool) -> bool {
    text.chars().any(wanted) && !text.chars().any(other)
}

/// Jinja2's `int`: the integer, else the integer of the float, else `default` (0).
fn int(value: Value, default: Option<Value>, base: Option<u32>) -> Result<Value, Error> {
    defined(&value)?;
    let default = || default.clone().unwrap_or(Value::from(0));
    let base = base.unwrap_or(10);
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(value.is_true() as i64),
        ValueKind::Number if value.is_integer() => value,
        ValueKind::Number => {
            let x = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            return float_to_int(x).map(|i| i.unwrap_or_else(default));
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            match python_int(s, base) {
                Some(i) => Value::from(i),
                None => match python_float(s) {
                    Some(x) => return float_to_int(x).map(|i| i.unwrap_or_else(default)),
                    None => default(),
                },
            }
        }
        _ => default(),
    })
}

/// Python's `int(x)` of a float: truncated; NaN is a ValueError (the default), infinity an
/// OverflowError.
fn float_to_int(x: f64) -> Result<Option<Value>, Error> {
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

/// Python's `int(s, base)`: blanks around, a sign, digits with single underscores between.
fn python_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let digits = match base {
        16 => digits
            .strip_prefix("0x")
            .or_else(|| digits.strip_prefix("0X"))
            .unwrap_or(digits),
        8 => digits
            .strip_prefix("0o")
            .or_else(|| digits.strip_prefix("0O"))
            .unwrap_or(digits),
        2 => digits
            .strip_prefix("0b")
            .or_else(|| digits.strip_prefix("0B"))
            .unwrap_or(digits),
        _ => digits,
    };
    let digits = without_underscores(digits)?;
    if digits.starts_with(['+', '-']) {
        return None;
    }
    let value = i128::from_str_radix(&digits, base).ok()?;
    Some(if negative { -value } else { value })
}

/// Python's `float(s)`: blanks around, `inf`/`nan` in any case, underscores between digits.
fn python_float(s: &str) -> Option<f64> {
    let s = without_underscores(s.trim())?;
    s.parse::<f64>().ok()
}

/// `s` without the underscores Python allows between two digits; `None` for any other.
fn without_underscores(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'_' {
            let between = i > 0
                && i + 1 < bytes.len()
                && bytes[i - 1].is_ascii_alphanumeric()
                && bytes[i + 1].is_ascii_alphanumeric();
            if !between {
                return None;
            }
        }
    }
    Some(s.replace('_', ""))
}

/// Jinja2's `float`: the float, else `default` (0.0).
fn float(value: Value, default: Option<Value>) -> Result<Value, Error> {
    defined(&value)?;
    let default = || default.clone().unwrap_or(Value::from(0.0));
    Ok(match value.kind() {
        ValueKind::Bool => Value::from(value.is_true() as i64 as f64),
        ValueKind::Number => f64::try_from(value.clone())
            .map(Value::from)
            .unwrap_or_else(|_| default()),
        ValueKind::String => python_float(value.as_str().unwrap_or_default())
            .map(Value::from)
            .unwrap_or_else(default),
        _ => default(),
    })
}

/// Jinja2's `round`: minijinja's, except that a boolean is the integer it is in Python and
/// that `floor` and `ceil` always give a float (Jinja2 divides by `10 ** precision`).
fn round(
    value: Value,
    precision: Option<i32>,
    method: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let value = if value.kind() == ValueKind::Bool {
        Value::from(value.is_true() as i64)
    } else {
        value
    };
    let named: Option<String> = kwargs.peek("method")?;
    let directed = matches!(
        method.as_deref().or(named.as_deref()),
        Some("floor" | "ceil")
    );
    let value = match i128::try_from(value.clone()) {
        Ok(i) if directed && value.is_integer() => Value::from(i as f64),
        _ => value,
    };
    filters::round(value, precision, method.as_deref(), kwargs)
}

/// Jinja2's `tojson`: `json.dumps(value, sort_keys=True)` with `<`, `>`, `&` and `'` escaped
/// for HTML.
fn tojson(value: Value, indent: Option<usize>, kwargs: Kwargs) -> Result<String, Error> {
    defined(&value)?;
    let indent = match indent {
        Some(indent) => Some(indent),
        None => kwargs.get("indent")?,
    };
    kwargs.assert_all_used()?;
    let mut out = String::new();
    dump(&value, indent, 0, &mut out)?;
    Ok(out
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\'', "\\u0027"))
}

/// Python's `json.dumps` of `value`, keys sorted, at nesting `level`.
fn dump(value: &Value, indent: Option<usize>, level: usize, out: &mut String) -> Result<(), Error> {
    let newline = |out: &mut String, level: usize| {
        if let Some(width) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * level));
        }
    };
    let separator = if indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => out.push_str(&value.to_string()),
        ValueKind::Number => {
            let x = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            out.push_str(&match x {
                x if x.is_nan() => "NaN".to_string(),
                x if x == f64::INFINITY => "Infinity".to_string(),
                x if x == f64::NEG_INFINITY => "-Infinity".to_string(),
                x => pyfmt::float(x),
            });
        }
        ValueKind::String => json_string(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, level + 1);
                dump(item, indent, level + 1, out)?;
            }
            if !items.is_empty() {
                newline(out, level);
            }
            out.push(']');
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let name = match key.kind() {
                    ValueKind::String => key.as_str().unwrap_or_default().to_string(),
                    ValueKind::Number | ValueKind::Bool | ValueKind::None => {
                        let mut name = String::new();
                        dump(&key, None, 0, &mut name)?;
                        name
                    }
                    _ => {
                        return Err(Error::new(
                            ErrorKind::InvalidOperation,
                            "keys must be str, int, float, bool or None",
                        ));
                    }
                };
                entries.push((name, value.get_item(&key)?));
            }
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (i, (name, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(separator);
                }
                newline(out, level + 1);
                json_string(name, out);
                out.push_str(": ");
                dump(item, indent, level + 1, out)?;
            }
            if !entries.is_empty() {
                newline(out, level);
            }
            out.push('}');
        }
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("{} is not JSON serializable", value.kind()),
            ));
        }
    }
    Ok(())
}

/// A JSON string as Python writes it: ASCII only, other characters as `\uXXXX`.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `pprint.pformat` of a short value: `repr()` with the keys of maps sorted.
fn sorted_repr(value: &Value, out: &mut String) {
    match value.kind() {
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter().map(Iterator::collect).unwrap_or_default();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pyfmt::repr(key, out);
                out.push_str(": ");
                sorted_repr(&value.get_item(key).unwrap_or_default(), out);
            }
            out.push('}');
        }
        ValueKind::Seq => {
            out.push('[');
            for (i, item) in value.try_iter().into_iter().flatten().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                sorted_repr(&item, out);
            }
            out.push(']');
        }
        _ => pyfmt::repr(value, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::template::Template;

    fn render(template: &str, context: Value) -> String {
        Template::parse("t", template)
            .and_then(|t| t.render(&context))
            .unwrap_or_else(|e| format!("error: {e}"))
    }

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

    #[test]
    fn operators_and_filters_give_what_jinja2_gives() {
        // Each expected text is Jinja2 3.1's.
        let context = crate::planning::template::json_value(&serde_json::json!({
            "s": "héllo", "x": 1e-05, "n": 7, "m": {"a": 1e-05, "b": [1.5, true]},
        }));
        for (template, expected) in [
            ("{{ '%s_%04d' % (s, n) }}", "héllo_0007"),
            ("{{ '%-7s|%7s' % (s, s) }}", "héllo  |  héllo"),
            ("{{ '%(a)s %(b)s' % m }}", "1e-05 [1.5, True]"),
            ("{{ '%d %.2e %r' % (2.7, x, s) }}", "2 1.00e-05 'héllo'"),
            ("{{ '%*d|' % (4, n) }}", "   7|"),
            ("{{ n % 3 }} {{ -n % 3 }}", "1 2"),
            ("{{ x ~ 1 ~ none }}", "1e-051None"),
            ("{{ m|tojson }}", "{\"a\": 1e-05, \"b\": [1.5, true]}"),
            ("{{ '<é>'|tojson }}", "\"\\u003c\\u00e9\\u003e\""),
            ("{{ m.b|join('-') }}", "1.5-True"),
            ("{{ x|upper }}", "1E-05"),
            ("{{ 'a\nb'|indent(2, true) }}", "  a\n  b"),
            ("{{ 'x'|int }}{{ '4.7'|int }}{{ 'x'|float }}", "040.0"),
            ("{{ n|round(1, 'floor') }}", "7.0"),
        ] {
            assert_eq!(render(template, context.clone()), expected, "{template}");
        }
        for template in [
            "{{ '%s %s' % (1,) }}",
            "{{ 'abc' % n }}",
            "{{ '%(z)s' % m }}",
            "{{ n % 0 }}",
            "{{ undefined_name ~ 'a' }}",
        ] {
            assert!(
                render(template, context.clone()).starts_with("error"),
                "{template}"
            );
        }
    }
}
