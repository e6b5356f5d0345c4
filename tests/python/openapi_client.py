#!/usr/bin/env python3
"""A client of the jobq dashboard that knows nothing of jobq but its OpenAPI document.

    python3 tests/python/openapi_client.py BASE_URL QUEUE [--token T] [--timeout 30]
    python3 tests/python/openapi_client.py BASE_URL --check ANSWERS.json

Reads BASE_URL/api/openapi.json, then, from the document alone: finds the enqueue operation
(operationId `addJobs`), builds a job from its request schema (a `diag.echo` job whose data
is a random marker), sends it, and polls the job-read operation (`getJob`) until a worker
has completed it and returned the marker. Every answer is checked against the response
schema the document gives for its status, and so is every GET operation that needs no
other parameter than the queue and the job. Prints a JSON summary; exits 0 on success,
1 with the reason otherwise.

With --check, checks answers collected elsewhere instead: ANSWERS.json is a list of
`{"operation": operationId, "status": N, "body": ...}`, each held to the schema the
document gives that operation for that status. Needs `requests` and `openapi-schema-validator` (installed
with `openapi-spec-validator`; `scripts/test` installs both).
"""

import argparse
import json
import sys
import time
import uuid

import requests
from openapi_schema_validator import OAS31Validator


class Failure(Exception):
    """What went wrong, for the exit message."""


class Api:
    """The dashboard as its OpenAPI document describes it."""

    def __init__(self, base, token=None):
        self.base = base.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        r = self.session.get(f"{self.base}/api/openapi.json", timeout=30)
        if r.status_code != 200:
            raise Failure(f"GET /api/openapi.json: {r.status_code} {r.text[:200]}")
        self.doc = r.json()
        if not str(self.doc.get("openapi", "")).startswith("3."):
            raise Failure(f"not an OpenAPI 3 document: openapi={self.doc.get('openapi')!r}")

    def operations(self):
        """Every (method, path, operation) of the document."""
        for path, item in self.doc["paths"].items():
            for method, op in item.items():
                if method in ("get", "put", "post", "delete", "patch"):
                    yield method, path, op

    def operation(self, operation_id):
        for method, path, op in self.operations():
            if op.get("operationId") == operation_id:
                return method, path, op
        raise Failure(f"no operation {operation_id!r} in the document")

    def resolve(self, node):
        """`node` with its `$ref` (to this document) followed."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                raise Failure(f"a reference outside the document: {ref}")
            target = self.doc
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node

    def validate(self, what, instance, schema):
        """Checks `instance` against `schema` (references resolved in the document)."""
        # the schema at the root of a copy of the document: `#/components/...` resolve
        root = dict(schema)
        root["components"] = self.doc.get("components", {})
        errors = sorted(OAS31Validator(root).iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            at = "/".join(str(p) for p in e.path) or "(top)"
            raise Failure(f"{what}: at {at}: {e.message}")

    def url(self, path, op, values):
        """The URL of `path` with its path parameters filled in from `values`."""
        for p in op.get("parameters", []):
            p = self.resolve(p)
            if p["in"] == "path":
                if p["name"] not in values:
                    raise Failure(f"no value for path parameter {p['name']} of {path}")
                path = path.replace("{" + p["name"] + "}", requests.utils.quote(values[p["name"]], safe=""))
        return self.base + path

    def check(self, operation_id, status, answer):
        """Holds `answer` to the schema of `operation_id`'s response for `status`."""
        method, path, op = self.operation(operation_id)
        what = f"{method.upper()} {path} ({operation_id}) -> {status}"
        responses = op.get("responses", {})
        documented = responses.get(str(status)) or responses.get("default")
        if documented is None:
            raise Failure(f"{what}: status not in the document ({sorted(responses)}): {answer}")
        content = self.resolve(documented).get("content", {}).get("application/json")
        if not content or "schema" not in content:
            raise Failure(f"{what}: no JSON schema documented")
        self.validate(what, answer, content["schema"])

    def call(self, operation_id, values, body=None):
        """Calls an operation; checks the answer against the documented response."""
        method, path, op = self.operation(operation_id)
        r = self.session.request(method.upper(), self.url(path, op, values), json=body, timeout=30)
        try:
            answer = r.json()
        except ValueError:
            raise Failure(f"{method.upper()} {path} -> {r.status_code}: not JSON: {r.text[:200]}")
        self.check(operation_id, r.status_code, answer)
        return r.status_code, answer


