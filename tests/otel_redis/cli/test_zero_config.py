"""No configuration at all: ``otel-redis serve`` on its embedded Redis generates a token into its data
folder, and the recipes, run from the same place, find it there (the README's two-command setup)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.servers import free_port, run_service

from .conftest import cli_env, one_error_line, run_just


def test_recipes_use_the_token_the_service_generated(tmp_path):
    data = tmp_path / "data"
    argv = [str(Path(sys.executable).parent / "otel-redis"), "serve", "--port", "{port}", "--no-otlp"]
    port = free_port()
    with run_service(argv, env={"OTEL_REDIS_DATA_DIR": str(data)}, port=port, tmp_path=tmp_path, name="zero") as service:
        assert (data / "api-token").is_file()
        env = cli_env(data, OTEL_REDIS_API_URL=service.base_url)
        done = run_just("logs-test", env=env)
        assert done.returncode == 0, done.stderr
        assert "ok: yes" in done.stdout
        # another data folder has no token: the service answers 401, the recipe says so in one line
        done = run_just("logs-errors", env=cli_env(tmp_path / "elsewhere", OTEL_REDIS_API_URL=service.base_url))
        assert done.returncode == 4
        assert "no token was sent" in one_error_line(done)
