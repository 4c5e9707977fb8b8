//! simseries' templates against Jinja2 itself: a few thousand generated templates (values
//! printed, arithmetic, filters, `%` formatting, loops, tests, Python methods) over floats,
//! ints, booleans, strings, None, lists and maps, rendered by both, must agree: the same text,
//! or an error on both sides. Jinja2 is the one beside moto (`scripts/test.sh` installs it),
//! run as the original workflow runs it (tests/jinja/render.py).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use simseries::model::spec::Condition;
use simseries::planning::inputs::{ConditionFields, Seeds};
use simseries::planning::template::{Template, json_value};

/// The values every template sees, by name.
fn context() -> Value {
    json!({
        "f_one": 1.0, "f_small": 1e-05, "f_tiny": 2.5e-07, "f_noise": 3.0000000000000004e-05,
        "f_big": 1e16, "f_tenth": 0.1, "f_neg": -2.5, "f_half": 0.5, "f_mid": 123456.789,
        "f_third": 0.3333333333333333,
        "i_zero": 0, "i_seven": 7, "i_neg": -7, "i_three": 3, "i_big": 1000000000000000i64,
        "b_true": true, "b_false": false,
        "s_word": "abc", "s_words": "hello big World", "s_pad": "  pad  ", "s_quote": "it's \"q\"",
        "s_num": "42", "s_uni": "héllo", "s_empty": "",
        "n_none": null,
        "l_mixed": [1.5, true, "a", null], "l_ints": [3, 1, 2, 3], "l_floats": [0.1, 1e-05, 2.0],
        "l_strs": ["b", "a", "c"], "l_empty": [],
        "m_map": {"b": 2, "a": 1.5, "c": "x"}, "m_nested": {"k": [1, {"z": 1e-05}]},
        // A condition as an input's template sees it (a dict to Jinja2; see `ours`).
        "c_range": {"key": "C01", "group": "A", "rate": 0.1, "n": 3, "on": true, "start_seed": 2, "end_seed": 5},
        "c_run": {"key": "C02", "rate": 1e-05, "tag": "x", "seed": 7},
    })
}

/// The values as simseries hands them to a template: the conditions (`c_*`) as rendering
/// builds them, the rest from JSON.
fn ours() -> minijinja::Value {
    let pairs = context()
        .as_object()
        .unwrap()
        .clone()
        .into_iter()
        .map(|(name, value)| {
            if !name.starts_with("c_") {
                return (name, json_value(&value));
            }
            let mut fields = value.as_object().unwrap().clone();
            let mut seed = |name: &str| fields.remove(name).map(|s| s.as_u64().unwrap() as u32);
            let seeds = match (seed("seed"), seed("start_seed"), seed("end_seed")) {
                (Some(seed), None, None) => Seeds::One(seed),
                (None, Some(start), Some(end)) => Seeds::Range(start, end),
                other => panic!("{other:?}"),
            };
            let condition: Condition = serde_json::from_value(Value::Object(fields)).unwrap();
            (name, ConditionFields::of(&condition).with(seeds))
        });
    minijinja::Value::from_pairs(pairs)
}

