"""Plans a series and writes its inputs with the original workflow's own functions.

Usage: original.py SERIES_YAML OUTPUT_FOLDER DATE

What the `run_batch_simulations` flow does before it submits anything, for each group in the
order of `groups`: load the manifest (io-collection `load_dataframe`), find the missing and
incomplete runs (container-collection `find_missing_conditions`), pack ARCADE seed ranges
(arcade-collection `group_template_conditions`), render the template
(container-collection `generate_input_contents`) and save each input (io-collection
`save_text`) as `{name}/{date}/inputs/{groupKey}_{index}.xml` under OUTPUT_FOLDER.

The functions are the installed packages' own modules, unchanged. Only the packages'
`__init__` files are skipped: they wrap every function in a Prefect task, which needs a Prefect
server and its dependencies; calling the functions directly leaves out Prefect's own overhead,
which favours the original in the comparison.
"""

import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path


ROOTS = {}


def leaf(module):
    """Imports `package.sub.module` without running the packages' `__init__` files."""
    parts = module.split(".")
    if parts[0] not in ROOTS:
        ROOTS[parts[0]] = Path(importlib.util.find_spec(parts[0]).submodule_search_locations[0])
    for depth in range(1, len(parts)):
        name = ".".join(parts[:depth])
        if name not in sys.modules:
            package = types.ModuleType(name)
            package.__path__ = [str(ROOTS[parts[0]].joinpath(*parts[1:depth]))]
            sys.modules[name] = package
    return importlib.import_module(module)


load_dataframe = leaf("io_collection.load.load_dataframe").load_dataframe
load_text = leaf("io_collection.load.load_text").load_text
save_text = leaf("io_collection.save.save_text").save_text
find_missing_conditions = leaf(
    "container_collection.manifest.find_missing_conditions"
).find_missing_conditions
generate_input_contents = leaf(
    "container_collection.template.generate_input_contents"
).generate_input_contents
group_template_conditions = leaf(
    "arcade_collection.input.group_template_conditions"
).group_template_conditions


def main():
    path, output, date = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    spec = json.loads(path.read_text())["spec"]
    context, series, parameters = spec["context"], spec["series"], spec["parameters"]
    base = path.parent
    name = series["name"]
    manifest = load_dataframe(str(base / context["manifestLocation"]), series["manifestKey"])
    template = load_text(str(base / context["templateLocation"]), series["templateKey"])
    groups = series.get("groups") or {"_": ""}
    inputs = 0
    for group, description in groups.items():
        if description is None:
            continue
        group_key = name if group == "_" else f"{name}_{group}"
        conditions = [
            c for c in series["conditions"] if group == "_" or c.get("group") == group
        ]
        missing = find_missing_conditions(
            manifest, name, conditions, series["seeds"], series["extensions"]
        )
        if not missing:
            continue
        if parameters["model"].upper() == "ARCADE":
            sets = group_template_conditions(missing, parameters.get("seedsPerJob", 1))
        else:
            sets = missing
        for index, content in enumerate(generate_input_contents(template, sets)):
            save_text(output, f"{name}/{date}/inputs/{group_key}_{index}.xml", content)
            inputs += 1
    print(json.dumps({"inputs": inputs}))


if __name__ == "__main__":
    main()
