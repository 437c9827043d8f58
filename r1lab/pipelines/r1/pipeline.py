"""`r1lab r1`: the four stages of DeepSeek-R1 (and R1-Zero, and distillation) as one command.

    RUN_DIR/config.yaml              the R1Config
    RUN_DIR/stages/NAME/             each stage's own run directory, with its summary.json
    RUN_DIR/summary.json             `table`: one row per model (base, r1-zero, the stages, distilled)

A stage is done when its summary.json exists; `--resume` runs the rest, continuing inside the
stage that was interrupted (its trainer resumes from its checkpoint). `stages` runs a part of the
road; a stage's inputs come from this run directory or, with `inputs`, from another run's, and a
missing input says which stage makes it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from r1lab.pipelines.r1 import stages as stage_functions
from r1lab.pipelines.r1.config import NUMBERED, STAGES, R1Config
from r1lab.runs import ConfigError, read_config_file, write_json_atomic

# what each stage reads: the stages whose outputs it needs
NEEDS = {"r1-zero": (), "reward-models": (), "cold-start": (), "reasoning-rl": ("cold-start",),
         "rejection-sampling": ("reasoning-rl", "reward-models"), "all-scenarios": ("rejection-sampling", "reward-models"),
         "distill": ("all-scenarios", "reward-models")}
TABLE_ROWS = (("r1-zero", "r1-zero"), ("cold-start", "r1"), ("reasoning-rl", "r1"), ("rejection-sampling", "r1"),
              ("all-scenarios", "r1"))


def parse_stages(text: str | None) -> list[str]:
    """'2-4' -> stages 2 to 4 by number; 'cold-start,distill' by name; None -> all, in order."""
    if not text:
        return list(STAGES)
    if "-" in text and all(part.strip().isdigit() for part in text.split("-", 1)):
        first, last = (int(part) for part in text.split("-", 1))
        chosen = [NUMBERED[n] for n in range(first, last + 1) if n in NUMBERED]
        if not chosen or first not in NUMBERED or last not in NUMBERED:
            raise ConfigError(f"--stages {text}: stages are numbered 1-5 ({', '.join(NUMBERED.values())})")
        return chosen
    chosen = [s.strip() for s in text.split(",")]
    unknown = [s for s in chosen if s not in STAGES and not s.isdigit()]
    if unknown:
        raise ConfigError(f"unknown stage {', '.join(map(repr, unknown))}; stages: {', '.join(STAGES)} (or 1-5)")
    return [NUMBERED[int(s)] if s.isdigit() else s for s in chosen]


def stage_dir(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / "stages" / name


def finished(directory: Path) -> bool:
    return (directory / "summary.json").is_file()


def input_dir(run_dir: Path, inputs: Path | None, name: str, wanted_by: str) -> Path:
    """Where the output of stage `name` is, for the stage `wanted_by`; one clear error when nowhere."""
    for root in (run_dir, inputs):
        if root is not None and finished(stage_dir(root, name)):
            return stage_dir(root, name)
    number = next((f"stage {n} " for n, s in NUMBERED.items() if s == name), "")
    raise ConfigError(f"stage '{wanted_by}' needs the output of {number}'{name}', which is not in {run_dir}"
                      + (f" nor in {inputs}" if inputs else "") + f": run `r1lab r1 --stages {name}` first "
                      "(or give --inputs RUN_DIR of a run that has it)")


def run_r1(config: R1Config, run_dir: Path, *, stages: list[str] | None = None, inputs: Path | None = None,
           resume: bool = False, quiet: bool = False, table: bool = True, console=None) -> dict:
    """Run the chosen stages in order (see the module docstring), then the table."""
    import yaml

    from r1lab.runs import to_dict

    run_dir = Path(run_dir)
    chosen = stages or list(STAGES)
    for name in chosen:  # inputs are checked before any work starts
        for needed in NEEDS[name]:
            if needed not in chosen:
                input_dir(run_dir, inputs, needed, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (run_dir / "config.yaml").write_text(yaml.safe_dump({"job": "r1", "config": to_dict(config)}, sort_keys=False))
    started, seconds = time.perf_counter(), {}
    for name in chosen:
        directory = stage_dir(run_dir, name)
        if resume and finished(directory):
            continue
        if not resume and directory.exists():
            shutil.rmtree(directory)  # a rerun of this stage starts it afresh
        if console is not None and not quiet:
            console.print(f"[bold]r1[/] stage {name} -> {directory}")
        began = time.perf_counter()
        resuming = resume and directory.exists()
        run_stage(config, name, directory, run_dir, inputs, resuming, quiet)
        seconds[name] = time.perf_counter() - began
    summary = {"stages": chosen, "stage_seconds": seconds, "wall_seconds": time.perf_counter() - started}
    if table:
        summary["table"] = final_table(config, run_dir, inputs)
        summary["distillation"] = distillation_comparison(config, run_dir)
        if console is not None:
            from r1lab.pipelines.r1.table import print_table

            print_table(summary["table"], console)
    write_json_atomic(run_dir / "summary.json", summary)
    return summary


def run_stage(config: R1Config, name: str, directory: Path, run_dir: Path, inputs: Path | None, resume: bool,
              quiet: bool) -> dict:
    def needed(stage: str) -> Path:
        return input_dir(run_dir, inputs, stage, name)

    if name == "r1-zero":
        return stage_functions.r1_zero(config, directory, resume, quiet)
    if name == "reward-models":
        return stage_functions.reward_models(config, directory, resume, quiet)
    if name == "cold-start":
        return stage_functions.cold_start(config, directory, resume, quiet)
    if name == "reasoning-rl":
        return stage_functions.reasoning_rl(config, directory, needed("cold-start"), resume, quiet)
    if name == "rejection-sampling":
        return stage_functions.rejection_sampling(config, directory, needed("reasoning-rl"), needed("reward-models"),
                                                  resume, quiet)
    if name == "all-scenarios":
        return stage_functions.all_scenarios(config, directory, needed("rejection-sampling"), needed("reward-models"),
                                             resume, quiet)
    return stage_functions.distill(config, directory, needed("all-scenarios"), needed("reward-models"), resume, quiet)


def final_table(config: R1Config, run_dir: Path, inputs: Path | None) -> list[dict]:
    """The table's rows for every model the run (or `inputs`) holds, in the order of the road."""
    from r1lab.llm.reward_model import load_reward_model
    from r1lab.pipelines.r1.table import row

    def found(name: str) -> Path | None:
        for root in (run_dir, inputs):
            if root is not None and finished(stage_dir(root, name)):
                return stage_dir(root, name)
        return None

    models = found("reward-models")
    helpful = load_reward_model(models / "helpful" / "model", device=config.device) if models else None
    rows = [row("base", config.model, "r1-zero", config, helpful)]
    for name, template in TABLE_ROWS:
        directory = found(name)
        if directory is not None:
            rows.append(row(name, str(directory / "model"), template, config, helpful))
    distilled = found("distill")
    if distilled is not None:
        rows.append(row("distilled", str(distilled / "sft" / "model"), "r1", config, helpful))
    return rows


def distillation_comparison(config: R1Config, run_dir: Path) -> dict | None:
    """The student distilled from the final model against the same student after R1-Zero-style RL
    with as many training sequences: the R1 paper's finding, measured on the tiny world."""
    from r1lab.pipelines.r1.table import row

    directory = stage_dir(run_dir, "distill")
    if not finished(directory):
        return None
    return {"distilled": row("distilled", str(directory / "sft" / "model"), "r1", config),
            "rl": row("student-rl", str(directory / "rl" / "model"), "r1-zero", config)}


def resumed_config(run_dir: Path) -> R1Config:
    from r1lab.runs import build

    return build(R1Config, read_config_file(run_dir), f"{run_dir}/config.yaml")
