//! Filters and tests that behave as Jinja2's do, where minijinja's builtins differ: values
//! turned into text as Python's `str()` does (`1e-05`, `True`, `None`), the operators of
//! [`super::operators`] (`%` formatting in [`super::printf`]), Jinja2's lenient `int` and
//! `float`, and Python's JSON.
//! tests/jinja_differential.rs compares them with Jinja2 itself.

use std::borrow::Cow;

use minijinja::value::{Kwargs, StringInput, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, filters};

use super::MAX_INPUT_BYTES;
use super::operators::{CONCAT_FILTER, PERCENT_FILTER, PERCENT_TUPLE_FILTER};
use super::printf::{defined, float_to_int, format, percent, percent_tuple};
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

/// `a ~ b`: `str(a) + str(b)`.
fn concat(left: Value, right: Value) -> Result<String, Error> {
    defined(&left)?;
    defined(&right)?;
    let mut out = pyfmt::str(&left);
    out.push_str(&pyfmt::str(&right));
    Ok(out)
}

/// An argument given by position, else by `name`: Jinja2's filters take either.
fn positional_or_named<T>(
    positional: Option<T>,
    kwargs: &Kwargs,
    name: &str,
) -> Result<Option<T>, Error>
where
    T: for<'a> minijinja::value::ArgType<'a, Output = T>,
{
    match positional {
        Some(value) => Ok(Some(value)),
        None => kwargs.get(name),
    }
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
    let width = positional_or_named(width, &kwargs, "width")?;
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
    let joiner = positional_or_named(joiner, &kwargs, "d")?;
    let attribute = positional_or_named(attribute, &kwargs, "attribute")?;
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
    let indent = positional_or_named(indent, &kwargs, "indent")?;
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
