"""What a daily asset's ``compute(day, inputs, ctx)`` sees of its step for one day."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import dagster as dg

    from ml_assets.checks.contracts import ContractGate
    from ml_assets.checks.schemas import Params
    from ml_assets.settings import Settings


@dataclass
class DayContext:
    """What ``compute`` sees of its step for one day.

    ``shared``: one dict per step, shared by its days in day order (what a range run's earlier
    days leave for the later ones). ``dagster``: the step's own context, for the bodies that need
    Dagster itself (checkpoints watching the run, lineage from the instance); prefer the rest.
    """

    day: str
    settings: Settings
    resources: Mapping[str, Any]
    shared: dict[str, Any]
    dagster: dg.AssetExecutionContext
    metadata: dict[str, Any] = field(default_factory=dict)
    _gate: ContractGate | None = None
    _params: Params | None = None

    @property
    def log(self) -> Any:
        return self.dagster.log

    def add_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Record ``metadata`` on the day's materialization."""
        self.metadata.update(metadata)

    def check(self, contract: str, frame: Any) -> Any:
        """``frame`` checked against another contract on the way (a raw asset's landed rows),
        with the same parameters as the spec's; returns the rows kept."""
        return self._contract_gate().check(contract, frame, self._params)  # type: ignore[arg-type]

    def refuse(self, rule: str, detail: str) -> NoReturn:
        """Fail the day on a table rule checked outside the contracts (``volume_drop``)."""
        self._contract_gate().refuse(rule, detail)

    def _contract_gate(self) -> ContractGate:
        if self._gate is None:
            raise TypeError(f"{self.dagster.op_def.name}: its spec declares no contract")
        return self._gate


Compute = Callable[[str, dict[str, Any], DayContext], Any]
