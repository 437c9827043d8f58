"""`r1lab pretrain-tiny`: pretrain the tiny world's base model on its synthetic corpus.

Deterministic from its seed: the corpus stream, the tokenizer, the initial weights and the batch
order all derive from it. Writes the tokenizer and model with `save_pretrained` into
`RUN_DIR/model`, which is what `r1lab/assets/tiny/` ships.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from r1lab.llm.loading import quiet_transformers
from r1lab.llm.tiny import (
    PretrainConfig,
    build_model,
    build_tokenizer,
    learning_rate,
    packed_batches,
    tokenizer_texts,
)
from r1lab.runs import ProgressBar, Run, rng_state, seed_everything, set_rng_state, to_dict


def pretrain(config: PretrainConfig, run_dir: Path, resume: bool = False, quiet: bool = False,
             overwrite: bool = False) -> dict:
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    quiet_transformers()
    run = Run(run_dir, "pretrain-tiny", config, resume=resume, overwrite=overwrite)
    tokenizer = build_tokenizer(tokenizer_texts(config), config.vocab_size)
    model = build_model(config.model, tokenizer)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.95),
    )
    batches = packed_batches(tokenizer, config.seed, config.batch_size, config.sequence_length, config.corpus)
    start_step, tokens_seen = 0, 0
    if resume:
        state = run.load_checkpoint()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_step, tokens_seen = state["step"], state["tokens_seen"]
        for _ in range(start_step):  # replay the corpus stream to the same position (cheap: no model work)
            next(batches)
        set_rng_state(state["rng"])
    model.train()
    started, window_loss, window_tokens, window_start = time.perf_counter(), 0.0, 0, time.perf_counter()
    window_steps = 0  # steps summed since the last log line (fewer than log_every after a resume)
    with ProgressBar(config.steps, "pretrain-tiny", enabled=not quiet) as bar:
        bar.advance(start_step)
        for step in range(start_step, config.steps):
            input_ids, labels = next(batches)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, config)
            loss = model(input_ids=input_ids, labels=labels).loss
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            real_tokens = int((labels != -100).sum())
            tokens_seen += real_tokens
            window_loss += loss.item()
            window_tokens += real_tokens
            window_steps += 1
            if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
                elapsed = time.perf_counter() - window_start
                run.log(step + 1, {"loss": window_loss / window_steps, "lr": learning_rate(step, config),
                                   "grad_norm": float(grad_norm), "tokens_seen": tokens_seen,
                                   "tokens_per_second": window_tokens / elapsed})
                final_loss = window_loss / window_steps
                bar.advance(0, info=f"loss {final_loss:.3f}")
                window_loss, window_tokens, window_start, window_steps = 0.0, 0, time.perf_counter(), 0
            if step + 1 < config.steps and run.checkpoint_due(step + 1):  # every N steps, or on a stop signal
                run.save_checkpoint(step + 1, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                               "step": step + 1, "tokens_seen": tokens_seen, "rng": rng_state()})
                run.stop_if_requested(step + 1)
            bar.advance(1)
    model.eval()
    model_dir = run.dir / "model"
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    summary = {
        "final_loss": final_loss, "steps": config.steps, "tokens_seen": tokens_seen,
        "parameters": sum(p.numel() for p in model.parameters()),
        "wall_seconds": time.perf_counter() - started, "model_dir": str(model_dir), "config": to_dict(config),
    }
    run.write_summary(summary)
    run.close()
    return summary
