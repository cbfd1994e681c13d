"""GPU readings through a fake NVML binding: the real one needs an NVIDIA driver."""
from types import SimpleNamespace

from intelligent_pipeline.monitor import ResourceMonitor, choose_memory

GB = 1024 ** 3


class FakeNvml(SimpleNamespace):
    NVML_TEMPERATURE_GPU = 0
    clocksThrottleReasonGpuIdle = 1
    clocksThrottleReasonSwPowerCap = 4
    clocksThrottleReasonHwThermalSlowdown = 64

    def __init__(self, free_gb=10.0, total_gb=24.0, fail_init=None, fan_error=False):
        super().__init__()
        self.free_gb, self.total_gb, self.fail_init, self.fan_error = free_gb, total_gb, fail_init, fan_error
        self.inits = 0

    def nvmlInit(self):
        self.inits += 1
        if self.fail_init:
            raise self.fail_init

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return f"gpu{i}"

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=self.total_gb * GB, free=self.free_gb * GB, used=(self.total_gb - self.free_gb) * GB)

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA Test 24GB"

    def nvmlDeviceGetUtilizationRates(self, h):
        return SimpleNamespace(gpu=42)

    def nvmlDeviceGetTemperature(self, h, kind):
        return 71

    def nvmlDeviceGetPowerUsage(self, h):
        return 250_000  # milliwatts

    def nvmlDeviceGetFanSpeed(self, h):
        if self.fan_error:
            raise RuntimeError("Not Supported")  # passively cooled cards have no fan reading
        return 55

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        return 1 | 4 | 64


def test_gpu_readings_are_complete_and_converted():
    nv = FakeNvml()
    r = ResourceMonitor(lambda: nv).read()
    assert r.gpu_available and r.reason is None
    g = r.primary_gpu
    assert g.name == "NVIDIA Test 24GB" and g.memory_total_gb == 24.0 and g.memory_free_gb == 10.0
    assert (g.utilization_percent, g.temperature_celsius, g.power_watts, g.fan_percent) == (42.0, 71.0, 250.0, 55.0)
    assert g.throttle_reasons == ("software power cap", "hardware thermal slowdown"), "idle is not a throttle"
    d = r.to_dict()
    assert d["gpus"][0]["throttle_reasons"] == ["software power cap", "hardware thermal slowdown"]
    assert d["ram"]["total_gb"] > 0


def test_a_missing_reading_is_none_not_an_error():
    r = ResourceMonitor(lambda: FakeNvml(fan_error=True)).read()
    assert r.gpu_available and r.primary_gpu.fan_percent is None


def test_nvml_is_initialised_once():
    nv = FakeNvml()
    m = ResourceMonitor(lambda: nv)
    m.read()
    m.read()
    assert nv.inits == 1


def test_no_driver_gives_cpu_and_ram_with_the_reason():
    m = ResourceMonitor(lambda: FakeNvml(fail_init=RuntimeError("Driver Not Loaded")))
    r = m.read()
    assert not r.gpu_available and r.gpus == ()
    assert "Driver Not Loaded" in r.reason
    assert r.ram is not None and r.ram.total_gb > 0


def test_missing_binding_says_so():
    def missing():
        raise ImportError("No module named 'pynvml'")
    r = ResourceMonitor(missing).read()
    assert r.reason == "nvidia-ml-py is not installed"


def test_policy_uses_the_gpu_when_there_is_one():
    r = ResourceMonitor(lambda: FakeNvml(free_gb=5.0)).read()
    m = choose_memory(12.0, r)
    assert m["level"] == "AGGRESSIVE" and m["free_gb"] == 5.0
    assert "NVIDIA Test 24GB" in m["reasons"][0]
