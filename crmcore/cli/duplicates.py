"""`crm customer duplicates`: likely duplicate customers, with the evidence and a score."""
from __future__ import annotations

import click

from crmcore.cli.context import AppContext, pass_app
from crmcore.cli.output import emit_json, table


def register(group: click.Group) -> None:
    group.add_command(customer_duplicates)


@click.command("duplicates")
@click.option("--threshold", type=click.FloatRange(0.01, 1.0), default=None,
              help="lowest score listed (default: [duplicates] scan_threshold, 0.7)")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
def customer_duplicates(app: AppContext, threshold: float | None, limit: int, as_json: bool) -> None:
    """List pairs of active customers that look like one (same e-mail, phone digits, or a similar
    name), best first; merge one with `crm customer merge A --into B` (add --dry-run to preview)."""
    from crmcore.models import Customer
    from crmcore.services import duplicates

    with app.crm().unit_of_work(app.actor, read_only=True) as uow:
        report = duplicates.scan_report(uow, threshold=threshold, limit=limit)
        found = report.pairs
        ids = {i for c in found for i in (c.a, c.b)}
        names = dict(uow.session.query(Customer.id, Customer.name).filter(Customer.id.in_(ids)).all()) if ids else {}
    for skipped in report.skipped:  # on stderr: --json keeps its list on stdout
        click.echo(f"note: {skipped}", err=True)
    if as_json:
        emit_json([{**c.as_dict(), "a_name": names.get(c.a), "b_name": names.get(c.b)} for c in found])
        return
    if not found:
        click.echo("no likely duplicates")
        return
    table(f"{len(found)} likely duplicate pair(s)", ["score", "customer", "name", "customer", "name", "evidence"],
          [[f"{c.score:.2f}", f"#{c.a}", names.get(c.a), f"#{c.b}", names.get(c.b), "; ".join(c.evidence)]
           for c in found])
