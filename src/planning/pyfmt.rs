//! Values printed as Python's `str()` prints them, so rendered inputs match Jinja2's byte for
//! byte: floats in their shortest round-trip form with Python's notation (`1.0`, `1e-05`,
//! `1e+16`), booleans `True`/`False`, `None`, and containers with `repr()`-quoted strings.

use std::fmt::Write;

use minijinja::value::{Value, ValueKind};

/// `str(x)` of a Python float.
pub fn float(x: f64) -> String {
    let mut out = String::new();
    write_float(x, &mut out);
    out
}

/// Writes `str(x)` of a Python float to `out` without allocating: rendering calls it for
/// every float of every input.
pub fn write_float<W: Write + ?Sized>(x: f64, out: &mut W) {
    if x.is_nan() {
        let _ = out.write_str("nan");
        return;
    }
    if x.is_infinite() {
        let _ = out.write_str(if x < 0.0 { "-inf" } else { "inf" });
        return;
    }
    // `{:e}` yields the shortest digits that round-trip, e.g. "-1.2345e-7" or "1e16".
    let mut scientific = StackText::default();
    let _ = write!(scientific, "{x:e}");
    let (mantissa, exponent) = scientific
        .as_str()
        .split_once('e')
        .expect("`{:e}` always prints an exponent");
    let exponent: i32 = exponent.parse().expect("exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    // `{:e}` prints one digit before its point: "1.2345" -> "1" and "2345".
    let (first, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = 1 + rest.len();
    // At most 3 zeros lead (exponent >= -4) and 15 trail (exponent < 16).
    const ZEROS: &str = "000000000000000";
    let _ = out.write_str(sign);
    // Python writes d.ddd x 10^exponent in fixed notation when -4 <= exponent < 16.
    let _ = if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        if point <= 0 {
            write!(out, "0.{}{first}{rest}", &ZEROS[..(-point) as usize])
        } else if point as usize >= digits {
            write!(out, "{first}{rest}{}.0", &ZEROS[..point as usize - digits])
        } else {
            let (int, frac) = rest.split_at(point as usize - 1);
            write!(out, "{first}{int}.{frac}")
        }
    } else {
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        write!(out, "{first}{point}{rest}e{exp_sign}{:02}", exponent.abs())
    };
}

/// Room for any `{:e}` of an f64 ("-1.7976931348623157e308" is 23 bytes).
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("only ASCII is written")
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `str(value)`: strings as they are, everything else as [`repr`].
pub fn str(value: &Value) -> String {
    match value.as_str() {
        Some(s) if value.kind() == ValueKind::String => s.to_string(),
        _ => {
            let mut out = String::new();
            repr(value, &mut out);
            out
        }
    }
}

/// Writes `str(value)` to `out`, as [`str`] returns it, without an intermediate string.
pub fn write_str<W: Write + ?Sized>(value: &Value, out: &mut W) -> std::fmt::Result {
    match value.as_str() {
        Some(s) if value.kind() == ValueKind::String => out.write_str(s),
        _ => {
            repr(value, out);
            Ok(())
        }
    }
}

/// `repr(value)` for the values a template can hold.
pub fn repr<W: Write + ?Sized>(value: &Value, out: &mut W) {
    // Writing to a String or to minijinja's output cannot fail.
    let _ = write_repr(value, out);
}

fn write_repr<W: Write + ?Sized>(value: &Value, out: &mut W) -> std::fmt::Result {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.write_str("None"),
        ValueKind::Bool => out.write_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number if value.is_integer() => write!(out, "{value}"),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(x) => {
                write_float(x, out);
                Ok(())
            }
            Err(_) => write!(out, "{value}"),
        },
        ValueKind::String => string_repr(value.as_str().unwrap_or_default(), out),
        ValueKind::Seq | ValueKind::Iterable => {
            out.write_char('[')?;
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    write_repr(&item, out)?;
                }
            }
            out.write_char(']')
        }
        ValueKind::Map => {
            out.write_char('{')?;
            if let Ok(keys) = value.try_iter() {
                for (i, key) in keys.enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    write_repr(&key, out)?;
                    out.write_str(": ")?;
                    write_repr(&value.get_item(&key).unwrap_or_default(), out)?;
                }
            }
            out.write_char('}')
        }
        _ => write!(out, "{value}"),
    }
}

/// Python's string repr: single quotes unless the text has `'` and no `"`.
fn string_repr<W: Write + ?Sized>(s: &str, out: &mut W) -> std::fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c == quote => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(out, "\\x{:02x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_prints_them() {
        // Each pair was checked against CPython's str(float).
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (-2.0, "-2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (2.5e-07, "2.5e-07"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e15, "1500000000000000.0"),
            (123.456, "123.456"),
            (0.1, "0.1"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (1e100, "1e+100"),
            (-1.5e-300, "-1.5e-300"),
            (12345678901234567.0, "1.2345678901234568e+16"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (x, expected) in cases {
            assert_eq!(float(x), expected, "{x:?}");
        }
    }

    #[test]
    fn other_values_print_as_python_str() {
        assert_eq!(str(&Value::from(true)), "True");
        assert_eq!(str(&Value::from(false)), "False");
        assert_eq!(str(&Value::from(())), "None");
        assert_eq!(str(&Value::from(42)), "42");
        assert_eq!(str(&Value::from("it's")), "it's");
        let list = Value::from(vec![
            Value::from(1),
            Value::from(1.0),
            Value::from("a"),
            Value::from("it's"),
            Value::from(false),
        ]);
        assert_eq!(str(&list), "[1, 1.0, 'a', \"it's\", False]");
        let map = Value::from_pairs([("k", Value::from(1e-05)), ("n", Value::from(()))]);
        assert_eq!(str(&map), "{'k': 1e-05, 'n': None}");
    }
}