/// Forms of one value `V`.
const UNARY: &[&str] = &[
    "{{ V }}",
    "{{ V|string }}",
    "{{ V ~ '' }}",
    "{{ '<' ~ V ~ '>' }}",
    "{{ V|center(12) }}",
    "{{ V|length }}",
    "{{ V|count }}",
    "{{ V|upper }}",
    "{{ V|lower }}",
    "{{ V|title }}",
    "{{ V|capitalize }}",
    "{{ V|trim }}",
    "{{ V|int }}",
    "{{ V|float }}",
    "{{ V|abs }}",
    "{{ V|round }}",
    "{{ V|round(2) }}",
    "{{ V|round(1, 'floor') }}",
    "{{ V|round(1, 'ceil') }}",
    "{{ V|default('d') }}",
    "{{ V|list }}",
    "{{ V|first }}",
    "{{ V|last }}",
    "{{ V|join(',') }}",
    "{{ V|join }}",
    "{{ V|sort }}",
    "{{ V|sort(reverse=true) }}",
    "{{ V|reverse|list }}",
    "{{ V|unique|list }}",
    "{{ V|sum }}",
    "{{ V|max }}",
    "{{ V|min }}",
    "{{ V|tojson }}",
    "{{ V|replace('a', 'A') }}",
    "{{ V|wordcount }}",
    "{{ V|indent(2, true) }}",
    "{{ V|items|list }}",
    "{{ V|dictsort }}",
    "{{ V|batch(2)|list }}",
    "{{ V|slice(2)|list }}",
    "{{ V|map('string')|join('|') }}",
    "{{ V|select('odd')|list }}",
    "{{ V|reject('none')|list }}",
    "{{ V|float|round(3) }}",
    "{{ V|int + 1 }}",
    "{{ V|string|length }}",
    "{{ V|pprint }}",
    "{{ '%s'|format(V) }}",
    "{{ '%.2e'|format(V) }}",
    "{{ '%s' % V }}",
    "{{ '%s' % (V,) }}",
    "{{ '%r' % (V,) }}",
    "{{ '%.3f' % V }}",
    "{{ '%d' % V }}",
    "{{ '%i' % V }}",
    "{{ '%e' % V }}",
    "{{ '%g' % V }}",
    "{{ '%G' % V }}",
    "{{ '[%8.2f]' % V }}",
    "{{ '[%-8s]' % V }}",
    "{{ '[%8s]' % (V,) }}",
    "{{ '%05d' % V }}",
    "{{ '%x' % V }}",
    "{{ '%X' % V }}",
    "{{ '%o' % V }}",
    "{{ '%+.1e' % V }}",
    "{{ '% d' % V }}",
    "{{ '%.0f%%' % V }}",
    "{{ '%s-%.3f' % (V, 2.5) }}",
    "{{ V is number }}",
    "{{ V is string }}",
    "{{ V is defined }}",
    "{{ V is none }}",
    "{{ V is boolean }}",
    "{{ V is integer }}",
    "{{ V is float }}",
    "{{ V is sequence }}",
    "{{ V is mapping }}",
    "{{ V is iterable }}",
    "{{ V is even }}",
    "{{ V is odd }}",
    "{{ V is divisibleby(3) }}",
    "{{ V is true }}",
    "{{ V is false }}",
    "{{ V is lower }}",
    "{{ V is upper }}",
    "{% if V %}T{% else %}F{% endif %}",
    "{{ not V }}",
    "{{ -V }}",
    "{{ V * 2 }}",
    "{{ V + 1 }}",
    "{{ V + 0.1 }}",
    "{{ V / 4 }}",
    "{{ V // 4 }}",
    "{{ V % 4 }}",
    "{{ V ** 2 }}",
    "{{ V - 0.1 }}",
    "{{ V * 1e-3 }}",
    "{{ V == 1 }}",
    "{{ V < 2 }}",
    "{{ V in [1, 'a'] }}",
    "{{ 'a' in V }}",
    "{{ V and 'y' }}",
    "{{ V or 'n' }}",
    "{{ V if V else 'e' }}",
    "{% for x in V %}{{ loop.index }}{{ x }};{% endfor %}",
    "{% for x in V %}{{ loop.revindex }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{% else %}none{% endfor %}",
    "{% for x in V|sort %}{{ x }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% set y = V %}{{ y }}",
    "{{ [V, V] }}",
    "{{ {'k': V} }}",
    "{{ (V, 1) }}",
    "{{ V.upper() }}",
    "{{ V.items()|list }}",
    "{{ V.keys()|list }}",
    "{{ V.values()|list }}",
    "{{ V[0] }}",
    "{{ V['a'] }}",
    "{{ V.a }}",
    "{{ V[1:] }}",
    "{{ V[::-1] }}",
    "{{ V.split() }}",
    "{{ V.startswith('a') }}",
    "{{ V.replace('l', 'L') }}",
    "{{ V.strip() }}",
    "{{ V.count('l') }}",
    "{{ range(V)|list }}",
    "{{ V|int|string }}",
    "{% macro m(a) %}<{{ a }}>{% endmacro %}{{ m(V) }}",
    "{{ V }}\n",
    "{{ V }}\n\n",
    "{%- if V is number %} {{ V }} {% endif -%}",
];

/// Operators between two values `A` and `B`.
const BINARY: &[&str] = &[
    "{{ A + B }}",
    "{{ A - B }}",
    "{{ A * B }}",
    "{{ A / B }}",
    "{{ A // B }}",
    "{{ A % B }}",
    "{{ A ** B }}",
    "{{ A ~ B }}",
    "{{ A == B }}",
    "{{ A != B }}",
    "{{ A < B }}",
    "{{ A >= B }}",
    "{{ A in B }}",
    "{{ A and B }}",
    "{{ A or B }}",
    "{{ [A, B]|max }}",
    "{{ [A, B]|sum }}",
];

