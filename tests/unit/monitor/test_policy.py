from intelligent_pipeline.monitor import ResourceMonitor, choose_memory, estimate_need_gb
from intelligent_pipeline.monitor.readings import GpuReading, RamReading, Readings


def _gpu(free: float, total: float = 24.0) -> Readings:
    return Readings(gpu_available=True, reason=None,
                    gpus=(GpuReading("Test GPU", total, total - free, free),),
                    ram=RamReading(64.0, 10.0, 54.0))


def test_levels_follow_free_memory():
    assert choose_memory(12.0, _gpu(20.0))["level"] == "NONE"
    assert choose_memory(12.0, _gpu(8.5))["level"] == "BALANCED"
    assert choose_memory(12.0, _gpu(4.0))["level"] == "AGGRESSIVE"


def test_actions_and_reasons_explain_the_level():
    m = choose_memory(12.0, _gpu(4.0))
    assert "unload_all_models" in m["actions"] and "tiled_vae_decode" in m["actions"]
    assert any("Test GPU" in r for r in m["reasons"])
    assert m["free_gb"] == 4.0 and m["need_gb"] == 12.0


def test_big_images_get_tiled_decode_even_when_memory_fits():
    assert "tiled_vae_decode" in choose_memory(2.0, _gpu(20.0), width=2048, height=2048)["actions"]
    assert choose_memory(2.0, _gpu(20.0), width=512, height=512)["actions"] == []


def test_cpu_only_uses_ram_and_says_so():
    r = Readings(gpu_available=False, reason="NVML found no NVIDIA GPU", ram=RamReading(16.0, 14.5, 1.5))
    m = choose_memory(3.0, r)
    assert m["level"] == "AGGRESSIVE"
    assert "no GPU" in m["reasons"][0] and "NVML found no NVIDIA GPU" in m["reasons"][0]


def test_need_grows_with_size_batch_and_weights():
    small = estimate_need_gb(2 * 1024**3, 0, 512, 512, 1, "sd1")
    assert estimate_need_gb(2 * 1024**3, 0, 1024, 1024, 1, "sd1") > small
    assert estimate_need_gb(2 * 1024**3, 0, 512, 512, 4, "sd1") > small
    assert estimate_need_gb(6 * 1024**3, 0, 512, 512, 1, "sd1") > small + 3.9


def test_live_readings_always_report_ram_and_a_reason_without_gpu():
    r = ResourceMonitor().read()
    d = r.to_dict()
    assert d["ram"]["total_gb"] > 0
    if not d["gpu_available"]:
        assert d["reason"] and d["gpus"] == []
