"""A real systemd as PID 1 anywhere: the try-it-anywhere mode and every integration test."""

from bindrop.machine.layout import MachineLayout, validate_machine_name
from bindrop.machine.machine import Machine, MachineState, MachineStatus, list_machines

__all__ = [
    "Machine",
    "MachineLayout",
    "MachineState",
    "MachineStatus",
    "list_machines",
    "validate_machine_name",
]
