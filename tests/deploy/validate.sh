#!/usr/bin/env bash
# Validates the deployment artefacts offline:
#  - deploy/kubernetes/*.yaml against the Kubernetes OpenAPI schemas shipped inside the PyPI
#    package kubernetes-validate (strict: unknown fields fail), for the oldest and newest
#    Kubernetes versions we target;
#  - deploy/compose.yaml against the Compose Specification schema vendored by check-jsonschema.
# Both tools and their schemas are installed from PyPI into target/ci-tools (the venv .ci/run
# uses for hadolint); validation itself makes no network request.
# That the manifests agree with the server (ports, probe paths, environment names, commands)
# is checked by the integration test tests/api/deploy.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLS=target/ci-tools
K8S_VERSIONS=(1.30.0 1.34.0)

if [[ ! -x "$TOOLS/bin/pip" ]]; then
  python3 -m venv "$TOOLS"
fi
"$TOOLS/bin/pip" install -q --disable-pip-version-check \
  'kubernetes-validate==1.37.0' 'check-jsonschema==0.39.0'

shopt -s nullglob
manifests=(deploy/kubernetes/*.yaml)
if (( ${#manifests[@]} == 0 )); then
  echo "no manifests under deploy/kubernetes" >&2
  exit 1
fi

for v in "${K8S_VERSIONS[@]}"; do
  echo "--> kubernetes-validate --strict -k $v"
  "$TOOLS/bin/kubernetes-validate" --strict --quiet -k "$v" "${manifests[@]}"
done

echo "--> compose specification"
"$TOOLS/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml

echo "deployment artefacts valid: ${#manifests[@]} manifests, 1 compose file"
