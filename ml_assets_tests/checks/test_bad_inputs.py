"""One test per bad input of the corpus: a clear error naming file, partition and rule; the bad
landing file is moved aside byte for byte; nothing reaches the lake; no retries."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from ml_assets.assets.raw import build_raw_assets
from ml_assets.resources.lake import LakeIOManager
from ml_assets.resources.landing_zone import LandingZone
from ml_assets.settings import Settings
from ml_assets.sources.landing_files import land
from ml_assets_tests.bad_inputs import CASES, CORPUS, DAY, BadInput, generate

LANDING_CASES = [c for c in CASES if c.target in ("flights", "weather")]


@pytest.fixture(scope="module")
def good_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("good_landing")
    land(str(base), DAY, DAY)
    return base


def test_committed_corpus_matches_its_generator(tmp_path: Path) -> None:
    written = {p.name: p.read_bytes() for p in generate(tmp_path)}
    committed = {
        p.name: p.read_bytes() for p in CORPUS.iterdir() if p.suffix in (".csv", ".parquet")
    }
    assert set(committed) == set(written)
    for name, data in written.items():
        if name.endswith(".csv"):  # Parquet bytes carry library versions
            assert committed[name] == data, name
    assert all(len(data) < 8_000 for data in committed.values())


@pytest.mark.parametrize("case", LANDING_CASES, ids=[c.name for c in LANDING_CASES])
def test_bad_landing_file_fails_clearly_and_is_kept_aside(
    case: BadInput, good_landing: Path, tmp_path: Path, settings: Settings
) -> None:
    landing = Path(shutil.copytree(good_landing, tmp_path / "landing"))
    target = landing / case.target / f"{DAY}.csv"
    if case.file is None:
        target.unlink()
    else:
        shutil.copyfile(case.file, target)
    bad = target.read_bytes() if target.exists() else None
    lake = tmp_path / "lake"
    raw_flights, raw_weather, _ = build_raw_assets(
        settings.model_copy(update={"landing_base": str(landing), "lake_base": str(lake)})
    )
    asset = raw_flights if case.target == "flights" else raw_weather

    with dg.build_asset_context(partition_key=DAY) as context, pytest.raises(dg.Failure) as info:
        asset(context, landing=LandingZone(base_path=str(landing)))

    failure = info.value
    assert not failure.allow_retries
    text = failure.description or ""
    assert f"{asset.key.to_user_string()}[{DAY}]" in text
    assert str(target) in text and f"partition: {DAY}" in text
    assert case.rule in text, text
    assert not (lake / asset.key.to_user_string()).exists()
    rejected = sorted((landing / "rejected" / case.target).glob(f"{DAY}.*.csv"))
    if bad is None:
        assert rejected == []
    else:
        assert [p.read_bytes() for p in rejected] == [bad]
        assert not target.exists() and str(rejected[0]) in text
        assert failure.metadata["rejected_file"].value == str(rejected[0])


def test_corrupt_parquet_in_the_lake_fails_the_reading_step_without_retries(
    tmp_path: Path,
) -> None:
    (case,) = [c for c in CASES if c.target == "raw_flights"]
    assert case.file is not None
    folder = tmp_path / "raw_flights"
    folder.mkdir()
    stored = folder / f"{DAY}.parquet"
    shutil.copyfile(case.file, stored)
    from upath import UPath

    manager = LakeIOManager(base_path=UPath(tmp_path))
    context = dg.build_input_context(asset_key=dg.AssetKey("raw_flights"), partition_key=DAY)
    with pytest.raises(dg.Failure) as info:
        manager.load_from_path(context, UPath(folder / DAY))
    failure = info.value
    assert not failure.allow_retries
    assert str(stored) in (failure.description or "") and case.rule in (failure.description or "")
    assert f"raw_flights[{DAY}]" in (failure.description or "")
    assert stored.read_bytes() == case.file.read_bytes()
