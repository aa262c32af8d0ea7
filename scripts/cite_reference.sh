#!/usr/bin/env bash
# Point citations of the reference facts at docs/reference.md (run from the repository root; idempotent).
set -euo pipefail
git ls-files -z -- '*.py' '*.md' '*.yaml' '*.toml' '*.txt' '*.sh' ':!scripts/cite_reference.sh' \
  | xargs -0 sed -i -E \
      -e 's#reference[-]spec(\.md)? §#docs/reference.md §#g' \
      -e 's#reference[-]spec(\.md)? ([0-9]+(\.[0-9]+)*)#docs/reference.md §\2#g'
