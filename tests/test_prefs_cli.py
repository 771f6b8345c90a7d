"""``prectr prefs mine | publish | lookup`` end to end through the Typer app."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from preference_cache import keys
from preference_cache.cli import app
from preference_cache.storage import load_mined
from preference_cache.synthetic import write_toy_logs

runner = CliRunner()


def test_mine_writes_the_file_and_reports_rows_per_second(tmp_path: Path) -> None:
    data = write_toy_logs(tmp_path / "data", requests=500, users=60, queries=20)
    result = runner.invoke(
        app, ["mine", "--data", str(data), "--out", str(tmp_path / "mined"), "--history-len", "4"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rows"] > 0 and summary["rows_per_s"] > 0 and len(summary["namespace"]) == 16
    assert (tmp_path / "mined" / "meta.json").is_file()


def test_mine_names_a_wrong_data_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["mine", "--data", str(tmp_path), "--out", str(tmp_path / "m")])
    flat = " ".join(result.output.replace("│", " ").split())  # undo rich's box and line wrapping
    assert result.exit_code == 2 and "meta.json not found" in flat


@pytest.mark.redis
def test_publish_then_lookup_through_the_cli(tmp_path: Path, redis_url: str) -> None:
    data = write_toy_logs(tmp_path / "data", requests=500, users=60, queries=20)
    mined = tmp_path / "mined"
    assert runner.invoke(app, ["mine", "--data", str(data), "--out", str(mined)]).exit_code == 0
    prefix = f"prectr-cli-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(redis_url)
    try:
        args = ["publish", "--in", str(mined), "--redis", redis_url, "--prefix", prefix, "--chunk", "7"]
        first = runner.invoke(app, args)
        assert first.exit_code == 0, first.output
        report = json.loads(first.output[first.output.index("{") :])
        assert report["flipped"] and report["records_written"] > 0
        assert client.get(keys.pointer_key(prefix)).decode() == report["namespace"]
        again = json.loads(runner.invoke(app, args).output)
        assert (again["records_written"], again["flipped"]) == (0, False)
        stored = load_mined(mined)
        query, user = stored.query_norm[0], str(stored.user_id[0])
        looked = runner.invoke(
            app, ["lookup", "--from", redis_url, "--prefix", prefix, "--query", query, "--user", user]
        )
        assert json.loads(looked.output)["query_outcome"] == "hit"
        assert json.loads(looked.output)["user_outcome"] == "hit"
        local = runner.invoke(
            app, ["lookup", "--from", str(mined), "--query", "no such query", "--user", user]
        )
        assert json.loads(local.output)["query_outcome"] == "miss"
    finally:
        for key in client.scan_iter(match=f"{prefix}:*"):
            client.delete(key)
        client.close()
