#!/usr/bin/env bash
# Builds a demo CRM on SQLite (demo/crm.db) with sample data and walks every plugin: value analysis,
# a lead's path to a won deal and the forecast, a credit hold and its release, a marketing campaign
# end to end with the file channel, a service complaint from mail to its return visit and CSAT; then
# prints the 360° view of the lead's company. The demo's ledger covers 2023-2024, so dated reports
# run "as of" January 2025 (AS_OF) and give the same figures whatever today's date is; the lines
# that print "expected refusal" show a guard at work (exit 1), and the script goes on.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf demo && mkdir -p demo
crm() { .venv/bin/crm --database sqlite:///demo/crm.db --user demo "$@"; }
py() { .venv/bin/python -c "$1"; }
expect_refusal() { echo "-- expected refusal: $1"; shift; if crm "$@"; then echo "!! not refused" >&2; exit 1; fi; }
AS_OF=2025-01-15   # the demo's "today": two weeks after its last invoices
section() { printf '\n== %s\n' "$1"; }

cat <<MSG
This demo builds a sample CRM in demo/crm.db and walks through every plugin. Its ledger covers
2023-2024, and its "today" is $AS_OF, so every figure below is the same on any day; only the
times of what the demo does live (a credit release, the complaint's ticket and its SLA due times)
are the real clock's. A line that starts with "-- expected refusal" shows a guard at work: the
command after it is meant to fail.
MSG

section "setup: a database, two users and the sample data (2,000 customers, 2023-2024)"
crm init
crm user add demo --name "Demo Admin" --role admin          # the first user is an admin; every command acts as a user
crm user add anna --name "Anna Berg" --role sales --email anna@example.com
crm demo generate --customers 2000 --transactions 40000 --seed 42

section "value analysis: who brings the revenue (as of the end of the ledger)"
crm plugins enable value_analysis
crm value run --as-of 2025-01-01   # the ledger ends on 2024-12-31
crm value pyramid

section "sales: a lead's path to a won deal, the pipeline and the forecast"
crm plugins enable sales_automation
crm sales demo --deals 200 --leads 60 --seed 42 --as-of "$AS_OF"   # a year of leads and deals on the demo customers
lead=$(crm sales lead add "Jana Novak" --company "Alpine Kitchens GmbH" --email jana@alpine.example.com --source event --owner anna --json | py 'import json,sys; print(json.load(sys.stdin)["id"])')
crm sales lead assess "$lead" --need 5 --volume 4 --power 4 --credibility 3 --authority 5
crm sales lead update "$lead" --status qualified
# a new company: Alpine Kitchens GmbH, with Jana as its contact and the opportunity
converted=$(crm sales lead convert "$lead" --opportunity "Kitchen" --amount 12500 --close 2025-03-31 --json)
alpine=$(echo "$converted" | py 'import json,sys; print(json.load(sys.stdin)["customer_id"])')
jana=$(echo "$converted" | py 'import json,sys; print(json.load(sys.stdin)["contact_id"])')
echo "converted lead $lead into customer $alpine (Alpine Kitchens GmbH), contact $jana (Jana Novak)"
crm interaction log "#$alpine" --channel visit --kind sale --subject "Showroom visit: new kitchen line" --by anna \
    --contact "$jana" --satisfaction 5
crm sales pipeline show
crm sales forecast --by owner

section "credit: a limit, a hold and its release; then scores, dunning and ageing of the whole ledger"
crm plugins enable credit
crm user add carl --name "Carl Credit" --role credit_controller
crm customer add "Credit Demo GmbH" --ref CREDIT-DEMO
crm credit profile set CREDIT-DEMO --limit 10000 --terms 30 --reason "first order"
crm account post CREDIT-DEMO invoice 8000 --ref CD-1
expect_refusal "over the credit limit, with the exposure figures" credit check CREDIT-DEMO 3000
crm credit hold CREDIT-DEMO --reason "cheque bounced"
expect_refusal "the customer is on credit hold" account post CREDIT-DEMO invoice 500 --ref CD-2
crm --user carl credit release CREDIT-DEMO --reason "paid by wire" --days 3
crm account post CREDIT-DEMO invoice 500 --ref CD-2            # posted
crm credit score --all --as-of "$AS_OF"
crm credit dunning run --as-of "$AS_OF"
crm credit aging --limit 5 --as-of "$AS_OF"
crm customer show CREDIT-DEMO

section "marketing: a segment, consent, a campaign sent to files in demo/outbox, its report"
crm plugins enable marketing
crm marketing segment create de-trade --rule 'country = "DE" and tags has "trade" and spend() > 2000'
crm marketing segment preview de-trade --sample 5
for ref in $(crm marketing segment preview de-trade --sample 12 --json | py 'import json,sys; print(" ".join(r["external_ref"] for r in json.load(sys.stdin)["sample"]))'); do
  crm marketing consent set "$ref" email opt_in --source "trade fair form" > /dev/null
done
crm marketing campaign create "Spring kitchens" --channel email --segment de-trade --budget 1500 \
    --control 0.2 --seed 7 --subject 'New kitchen line, {{ customer.name }}' --body 'Dear {{ customer.name }}, come and see it.'
crm marketing campaign cost "Spring kitchens" 650 --ref AGENCY-1
crm marketing campaign launch "Spring kitchens"                # the ones without an opt-in are suppressed
crm marketing campaign send "Spring kitchens" --adapter file --outbox demo/outbox
first=$(ls demo/outbox/campaign-1 | head -n 1 | sed 's/customer-\([0-9]*\).eml/\1/')
crm marketing response record "Spring kitchens" "#$first" clicked
crm marketing campaign report "Spring kitchens"

section "customer service: a complaint from mail to its return visit and CSAT"
crm plugins enable service
crm user add tom --name "Tom Support" --role support_agent
# a complaint arrives by mail (examples/complaint.eml, from Jana, the contact the lead conversion made)
ticket=$(crm service mail --kind complaint --category "product quality" --priority high --json < examples/complaint.eml \
         | py 'import json,sys; print(json.load(sys.stdin)["ticket_id"])')
customer=$(crm service ticket show "$ticket" --json | py 'import json,sys; print(json.load(sys.stdin)["customer_id"])')
crm service ticket assign "$ticket" tom
crm --user tom service ticket note "$ticket" "Called Jana back: a new door is on its way" --reply
crm --user tom service ticket complaint "$ticket" --facts "door cracked in transit" --solution "replace the door" \
    --accepted --apology "Sorry for the trouble"
# Alpine gives its office address and opts in to e-mail, so the CSAT survey can go out through marketing
crm customer update "#$alpine" --email office@alpine.example.com
crm marketing consent set "#$alpine" email opt_in --source "complaint call"
crm --user tom service ticket resolve "$ticket"      # schedules the return visit and queues the CSAT survey
crm service sla check
crm --user tom service visit due --within-days 7
visit=$(crm --user tom service visit due --within-days 7 --json | py 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
crm --user tom service visit done "$visit" --outcome "door replaced, fitters finished" --satisfaction 5
crm --user tom service survey record "#$customer" --csat 5 --ticket "$ticket"
crm service ticket show "$ticket"
crm service report --by category

section "the 360° view of the lead's company (Alpine Kitchens GmbH): contact, visit, deal, complaint, return visit, survey"
crm customer show "#$alpine"

section "passwords for the web console"
echo "demo-password" | crm user password demo          # read from standard input (prompted twice on a terminal)
echo "anna-password" | crm user password anna
cat <<MSG

== done: the demo CRM is in demo/crm.db, the campaign's e-mails in demo/outbox/
Look around on the command line (every command acts as a user):
  .venv/bin/crm --database sqlite:///demo/crm.db --user demo customer show "#$alpine"
  .venv/bin/crm --database sqlite:///demo/crm.db --user demo sales forecast
Or in the browser:
  start the server:  .venv/bin/crm --database sqlite:///demo/crm.db serve --port 8000
  then open:         http://127.0.0.1:8000/console/
  sign in as:        demo / demo-password   (an admin; or anna / anna-password, a sales user)
Run "make demo" again to start over from scratch.
MSG
