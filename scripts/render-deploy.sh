#!/usr/bin/env bash
# Renders deploy/ (the kustomize install, `kubectl apply -k deploy/`) from the Helm chart, so the
# two never drift: the chart is the one source; each template becomes the deploy/ file of the
# same name. Rendered with the chart's default values, plus the release's Namespace (restricted
# Pod Security) and a placeholder IRSA role to replace. tests/deploy.rs renders into a temporary
# folder and fails when deploy/ differs.
#   scripts/render-deploy.sh          # rewrite deploy/*.yaml after changing charts/simseries
#   scripts/render-deploy.sh DIR      # write the files into DIR instead
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${SIMSERIES_K8S_TOOLS:-$(scripts/k8s-tools.sh)}"
out="${1:-deploy}"
mkdir -p "$out"
"$tools/helm" template simseries charts/simseries --namespace simseries-system \
    --set namespace.create=true \
    --set serviceAccount.roleArn=arn:aws:iam::123456789012:role/simseries-controller |
    awk -v out="$out" '
        /^---$/ { next }
        /^# Source: simseries\/templates\// {
            name = substr($0, length("# Source: simseries/templates/") + 1)
            file = out "/" name
            blank = 0
            if (file in seen) {
                print "---" > file
            } else {
                seen[file] = 1
                print "# Rendered from charts/simseries/templates/" name " by scripts/render-deploy.sh:" > file
                print "# edit the chart, then run the script." > file
            }
            next
        }
        # Blank lines only between others: none at the end of a file.
        /^$/ { blank++; next }
        { while (blank > 0) { print "" > file; blank-- }; print > file }
    '
