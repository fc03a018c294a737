"""The README's "Customer service" tour runs as written, in a shell, against a fresh database.

The block is taken from README.md itself (so the tour cannot drift from the code); the lines
before it are the tour's set-up it relies on (ALP with its contact Jana, the admin boss).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[3]
SETUP = """set -euo pipefail
crm init
crm user add boss --name "Bea Boss" --role admin
export CRM_USER=boss
crm customer add "Alpine Kitchens GmbH" --email info@alpine.example.com --country DE --ref ALP
crm contact add ALP "Jana Novak" --role decider --email jana@alpine.example.com
"""


def service_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Customer service", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_readme_service_tour_runs(tmp_path: Path, empty_database_url: str) -> None:
    venv = Path(sys.executable).parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", VIRTUAL_ENV=str(ROOT / ".venv"), CRM_DATABASE_URL=empty_database_url)
    script = SETUP + service_block()
    assert "crm service mail" in script and "examples/complaint.eml" in script
    res = subprocess.run(["bash", "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Traceback" not in res.stdout + res.stderr
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as c:
            t = c.execute(text("select kind, category, priority, status, channel, description, first_response_at, "
                               "facts from service_tickets")).one()
            visit = c.execute(text("select done_at, satisfaction from service_visits")).one()
            csat = c.execute(text("select kind, score, ticket_id from service_survey_answers")).all()
    finally:
        engine.dispose()
    assert (t.kind, t.category, t.status, t.channel) == ("complaint", "product quality", "resolved", "email")
    assert "cracked" in t.description and "alert" not in t.description and "cabinet-door.jpg" in t.description
    assert t.first_response_at is not None and t.facts == "door cracked in transit"
    assert visit.done_at is not None and visit.satisfaction == 5
    assert [tuple(r) for r in csat] == [("csat", 5, 1)]
    assert "Service" in res.stdout and "product quality" in res.stdout
