"""streamtriage.simulator: a fault-injecting OpenAI-compatible server, the scenario catalogue and SDK drivers.

``run_simulator()`` (server), ``scenarios.SCENARIOS`` (catalogue) and ``drivers.run_scenario``
(real SDK runs). The drivers import ``openai``; import them from ``streamtriage.simulator.drivers``.
"""
from .faults import FAULTS, FaultSpec, fault_model
from .server import SimulatorHandle, run_simulator, start_simulator

__all__ = ["FAULTS", "FaultSpec", "SimulatorHandle", "fault_model", "run_simulator", "start_simulator"]
