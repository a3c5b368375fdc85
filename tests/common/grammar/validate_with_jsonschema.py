"""Validates grammar_property_test's generated outputs with Python's `jsonschema`.

Input: a JSONL file, one {"schema": ..., "outputs": [text, ...]} per line. Every output must parse
with json.loads and validate against its schema (Draft 2020-12). Exit status 1 on any failure.
"""
import json
import sys

import jsonschema


def main(path):
    failures, checked = 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            sample = json.loads(line)
            validator = jsonschema.Draft202012Validator(sample["schema"])
            for text in sample["outputs"]:
                checked += 1
                try:
                    validator.validate(json.loads(text))
                except (ValueError, jsonschema.ValidationError) as e:
                    failures += 1
                    print(f"FAIL {text!r} against {json.dumps(sample['schema'])}: {e}")
    print(f"jsonschema: {checked - failures} of {checked} outputs valid")
    return 1 if failures or checked == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
