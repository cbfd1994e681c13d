"""GPU/CPU/RAM readings and the memory policy (pure Python; NVML and psutil are optional)."""
from .policy import choose_memory, estimate_need_gb
from .readings import CpuReading, GpuReading, RamReading, Readings, ResourceMonitor

__all__ = ["ResourceMonitor", "Readings", "GpuReading", "CpuReading", "RamReading", "choose_memory", "estimate_need_gb"]
