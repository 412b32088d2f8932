"""The scenario model: what a scenario is (:class:`Scenario`), what an app sees (:class:`AppView`).

Shared by the catalogue (``scenarios.py``) and the Anthropic scenarios (``anthropic_scenarios.py``),
which ``scenarios.SCENARIOS`` includes; see ``scenarios.py`` for what each field means.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .faults import fault_model


@dataclass(frozen=True)
class AppView:
    """What the app observes with one SDK line. ``None`` means "not checked"."""

    exception: str | None = None  # module-qualified class the app caught, e.g. "openai.APIConnectionError"
    cause: str | None = None  # next class in the chain (__cause__, else __context__)
    events: int | None = None  # stream events the app's loop received
    attempts: int | None = None  # requests the server saw, where this SDK line retries differently
    # Overrides of the scenario-level expectations where this SDK line differs (e.g. 1.x drains after [DONE]).
    outcome: str | None = None
    kb_id: str | None = None
    healthy: bool | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    api: str
    call: str
    fault: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    expected_kb_id: str | None = None
    expected_category: str | None = None
    healthy: bool = False
    expected_outcome: str = "completed"
    expected_terminal_seen: bool = True
    expected_finish_reason: str | None = None  # chat: last choice finish_reason the app saw
    expected_status: str | None = None  # responses / runs / vector store files: final status the app saw
    expected_attempts: int = 1  # requests the server saw for the scenario's faulted call
    gives_up: bool = False  # the driver's deadline ends a never-ending poll loop
    v3: AppView = AppView()
    legacy: AppView = AppView()
    v2: AppView | None = None  # where 2.x already behaves differently from 1.x (measured on 2.54.0)
    timeout: float = 5.0  # client read timeout
    max_retries: int = 0
    request: Mapping[str, Any] = field(default_factory=dict, hash=False)  # extra SDK call kwargs
    app: Mapping[str, Any] = field(default_factory=dict, hash=False)  # driver knobs: break_after, deadline...
    min_sdk: int = 1  # lowest openai major version that has the call
    sdk: str = "openai"  # the SDK the call drives: openai or anthropic

    @property
    def model(self) -> str:
        """The model name that selects this scenario's fault (``fault/NAME;k=v``)."""
        return fault_model(self.fault, **dict(self.params))

    def view(self, sdk_version: str) -> AppView:
        """Expected app view for an installed openai version string (``"3.54.0"``, ``"1.109.1"``).

        An Anthropic scenario reads an anthropic version (``Observation.sdk_version`` is the version of
        the SDK the scenario drove): ``v3`` for anthropic >= 2 (httpx2, wrapped transport errors),
        ``legacy`` for 0.x (httpx, raw transport errors).
        """
        if self.sdk == "anthropic":
            return self.v3 if int(sdk_version.split(".")[0]) >= 2 else self.legacy
        major, minor = (int(x) for x in sdk_version.split(".")[:2])
        if (major, minor) >= (3, 15):
            return self.v3
        if major == 2 and self.v2 is not None:
            return self.v2
        return self.legacy

    def expected_label(self, sdk_version: str | None = None) -> tuple[str | None, str | None]:
        """(kb id, category) the classifier should assign, for one SDK line if it matters."""
        kb = self.expected_kb_id
        if sdk_version is not None:
            view = self.view(sdk_version)
            if view.healthy:
                return None, None
            if view.kb_id:
                kb = view.kb_id
                return kb, _CATEGORY.get(kb, self.expected_category)
        return kb, self.expected_category

    def is_healthy(self, sdk_version: str | None = None) -> bool:
        if sdk_version is not None and self.view(sdk_version).healthy is not None:
            return bool(self.view(sdk_version).healthy)
        return self.healthy

    def attempts(self, sdk_version: str | None = None) -> int:
        """Requests the server should see for the scenario's main call."""
        if sdk_version is not None and self.view(sdk_version).attempts is not None:
            return int(self.view(sdk_version).attempts)  # type: ignore[arg-type]
        return self.expected_attempts

    def outcome(self, sdk_version: str | None = None) -> str:
        if sdk_version is not None and self.view(sdk_version).outcome:
            return str(self.view(sdk_version).outcome)
        return self.expected_outcome


_CATEGORY: dict[str, str] = {}


def S(name: str, description: str, api: str, call: str, fault: str, *, views: dict[str, AppView] | None = None,
      **kw: Any) -> Scenario:
    return Scenario(name=name, description=description, api=api, call=call, fault=fault, **(views or {}), **kw)
