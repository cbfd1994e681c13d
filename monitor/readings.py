"""Live GPU/CPU/RAM readings.

NVML (`nvidia-ml-py`) is imported lazily and fails soft: no driver, no GPU or an AMD/Apple
machine still get CPU and RAM readings, with the reason the GPU part is empty.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

GB = 1024 ** 3


@dataclass(frozen=True)
class GpuReading:
    name: str
    memory_total_gb: float
    memory_used_gb: float
    memory_free_gb: float
    utilization_percent: float | None = None
    temperature_celsius: float | None = None
    power_watts: float | None = None
    fan_percent: float | None = None
    throttle_reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class CpuReading:
    usage_percent: float | None
    temperature_celsius: float | None
    frequency_mhz: float | None


@dataclass(frozen=True)
class RamReading:
    total_gb: float
    used_gb: float
    available_gb: float


@dataclass(frozen=True)
class Readings:
    gpu_available: bool
    reason: str | None
    gpus: tuple[GpuReading, ...] = field(default_factory=tuple)
    cpu: CpuReading | None = None
    ram: RamReading | None = None

    @property
    def primary_gpu(self) -> GpuReading | None:
        return self.gpus[0] if self.gpus else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu_available": self.gpu_available,
            "reason": self.reason,
            "gpus": [dict(asdict(g), throttle_reasons=list(g.throttle_reasons)) for g in self.gpus],
            "cpu": asdict(self.cpu) if self.cpu else None,
            "ram": asdict(self.ram) if self.ram else None,
        }


_THROTTLE_NAMES = {
    "clocksThrottleReasonGpuIdle": "idle",
    "clocksThrottleReasonApplicationsClocksSetting": "applications clocks setting",
    "clocksThrottleReasonSwPowerCap": "software power cap",
    "clocksThrottleReasonHwSlowdown": "hardware slowdown",
    "clocksThrottleReasonSwThermalSlowdown": "software thermal slowdown",
    "clocksThrottleReasonHwThermalSlowdown": "hardware thermal slowdown",
    "clocksThrottleReasonHwPowerBrakeSlowdown": "hardware power brake",
}


def _import_nvml() -> Any:
    import pynvml  # provided by nvidia-ml-py

    return pynvml


class ResourceMonitor:
    """Takes readings on demand. Thread-safe; NVML is initialised once, on first use.

    `nvml_loader` returns the NVML binding (`pynvml` from nvidia-ml-py by default); tests hand in
    a fake one."""

    def __init__(self, nvml_loader: Callable[[], Any] = _import_nvml) -> None:
        self._load_nvml = nvml_loader
        self._lock = threading.Lock()
        self._nvml: Any = None
        self._nvml_error: str | None = None
        self._nvml_tried = False

    def _init_nvml(self) -> None:
        if self._nvml_tried:
            return
        self._nvml_tried = True
        try:
            pynvml = self._load_nvml()
            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() == 0:
                self._nvml_error = "NVML found no NVIDIA GPU"
                return
            self._nvml = pynvml
        except ImportError:
            self._nvml_error = "nvidia-ml-py is not installed"
        except Exception as e:  # NVMLError: no driver, no device, container without GPU
            self._nvml_error = f"no NVIDIA GPU readings: {e}"
        if self._nvml_error:
            log.info("GPU monitor: %s; reporting CPU and RAM only", self._nvml_error)

    def _gpu_readings(self) -> list[GpuReading]:
        nv = self._nvml
        out = []
        for i in range(nv.nvmlDeviceGetCount()):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            mem = nv.nvmlDeviceGetMemoryInfo(h)
            name = nv.nvmlDeviceGetName(h)
            if isinstance(name, bytes):
                name = name.decode("utf-8", "replace")
            out.append(GpuReading(
                name=name,
                memory_total_gb=round(mem.total / GB, 3),
                memory_used_gb=round(mem.used / GB, 3),
                memory_free_gb=round(mem.free / GB, 3),
                utilization_percent=_soft(lambda h=h: float(nv.nvmlDeviceGetUtilizationRates(h).gpu)),
                temperature_celsius=_soft(lambda h=h: float(nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU))),
                power_watts=_soft(lambda h=h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0),
                fan_percent=_soft(lambda h=h: float(nv.nvmlDeviceGetFanSpeed(h))),
                throttle_reasons=tuple(_soft(lambda h=h: _throttle_reasons(nv, h)) or ()),
            ))
        return out

    def read(self) -> Readings:
        with self._lock:
            self._init_nvml()
            gpus: list[GpuReading] = []
            reason = self._nvml_error
            if self._nvml is not None:
                try:
                    gpus = self._gpu_readings()
                except Exception as e:
                    reason = f"NVML reading failed: {e}"
                    log.warning("GPU monitor: %s", reason)
        return Readings(gpu_available=bool(gpus), reason=None if gpus else reason,
                        gpus=tuple(gpus), cpu=_cpu(), ram=_ram())


def _soft(fn: Any) -> Any:
    try:
        return fn()
    except Exception:
        return None


def _throttle_reasons(nv: Any, h: Any) -> list[str]:
    mask = nv.nvmlDeviceGetCurrentClocksThrottleReasons(h)
    return [label for attr, label in _THROTTLE_NAMES.items()
            if getattr(nv, attr, 0) and mask & getattr(nv, attr) and label != "idle"]


def _cpu() -> CpuReading | None:
    try:
        import psutil
    except ImportError:
        return None
    temp = None
    try:
        temps = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
        for entries in temps.values():
            if entries:
                temp = float(entries[0].current)
                break
    except Exception:
        temp = None
    freq = _soft(lambda: float(psutil.cpu_freq().current))
    return CpuReading(usage_percent=_soft(lambda: float(psutil.cpu_percent(interval=None))),
                      temperature_celsius=temp, frequency_mhz=freq)


def _ram() -> RamReading | None:
    try:
        import psutil
    except ImportError:
        return None
    vm = psutil.virtual_memory()
    return RamReading(total_gb=round(vm.total / GB, 3), used_gb=round((vm.total - vm.available) / GB, 3),
                      available_gb=round(vm.available / GB, 3))