/// Whole templates as models' inputs use them.
const WRITTEN: &[&str] = &[
    "{% for c in [m_map, m_map] %}<c key=\"{{ c.c }}\" rate=\"{{ '%.3f' % c.a }}\" />{% endfor %}",
    "{{ '%s_%04d' % (s_word, i_seven) }}",
    "{{ '%(a)s-%(b)s' % m_map }}",
    "{{ '%(a).2f|%(c)5s|%(b)03d' % m_map }}",
    "{{ '%(missing)s' % m_map }}",
    "{{ 'abc' % m_map }}",
    "{{ '%s' % m_map }}",
    "{{ '%s %s' % l_ints }}",
    "{{ '%s' % (l_ints,) }}",
    "{% for k, v in m_map.items() %}{{ '%s=%s;' % (k, v) }}{% endfor %}",
    "{% for kv in m_map.items() %}{{ '%s=%s;' % kv }}{% endfor %}",
    "{% for kv in m_map|dictsort %}{{ '%s:%r ' % kv }}{% endfor %}",
    "{{ '%5.1f%%' % f_half }}",
    "{{ '%-10s|' % s_uni }}",
    "{{ '%10.3s|' % s_uni }}",
    "{{ '%*d|' % (5, i_seven) }}",
    "{{ '%-*d|' % (5, i_seven) }}",
    "{{ '%.*f' % (2, f_third) }}",
    "{{ '%c' % 65 }}",
    "{{ '%s %s' % (1,) }}",
    "{{ '%s' % (1, 2) }}",
    "{{ '%' % 1 }}",
    "{{ '%z' % 1 }}",
    "{{ '%d' % f_neg }}",
    "{{ '%d' % s_num }}",
    "{{ '%r' % s_quote }}",
    "{{ '%a' % s_uni }}",
    "{{ '%s and %s'|format(f_small, b_true) }}",
    "{{ 'x' ~ f_small ~ b_true ~ n_none }}",
    "{{ f_small ~ 1 }}",
    "{{ (f_small ~ '')|length }}",
    "{{ l_floats ~ m_map }}",
    "{{ f_small|tojson }}",
    "{{ m_map|tojson }}",
    "{{ s_quote|tojson }}",
    "{{ s_uni|tojson }}",
    "{{ '<&>'|tojson }}",
    "{{ m_nested|tojson(indent=2) }}",
    "{{ l_mixed|tojson(2) }}",
    "{{ m_map|pprint }}",
    "{{ i_seven % 3 }}{{ i_neg % 3 }}{{ f_neg % 2 }}{{ 7 % -3 }}",
    "{{ i_seven % 0 }}",
    "{{ loop_var % 2 }}",
    "{% for i in range(4) %}{{ 'odd' if i % 2 else 'even' }}{{ '%02d' % i }} {% endfor %}",
    "{% set label = s_word ~ '_' ~ i_seven %}{{ label|upper }}",
    "{{ (f_one + f_small) ~ '' }}",
    "{{ -f_small ~ '' }}",
    "{{ [f_small]|join(', ') ~ '' }}",
    "{{ l_floats|map('string')|join(' ') }}",
    "{{ m_nested.k|join('/') }}",
    "{{ l_strs|join(',', attribute=0) }}",
    "{{ ' 42 '|int }}{{ '1_000'|int }}{{ '4.7'|int }}{{ '0x1A'|int(0, 16) }}{{ 'x'|int(-1) }}",
    "{{ ' 1.5 '|float }}{{ 'nan'|float }}{{ '1e3'|float }}{{ 'x'|float(2.5) }}",
    "{{ f_mid|round(1, 'floor') }} {{ f_mid|round(-2) }} {{ 2.5|round }} {{ 3.5|round }}",
    "{{ s_words|wordcount }} {{ 'a_b c-d'|wordcount }}",
];

/// The values paired under [`BINARY`].
const PAIRED: &[&str] = &[
    "f_one", "f_small", "f_neg", "f_half", "f_third", "i_zero", "i_seven", "i_neg", "i_three",
    "b_true", "s_word", "s_num", "n_none", "l_ints",
];

fn templates() -> Vec<String> {
    let context = context();
    let names: Vec<&String> = context.as_object().unwrap().keys().collect();
    let mut all = Vec::new();
    for form in UNARY {
        for name in &names {
            all.push(form.replace('V', name));
        }
    }
    all.extend(WRITTEN.iter().map(|t| t.to_string()));
    for form in BINARY {
        for a in PAIRED {
            for b in PAIRED {
                all.push(form.replace('A', a).replace('B', b));
            }
        }
    }
    all
}

/// What Jinja2 makes of each template: its text, or the error's name.
fn jinja2(templates: &[String]) -> Vec<Result<String, String>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/jinja/render.py");
    let mut child = Command::new(common::moto::python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let request = json!({"context": context(), "templates": templates});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "render.py failed (is Jinja2 installed? scripts/test.sh installs it with moto): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r.get("out") {
            Some(out) => Ok(out.as_str().unwrap().to_string()),
            None => Err(r["error"].as_str().unwrap().to_string()),
        })
        .collect()
}

