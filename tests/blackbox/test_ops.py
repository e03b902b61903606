"""Operators' surfaces through the real processes: the audit command's admin check
(users.info is_admin), /metrics on the web role with METRICS_TOKEN, METRICS_PORT on a worker."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.blackbox.harness import free_port, stack, wait_for
from tests.blackbox.test_slack import answer


async def test_audit_is_for_admins_only(tmp_path: Path, empty_db: str, redis_url: str) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        s.slack.users["UADMIN"] = {"is_admin": True}
        await s.serve()
        await s.link_youtube()
        refused = await answer(s, "audit")
        assert refused["text"] == "Only workspace admins can read the audit log.", refused
        since = len(s.slack.calls)
        await s.command("audit", user="UADMIN")
        await wait_for(
            lambda: any("Audit log" in str(c.args.get("text")) for c in s.slack.calls[since:])
        )
        [log] = [c.args for c in s.slack.calls[since:] if "Audit log" in str(c.args.get("text"))]
        assert log["user"] == "UADMIN"  # privately
        assert "@ualice  link yt-" in log["text"], log["text"]


async def test_metrics_on_the_web_role_and_on_a_workers_port(
    tmp_path: Path, empty_db: str, redis_url: str
) -> None:
    async with stack(tmp_path, empty_db, redis_url) as s:
        s.extra_env["METRICS_TOKEN"] = "blackbox-metrics-token"
        await s.serve()
        await answer(s, "help")  # one message, counted
        port = free_port()
        worker = await s.start("worker", METRICS_PORT=str(port))
        auth = {"Authorization": "Bearer blackbox-metrics-token"}
        async with httpx.AsyncClient(timeout=10) as http:
            assert (await http.get(f"{s.base}/metrics")).status_code == 401
            web = await http.get(f"{s.base}/metrics", headers=auth)
            assert web.status_code == 200
            families = {f.name: f for f in text_string_to_metric_families(web.text)}
            assert "socialops_messages" in families and "process_resident_memory_bytes" in families
            counted = [x.value for x in families["socialops_messages"].samples]
            assert sum(counted) >= 1, families["socialops_messages"].samples

            async def served() -> bool:
                try:
                    got = await http.get(f"http://127.0.0.1:{port}/metrics", headers=auth)
                except httpx.TransportError:
                    return False
                return got.status_code == 200

            await wait_for(served, what=worker)
            answered = await http.get(f"http://127.0.0.1:{port}/metrics", headers=auth)
            names = {f.name for f in text_string_to_metric_families(answered.text)}
            assert "socialops_digest_deliveries" in names, sorted(names)
            assert (await http.get(f"http://127.0.0.1:{port}/metrics")).status_code == 401
