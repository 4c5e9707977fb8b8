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
/// every float of every input, so the digits come from `ryu` (the same shortest round-trip
/// digits as `{:e}`, several times faster) and are laid out in Python's notation here.
pub fn write_float<W: Write + ?Sized>(x: f64, out: &mut W) {
    if x.is_nan() {
        let _ = out.write_str("nan");
        return;
    }
    if x.is_infinite() {
        let _ = out.write_str(if x < 0.0 { "-inf" } else { "inf" });
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let printed = buffer.format_finite(x);
    let (sign, printed) = match printed.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", printed),
    };
    let Some(shortest) = Shortest::of(printed) else {
        let _ = out.write_str(if sign.is_empty() { "0.0" } else { "-0.0" });
        return;
    };
    let digits = shortest.digits.as_str();
    let (first, rest) = digits.split_at(1);
    let exponent = shortest.exponent;
    // At most 3 zeros lead (exponent >= -4) and 15 trail (exponent < 16).
    const ZEROS: &str = "000000000000000";
    // Python writes d.ddd x 10^exponent in fixed notation when -4 <= exponent < 16.
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let pieces = if point <= 0 {
            [sign, "0.", &ZEROS[..(-point) as usize], digits]
        } else if point as usize >= digits.len() {
            [sign, digits, &ZEROS[..point as usize - digits.len()], ".0"]
        } else {
            let (int, frac) = digits.split_at(point as usize);
            [sign, int, ".", frac]
        };
        write_pieces(&pieces, out);
    } else {
        let point = if rest.is_empty() { "" } else { "." };
        let exp_sign = if exponent < 0 { "-" } else { "+" };
        // At least two digits, as `%02d`: 1e-05, 1e+100.
        let e = exponent.unsigned_abs();
        let exp_digits = [e / 100, e / 10 % 10, e % 10].map(|d| b'0' + d as u8);
        let exp_digits =
            std::str::from_utf8(&exp_digits[usize::from(e < 100)..]).expect("ASCII digits");
        write_pieces(&[sign, first, point, rest, "e", exp_sign, exp_digits], out);
    }
}

/// One write to `out` of `pieces`: `out` is a template's output, which costs a call per write.
fn write_pieces<W: Write + ?Sized>(pieces: &[&str], out: &mut W) {
    let mut text = StackText::default();
    for piece in pieces {
        let _ = text.write_str(piece);
    }
    let _ = out.write_str(text.as_str());
}

/// A finite non-zero float as its significant digits `d.ddd` and power of ten.
struct Shortest {
    digits: StackText,
    exponent: i32,
}

impl Shortest {
    /// Reads ryu's unsigned output ("123.45", "0.00012", "1e16", "1.5e-7"); `None` for zero.
    fn of(printed: &str) -> Option<Shortest> {
        let (decimal, shift) = match printed.split_once('e') {
            Some((decimal, exponent)) => (decimal, exponent.parse::<i32>().ok()?),
            None => (printed, 0),
        };
        let (int, frac) = decimal.split_once('.').unwrap_or((decimal, ""));
        let mut all = StackText::default();
        all.write_str(int).ok()?;
        all.write_str(frac).ok()?;
        let all = all.as_str();
        let significant = all.trim_start_matches('0');
        let leading = all.len() - significant.len();
        let significant = significant.trim_end_matches('0');
        if significant.is_empty() {
            return None;
        }
        let mut digits = StackText::default();
        digits.write_str(significant).ok()?;
        Some(Shortest {
            digits,
            exponent: int.len() as i32 - 1 - leading as i32 + shift,
        })
    }
}

/// Room for any of ryu's outputs of an f64 (at most 24 bytes) and any of Python's notations
/// of one (at most 24 too: a sign, 17 digits, a point and 5 zeros, or `e-308`).
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
    fn floats_print_as_cpython_prints_them_over_many_values() {
        // Random bit patterns cover every exponent; the decimal ones the values people type.
        // CPython's own str() is the oracle: the standard library's `{:e}` breaks a tie in the
        // last digit the other way (1942378000000000.25 prints .3 there, .2 in Python).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut floats = vec![1942378000000000.3];
        for _ in 0..50_000 {
            let bits = f64::from_bits(next());
            let typed = (next() % 2_000_001) as f64 / 10f64.powi((next() % 12) as i32);
            let scaled = typed * 10f64.powi((next() % 40) as i32 - 20);
            let wide = f64::from(next() as u32) * 10f64.powi((next() % 30) as i32);
            floats.extend(
                [bits, typed, -typed, scaled, wide]
                    .into_iter()
                    .filter(|x| x.is_finite()),
            );
        }
        let bits: String = floats
            .iter()
            .map(|x| format!("{:x}\n", x.to_bits()))
            .collect();
        let mut python = std::process::Command::new("python3")
            .args(["-c", "import struct, sys\nfor line in sys.stdin: print(str(struct.unpack('<d', int(line, 16).to_bytes(8, 'little'))[0]))"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs (the tests need it for moto too)");
        let mut stdin = python.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            stdin.write_all(bits.as_bytes()).unwrap();
        });
        let output = python.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(output.status.success());
        let expected: Vec<&str> = std::str::from_utf8(&output.stdout)
            .unwrap()
            .lines()
            .collect();
        assert_eq!(expected.len(), floats.len());
        let differing: Vec<String> = floats
            .iter()
            .zip(&expected)
            .filter(|(x, python)| float(**x) != **python)
            .map(|(x, python)| format!("{x:?}: {} vs Python's {python}", float(*x)))
            .take(5)
            .collect();
        assert!(differing.is_empty(), "{differing:?}");
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
