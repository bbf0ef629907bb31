"""Commands stay quiet: the Beta/Preview APIs we chose do not warn, any other one still does."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import dagster as dg
import pytest

from ml_assets import dagster_warnings
from ml_assets.definitions import build_defs
from ml_assets.settings import Settings

BIN = Path(sys.executable).parent
NOISE = ("BetaWarning", "PreviewWarning")


def _settings(root: Path) -> Settings:
    return Settings.from_env({"ML_ASSETS_ROOT": str(root)})


def _built_with_warnings(root: Path, quiet: bool) -> list[warnings.WarningMessage]:
    """Every warning building and resolving the definitions emits (pytest's filters set aside)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        if quiet:
            dagster_warnings.install()
        defs = build_defs(_settings(root))
        dg.Definitions.validate_loadable(defs)
        defs.get_repository_def().get_all_jobs()
    return [w for w in caught if issubclass(w.category, (dg.BetaWarning, dg.PreviewWarning))]


def test_building_the_definitions_emits_no_beta_or_preview_warning(tmp_path: Path) -> None:
    shown = _built_with_warnings(tmp_path, quiet=True)
    assert not shown, "\n".join(f"{w.category.__name__}: {w.message}" for w in shown)


def test_every_filter_hides_a_warning_the_definitions_really_emit(tmp_path: Path) -> None:
    """No stale filter: each chosen API is still in use (else drop it from ``CHOSEN``)."""
    emitted = {(w.category, str(w.message)) for w in _built_with_warnings(tmp_path, quiet=False)}
    for category, message in dagster_warnings.CHOSEN:
        assert any(c is category and m.startswith(message) for c, m in emitted), message


def test_a_beta_api_we_did_not_choose_still_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("always")
        dagster_warnings.install()

        @dg.asset(resource_defs={"unused": dg.ResourceDefinition.none_resource()})
        def beta_resource_defs() -> None: ...

        # a chosen message under another category is not ours either
        warnings.warn(dagster_warnings.CHOSEN[2][1], dg.BetaWarning, stacklevel=1)
    shown = [str(w.message) for w in caught if w.category is dg.BetaWarning]
    assert any(m.startswith("Parameter `resource_defs` of function `asset`") for m in shown)
    assert dagster_warnings.CHOSEN[2][1] in shown


def _quiet_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    return env | {"DAGSTER_HOME": str(home), "ML_ASSETS_ROOT": str(tmp_path)}


@pytest.mark.parametrize(
    "command",
    [
        ["ml-assets", "blast-radius", "--asset", "raw_flights", "--partition", "2013-01-05"],
        ["dagster", "asset", "list", "-m", "ml_assets.definitions"],
    ],
    ids=["ml-assets", "dagster"],
)
def test_commands_that_load_the_definitions_print_no_beta_or_preview_warning(
    tmp_path: Path, command: list[str]
) -> None:
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=tmp_path,
        env=_quiet_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "raw_flights" in done.stdout, output
    noisy = [line for line in output.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, "\n".join(noisy)
