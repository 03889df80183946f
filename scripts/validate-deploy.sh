#!/usr/bin/env bash
# Validates deploy/kubernetes/ as `make test` does: the pipelines ConfigMap is current and holds
# exactly pipelines/*.toml, and every YAML file there is a Kubernetes 1.31 manifest under strict
# schema validation (unknown fields fail), by kubernetes-validate from PyPI (pinned; it bundles
# the schemas, so nothing is fetched at validation time). Kubernetes itself does not run here.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VERSION=1.31.0
VENV="$REPO/.deps/deploy-venv"

say() { printf 'validate-deploy: %s\n' "$*" >&2; }

installed="$("$VENV/bin/pip" show kubernetes-validate 2>/dev/null || true)"
if [[ ! -x "$VENV/bin/kubernetes-validate" ]] || ! grep -qx "Version: $KUBERNETES_VALIDATE_VERSION" <<<"$installed"; then
    say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV"
    python3 -m venv "$VENV"
    timeout 300 "$VENV/bin/pip" install -q --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi

python3 "$REPO/scripts/k8s-pipelines.py" --check
# The ConfigMap's values are the manifests byte for byte (as YAML reads them back).
"$VENV/bin/python" - "$REPO" <<'PY'
import pathlib, sys, yaml
repo = pathlib.Path(sys.argv[1])
data = yaml.safe_load((repo / "deploy/kubernetes/configmap-pipelines.yaml").read_text())["data"]
files = {p.name: p.read_text() for p in sorted((repo / "pipelines").glob("*.toml"))}
assert set(data) == set(files), f"ConfigMap keys {sorted(data)} != pipelines/ {sorted(files)}"
for name, text in files.items():
    want = "\n".join(line.rstrip() for line in text.rstrip("\n").split("\n")) + "\n"
    assert data[name] == want, f"{name} differs in the ConfigMap"
PY
shopt -s nullglob
manifests=("$REPO"/deploy/kubernetes/*.yaml "$REPO"/deploy/kubernetes/*.yml)
"$VENV/bin/kubernetes-validate" --quiet --strict -k "$KUBERNETES_VERSION" "${manifests[@]}"
say "${#manifests[@]} manifests valid for Kubernetes $KUBERNETES_VERSION (strict)"
