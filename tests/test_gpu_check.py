"""The device check script runs its real code paths (here on a small model, on the CPU)."""

import importlib.util
from pathlib import Path


def test_the_gpu_check_runs_end_to_end_on_a_small_model(capsys):
    path = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--device", "cpu", "--small", "--prompts", "2", "--group-size", "4", "--max-new-tokens", "8",
                          "--micro-batch", "4", "--sft-steps", "2"])
    assert result["share_of_weights_changed"] > 0.5  # fp32 master weights keep 1e-6 updates
    assert 0 <= result["logprob_gap_mean"] <= result["logprob_gap_max"] < 0.1
    assert result["sampling_tokens_per_second"] > 0 and result["update_tokens_per_second"]["mu=2"] > 0
    assert '"sft_tokens_per_second"' in capsys.readouterr().out
