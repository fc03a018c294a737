#!/usr/bin/env bash
# Builds a demo CRM on SQLite (demo/crm.db) with sample data and prints a customer's 360° view.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf demo && mkdir -p demo
crm() { .venv/bin/crm --database sqlite:///demo/crm.db --user demo "$@"; }

crm init
crm user add anna --name "Anna Berg" --role sales --email anna@example.com
crm demo generate --customers 2000 --transactions 40000 --seed 42
crm plugins enable value_analysis
crm value run --as-of 2025-01-01   # the demo data covers 2023-2024
crm value pyramid
# the customer who owes us the most
top=$(crm account list --json | .venv/bin/python -c 'import json,sys; a=json.load(sys.stdin); print(max(a, key=lambda x: float(x["balance"]))["customer_id"])')
crm interaction log "$top" --channel visit --kind sale --subject "Showroom visit: new kitchen line" --by anna --satisfaction 5
crm customer show "$top"
