#!/usr/bin/env bash
# Type-check the core, every plugin package and every example plugin, one package at a time.
#
# Each plugin is checked by its directory (`mypy plugins/credit/crm_credit`): `mypy -p crm_credit`
# does not find the editable installs. Settings come from pyproject.toml ([tool.mypy]).
# Exit 0 only if every package is clean; the summary names the ones that are not.
# Usage: scripts/mypy_all.sh [extra mypy arguments]    (MYPY=... to use another mypy)
set -uo pipefail
cd "$(dirname "$0")/.."

MYPY="${MYPY:-.venv/bin/mypy}"
targets=(crmcore)
for dir in plugins/*/crm_* examples/*/crm_*; do
  [ -f "$dir/__init__.py" ] && targets+=("$dir")
done

failed=()
for target in "${targets[@]}"; do
  echo "== mypy $target"
  if ! "$MYPY" "$@" "$target"; then
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -ne 0 ]; then
  echo "FAIL: mypy found errors in ${#failed[@]} of ${#targets[@]} packages: ${failed[*]}"
  exit 1
fi
echo "OK: mypy clean on ${#targets[@]} packages"