fn simseries(template: &str, context: &minijinja::Value) -> Result<String, String> {
    Template::parse("t", template)
        .and_then(|t| t.render(context))
        .map_err(|e| e.to_string())
}

type Rendered = Result<String, String>;

/// Whether a template, rendered so by Jinja2 and so by simseries, differs as a rule says.
type Rule = fn(&str, &Rendered, &Rendered) -> bool;

/// Where simseries deliberately renders otherwise than Jinja2, each with why; the README's
/// template section lists the same. Every rule must match some template here, so none stays
/// once it no longer applies.
const DIFFERENCES: &[(&str, Rule)] = &[
    (
        "Jinja2 raises a TypeError where simseries renders: comparing or sorting a number with a \
         string or None, `in` of a non-string in a string, a number times a string, None \
         iterated (empty), `even`/`odd` of a string, `range` of a float",
        |_, jinja, ours| matches!((jinja, ours), (Err(e), Ok(_)) if e.starts_with("TypeError")),
    ),
    (
        "tuples print as lists: `(a, 1)`, the pairs of `items()` and `dictsort`",
        |_, jinja, ours| match (jinja, ours) {
            (Ok(jinja), Ok(ours)) => jinja.replace('(', "[").replace(')', "]") == *ours,
            _ => false,
        },
    ),
    (
        "`pprint` does not wrap lines past 80 characters",
        |template, jinja, ours| match (jinja, ours) {
            (Ok(jinja), Ok(ours)) if template.contains("pprint") && jinja.contains('\n') => {
                let one_line: Vec<&str> = jinja.lines().map(str::trim_start).collect();
                one_line.join(" ") == *ours
            }
            _ => false,
        },
    ),
    (
        "`select`, `reject` and `map` refuse a number or a boolean; Jinja2 gives nothing for 0 \
         and False",
        |template, jinja, ours| {
            jinja.is_ok()
                && ours.as_ref().is_err_and(|e| e.contains("is not iterable"))
                && ["select(", "reject(", "map("]
                    .iter()
                    .any(|f| template.contains(f))
        },
    ),
    (
        "booleans are not numbers: `-True` and `True|abs` are errors",
        |template, jinja, ours| {
            jinja.is_ok()
                && ours.is_err()
                && (template.contains("b_true") || template.contains("b_false"))
        },
    ),
    (
        "a negative number to a fractional power is nan, not a complex number",
        |_, jinja, ours| {
            jinja.as_ref().is_ok_and(|j| j.ends_with("j)")) && ours.as_deref() == Ok("nan")
        },
    ),
    (
        "a loop over a string does not know its length: `loop.length` and `loop.revindex` are \
         undefined",
        |template, jinja, ours| {
            jinja.is_ok()
                && ours.as_ref().is_err_and(|e| e.contains("loop.revindex"))
                && template.contains("in s_")
        },
    ),
];

#[test]
fn templates_render_as_jinja2_renders_them() {
    let templates = templates();
    let expected = jinja2(&templates);
    assert_eq!(expected.len(), templates.len());
    let context = ours();
    let mut unexplained = Vec::new();
    let mut explained = vec![0usize; DIFFERENCES.len()];
    let mut agreed = 0;
    for (template, jinja) in templates.iter().zip(&expected) {
        let ours = simseries(template, &context);
        let agree = match (&ours, jinja) {
            (Ok(a), Ok(b)) => a == b,
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if agree {
            agreed += 1;
            continue;
        }
        match DIFFERENCES
            .iter()
            .position(|(_, rule)| rule(template, jinja, &ours))
        {
            Some(rule) => explained[rule] += 1,
            None => unexplained.push(format!(
                "{template:?}\n    jinja2:    {jinja:?}\n    simseries: {ours:?}"
            )),
        }
    }
    eprintln!("{agreed} of {} templates render alike", templates.len());
    for ((why, _), count) in DIFFERENCES.iter().zip(&explained) {
        eprintln!("{count:>5} differ as documented: {why}");
    }
    assert!(
        unexplained.is_empty(),
        "{} of {} templates render differently from Jinja2:\n{}",
        unexplained.len(),
        templates.len(),
        unexplained.join("\n")
    );
    for ((why, _), count) in DIFFERENCES.iter().zip(&explained) {
        assert!(
            *count > 0,
            "no template differs any more as documented: {why}"
        );
    }
    assert!(
        agreed * 100 >= templates.len() * 90,
        "only {agreed} of {} agree",
        templates.len()
    );
}