def build_job(api, marker):
    """A job body built from the enqueue operation's request schema."""
    _, path, op = api.operation("addJobs")
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    # one job, or an array of them: take the object form
    choices = api.resolve(schema)
    choices = choices.get("oneOf") or choices.get("anyOf") or [choices]
    job_schema = next(
        (api.resolve(c) for c in choices if api.resolve(c).get("type") == "object"), None
    )
    if job_schema is None:
        raise Failure(f"no object form of a job in the request schema of {path}")
    props = job_schema.get("properties", {})
    for field in ("name", "data", "opts"):
        if field not in props:
            raise Failure(f"the job schema has no {field!r}: {sorted(props)}")
    opts_props = api.resolve(props["opts"]).get("properties", {})
    if "attempts" not in opts_props:
        raise Failure(f"the options schema has no 'attempts': {sorted(opts_props)}")
    job = {"name": "diag.echo", "data": {"marker": marker}, "opts": {"attempts": 2}}
    missing = [f for f in job_schema.get("required", []) if f not in job]
    if missing:
        raise Failure(f"the job schema requires fields this client does not know: {missing}")
    api.validate("the built job", job, schema)
    return job


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base_url")
    ap.add_argument("queue", nargs="?")
    ap.add_argument("--token")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--check", metavar="ANSWERS.json")
    args = ap.parse_args()

    api = Api(args.base_url, args.token)
    if args.check:
        with open(args.check) as f:
            answers = json.load(f)
        for a in answers:
            api.check(a["operation"], a["status"], a["body"])
        print(json.dumps({"checked": len(answers)}))
        return
    if not args.queue:
        ap.error("give the QUEUE to enqueue in (or --check)")
    marker = uuid.uuid4().hex
    job = build_job(api, marker)
    status, added = api.call("addJobs", {"queue": args.queue}, job)
    if status != 201 or not added.get("id"):
        raise Failure(f"enqueue answered {status}: {added}")
    job_id = added["id"]

    deadline = time.monotonic() + args.timeout
    states = []
    while True:
        status, shown = api.call("getJob", {"queue": args.queue, "id": job_id})
        if status != 200:
            raise Failure(f"reading job {job_id}: {status} {shown}")
        if not states or states[-1] != shown["state"]:
            states.append(shown["state"])
        if shown["state"] == "completed":
            break
        if shown["state"] == "failed":
            raise Failure(f"job {job_id} failed: {shown.get('failed_reason')}")
        if time.monotonic() > deadline:
            raise Failure(f"job {job_id} not completed within {args.timeout}s (states {states})")
        time.sleep(0.1)
    if shown.get("return_value") != {"marker": marker}:
        raise Failure(f"job {job_id} returned {shown.get('return_value')!r}, not the marker")

    # every read that needs nothing but the queue and the job answers what the document says
    checked = []
    for method, path, op in api.operations():
        params = [api.resolve(p) for p in op.get("parameters", [])]
        if method != "get" or any(p.get("required") and p["name"] not in ("queue", "id") for p in params):
            continue
        if "{id}" in path and op["operationId"] != "getJob":
            continue
        # (JSON reads only: /metrics is Prometheus text, /events a stream that never ends)
        ok = api.resolve(op.get("responses", {}).get("200", {}))
        if "application/json" not in ok.get("content", {}):
            continue
        status, _ = api.call(op["operationId"], {"queue": args.queue, "id": job_id})
        if status >= 300:
            raise Failure(f"GET {path} answered {status}")
        checked.append(op["operationId"])

    print(json.dumps({"id": job_id, "states": states, "checked": sorted(checked)}))


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"openapi_client: {e}", file=sys.stderr)
        sys.exit(1)
