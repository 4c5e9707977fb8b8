"""Renders templates with Jinja2 as the original workflow does, for tests/jinja_differential.rs.

Reads {"context": {...}, "templates": [...]} as JSON on stdin and writes, for each template in
order, {"out": text} or {"error": "ExceptionName"} as a JSON list on stdout. The environment is
the original's: `jinja2.Template(source, undefined=StrictUndefined).render(context)`.
"""

import json
import sys

import jinja2
from jinja2 import StrictUndefined, Template


def render(source, context):
    try:
        return {"out": Template(source, undefined=StrictUndefined).render(context)}
    except Exception as error:  # any failure is an error both sides must agree on
        return {"error": type(error).__name__ + ": " + str(error)[:200]}


def main():
    request = json.load(sys.stdin)
    # Each template gets a fresh copy: Jinja2's filters may change lists in place (`indent`
    # of a list extends it), which would leak into the next template.
    context = json.dumps(request["context"])
    results = [render(source, json.loads(context)) for source in request["templates"]]
    json.dump({"jinja2": jinja2.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
