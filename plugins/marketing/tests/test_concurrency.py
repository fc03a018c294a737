"""Several processes sending the same campaign at once: everyone is contacted exactly once."""
from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import crm_marketing.plugin as PLUGIN
from crm_marketing import delivery, services
from crm_marketing.models import Target
from crm_marketing.schemas import CampaignCreate, ConsentSet
from crm_marketing.testing import Shop
from sqlalchemy import func, select

from crmcore import CRM
from crmcore.models import Interaction


def _send(url: str, outbox: str, results: mp.Queue[int]) -> None:
    crm = CRM.open(url, plugins=[PLUGIN], entry_points=False, config={"marketing": {"send_batch": 3}})
    try:
        results.put(delivery.send(crm, "worker", "Rush", "file", outbox=Path(outbox)).sent)
    finally:
        crm.close()


def test_parallel_senders_contact_each_customer_once(crm_url: str, mcrm: CRM, tmp_path: Path) -> None:
    shop = Shop(mcrm)
    ids = [shop.customer(f"Q{i}", country="DE") for i in range(40)]
    with mcrm.unit_of_work("test") as uow:
        for i in ids:
            services.set_consent(uow, i, ConsentSet(channel="email", status="opt_in"))
        services.create_segment(uow, "de", rule='country = "DE"')
        services.launch(uow, services.create_campaign(uow, CampaignCreate(name="Rush", channel="email", segments=["de"])))
    ctx = mp.get_context("spawn")
    results: mp.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_send, args=(crm_url, str(tmp_path), results)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    sent = [results.get(timeout=5) for _ in procs]
    assert sum(sent) == 40
    assert len(list((tmp_path / "campaign-1").glob("*.eml"))) == 40
    with mcrm.unit_of_work("test", read_only=True) as uow:
        assert uow.session.scalar(select(func.count()).select_from(Interaction).where(Interaction.source == "marketing")) == 40
        assert uow.session.scalar(select(func.count()).select_from(Target).where(Target.status == "sent")) == 40
